"""``manage.py explain_routing REF`` tells why a ticket went to whom, as text or JSON, and refuses
unknown or malformed references with a clear message and a non-zero exit."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from urllib.parse import quote

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from care.accounts.models import Agent, Presence
from care.accounts.services import agent_set_presence
from care.routing.models import QueuedItem, RoutingDecision
from care.routing.services import route_item
from tests.factories.accounts import make_agent
from tests.factories.tickets import make_ticket
from tests.processes import PROJECT_DIR

pytestmark = pytest.mark.django_db


def explain(*args: str) -> str:
    out = io.StringIO()
    call_command("explain_routing", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def routed(tenant_a, agent):
    """ENN-1: nobody was free at first (logged), then ``agent`` came online and got it."""
    ticket = make_ticket(tenant=tenant_a, subject="Meter reading wrong")
    item = QueuedItem.objects.get(ticket=ticket)
    make_agent(tenants=[tenant_a], email="emil@care.test", languages=(("en", 7),))
    assert route_item(item_id=item.pk).kind == RoutingDecision.Kind.WAITING
    agent_set_presence(agent=agent, presence=Presence.ONLINE)
    assert route_item(item_id=item.pk).kind == RoutingDecision.Kind.ASSIGNED
    return ticket


def test_explains_every_decision_with_each_candidates_reasons(routed, agent):
    lines = explain("ENN-1").splitlines()
    assert lines[0] == "ENN-1 Meter reading wrong"
    assert "Nobody available, waiting" in lines[1]
    assert "    nobody eligible is free at any active step" in lines
    assert f"    - {agent.user.full_name}: rejected: is offline" in lines
    assert any(line.endswith(f"Assigned → {agent.user.full_name}") for line in lines)
    assert f"    - {agent.user.full_name}: chosen" in lines
    # The agent who speaks only English was never eligible for this German ticket.
    emil = Agent.objects.get(user__email="emil@care.test").user.full_name
    about_emil = [line for line in lines if line.startswith(f"    - {emil}:")]
    assert len(about_emil) == 2
    assert all("does not speak de" in line for line in about_emil)


def test_a_waiting_ticket_without_decisions_says_so(tenant_a):
    ticket = make_ticket(tenant=tenant_a, subject="Fresh")
    output = explain(ticket.reference)
    assert output.splitlines()[0] == f"{ticket.reference} Fresh"
    assert "Waiting since" in output
    assert "No routing decisions yet." in output


def test_references_are_read_like_the_desk_reads_them(routed):
    assert explain(" enn-1 ") == explain("ENN-1")


def test_json_lists_the_decisions_in_order(routed, agent):
    data = json.loads(explain("ENN-1", "--json"))
    assert (data["ticket"], data["subject"], data["queued"]) == ("ENN-1", "Meter reading wrong", None)
    assert [d["kind"] for d in data["decisions"]] == ["waiting", "assigned"]
    assigned = data["decisions"][1]
    assert assigned["agent"] == {"id": agent.pk, "name": agent.user.full_name}
    assert assigned["strategy"] == "least_loaded"
    chosen = [c for c in assigned["candidates"] if c.get("chosen")]
    assert [c["agent"] for c in chosen] == [agent.pk]


def test_json_shows_where_a_ticket_waits(tenant_a):
    ticket = make_ticket(tenant=tenant_a, subject="Fresh")
    data = json.loads(explain(ticket.reference, "--json"))
    assert data["queued"]["state"] == "waiting"
    assert data["decisions"] == []


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("ENN-999", "There is no ticket ENN-999."),
        ("NOPE-1", "There is no ticket NOPE-1."),
        ("hello", "'hello' is not a ticket reference; use the tenant's code and the number, e.g. ENN-12."),
        ("ENN", "'ENN' is not a ticket reference; use the tenant's code and the number, e.g. ENN-12."),
    ],
)
def test_unknown_or_malformed_references_are_refused(tenant_a, reference, message):
    with pytest.raises(CommandError) as caught:
        explain(reference)
    assert str(caught.value) == message


def database_url_of_the_test_run() -> str:
    """The URL of the test database pytest-django created (its name varies per run)."""
    params = connection.settings_dict
    user = quote(params["USER"] or "", safe="")
    password = quote(params["PASSWORD"] or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = quote(params["HOST"] or "", safe="")
    port = f":{params['PORT']}" if params["PORT"] else ""
    return f"postgres://{credentials}{host}{port}/{quote(params['NAME'], safe='')}"


def test_the_real_command_exits_non_zero_with_the_message_on_stderr(tenant_a):
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("DATABASE_")},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY") or "test-not-secret",
        "DATABASE_URL": database_url_of_the_test_run(),
    }
    # This interpreter running the project's manage.py on the test database.
    result = subprocess.run(
        [sys.executable, "manage.py", "explain_routing", "NOPE-1"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "CommandError: There is no ticket NOPE-1."
    assert result.stdout == ""
