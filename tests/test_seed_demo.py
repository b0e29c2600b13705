"""seed_demo: a complete demo world, idempotent, with the logins and tenant scopes the README promises."""

from __future__ import annotations

import datetime as dt
import io
from collections import defaultdict

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.db import transaction
from django.db.models import Count
from django.test.utils import override_settings
from django.utils import timezone

from care.accounts.models import Role, User
from care.connectors.models import SocialConversation
from care.demo.build import demo_counts, plan_tenant
from care.demo.data import DEMO_LOGINS, SUPERVISORS_GROUP, TENANTS
from care.tickets.models import Direction, Interaction, Ticket, TicketEvent
from care.tickets.status import ACTIONABLE

pytestmark = pytest.mark.slow  # seeds the whole demo once, and once more to prove nothing changes

# The demo hashes four passwords per run; the default hasher takes about 0.3 s each.
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", "--force", stdout=out)  # tests run with DEBUG off
    return out.getvalue()


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    """The demo, seeded once for this module in a transaction that is rolled back afterwards.

    Each test still runs inside its own savepoint (pytest-django), so a test that seeds again or
    changes a row leaves the next test the same demo.
    """
    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=FAST_HASHERS),
        transaction.atomic(),
    ):
        output = seed()
        yield output
        transaction.set_rollback(True)


def planned_tickets():
    """The tenants' planned tickets: not those of the replayed calls or of the social conversations."""
    social = SocialConversation.objects.values("ticket_id")
    return Ticket.objects.filter(calls__isnull=True).exclude(pk__in=social)


def visible_codes(user: User) -> set[str]:
    return set(Ticket.objects.visible_to(user).values_list("tenant__code", flat=True).distinct())


@pytest.mark.django_db
def test_first_run_reports_what_it_made(demo):
    total = sum(spec.tickets for spec in TENANTS)
    assert f"demo tickets: {total} created, 0 already there" in demo
    # Yesterday's phone calls (care/demo/calls.py) and this morning's social messages
    # (care/demo/social.py) make tickets of their own, on top of the tenants'.
    assert planned_tickets().count() == total
    assert Ticket.objects.filter(calls__isnull=False).distinct().count() == 25
    assert SocialConversation.objects.values("ticket_id").distinct().count() == 4
    assert 300 <= total <= 400


@pytest.mark.django_db
def test_running_again_changes_no_counts_and_resets_the_passwords(demo):
    before = demo_counts()
    admin = User.objects.get(email="admin@care.example")
    admin.set_password("someone-changed-it")
    admin.save(update_fields=["password"])

    output = seed()

    assert demo_counts() == before
    assert before["tenants"] >= 5
    assert before["agents"] >= 12
    assert before["customers"] > 0
    assert before["interactions"] > before["tickets"]
    assert "demo tickets: 0 created" in output
    assert authenticate(None, email="admin@care.example", password="care-admin") is not None


@pytest.mark.django_db
@pytest.mark.usefixtures("demo")
def test_the_published_logins_work():
    users = {}
    for login in DEMO_LOGINS:
        user = authenticate(None, email=login.email, password=login.password)
        assert user is not None, login.email
        users[login.label] = user
    assert users["admin"].is_superuser
    assert users["admin"].is_staff
    assert users["admin"].role == Role.ADMIN
    assert users["supervisor"].role == Role.SUPERVISOR
    assert users["supervisor"].is_staff
    assert not users["supervisor"].is_superuser
    assert users["agent"].role == Role.AGENT
    assert users["portal"].role == Role.PORTAL
    assert users["portal"].portal_tenant.code == "SWN"


@pytest.mark.django_db
@pytest.mark.usefixtures("demo")
def test_supervisors_may_change_the_daily_work_and_only_view_the_rest():
    supervisor = User.objects.get(email="supervisor@care.example")
    assert supervisor.groups.filter(name=SUPERVISORS_GROUP).exists()
    for perm in (
        "tickets.change_ticket",
        "tickets.change_interaction",
        "contacts.change_customer",
        "contacts.change_identity",
        "tenants.change_guideline",
        "macros.change_macro",
        "tenants.change_servicehours",
        "tenants.view_tenant",
        "accounts.view_agent",
        "tickets.view_ticketevent",
    ):
        assert supervisor.has_perm(perm), perm
    for perm in (
        "tenants.change_tenant",
        "accounts.change_agent",
        "tickets.delete_ticket",
        "tickets.add_ticket",
    ):
        assert not supervisor.has_perm(perm), perm


@pytest.mark.django_db
@pytest.mark.usefixtures("demo")
def test_each_login_sees_its_tenants_only():
    portal = User.objects.get(email="portal@energie.example")
    agent = User.objects.get(email="agent@care.example")
    supervisor = User.objects.get(email="supervisor@care.example")

    assert visible_codes(portal) == {"SWN"}
    assert Ticket.objects.visible_to(portal).count() == Ticket.objects.filter(tenant__code="SWN").count()
    assert visible_codes(agent) == {"SWN", "TSOL"}
    assert Ticket.objects.visible_to(agent).count() == (
        Ticket.objects.filter(tenant__code__in=["SWN", "TSOL"]).count()
    )
    assert visible_codes(supervisor) == {"SWN", "KOOP"}
    assert {lang.language: lang.proficiency for lang in agent.agent.languages.all()} == {
        "de": 7,
        "es": 5,
        "en": 5,
    }


@pytest.mark.django_db
@pytest.mark.usefixtures("demo")
def test_tickets_cover_statuses_channels_and_languages():
    def distinct(field: str) -> set[str]:
        return set(Ticket.objects.values_list(field, flat=True).distinct())

    assert len(distinct("status")) >= 4
    assert len(distinct("channel")) >= 3
    assert len(distinct("language")) >= 4
    assert len(distinct("tenant__code")) == len(TENANTS)
    assert Ticket.objects.filter(assignee__isnull=False).exists()
    assert Ticket.objects.filter(assignee__isnull=True).exists()
    per_ticket = Ticket.objects.annotate(n=Count("interactions")).values_list("n", flat=True)
    assert min(per_ticket) >= 1
    assert max(per_ticket) <= 4


@pytest.mark.django_db
@pytest.mark.usefixtures("demo")
def test_history_is_spread_over_the_past_month_in_order():
    now = timezone.now()
    created = list(Ticket.objects.values_list("created_at", flat=True))
    assert max(created) <= now
    assert now - min(created) > dt.timedelta(days=20)

    waiting = Ticket.objects.filter(status__in=ACTIONABLE)
    assert not waiting.filter(sla_due_at__isnull=True).exists()
    assert waiting.filter(sla_due_at__lt=now).exists()
    assert waiting.filter(sla_due_at__gt=now).exists()

    first_contacts = Interaction.objects.filter(external_id__startswith="demo-", external_id__endswith="-1")
    assert first_contacts.count() == planned_tickets().count()
    assert not first_contacts.exclude(direction=Direction.INBOUND).exists()

    # The audit trail reads in order: created first, at the ticket's creation, then forward in time.
    # (The tickets of replayed phone calls are made at the replay, now, like a real replay would.)
    tickets = dict(planned_tickets().values_list("pk", "created_at"))
    trail: dict[int, list[TicketEvent]] = defaultdict(list)
    for event in TicketEvent.objects.filter(ticket_id__in=tickets).order_by("ticket_id", "id"):
        trail[event.ticket_id].append(event)
    for ticket_id, events in trail.items():
        assert events[0].kind == TicketEvent.Kind.CREATED
        assert events[0].created_at == tickets[ticket_id]
        moments = [event.created_at for event in events]
        assert moments == sorted(moments)
        assert moments[-1] <= now


def test_plans_are_the_same_on_every_run():
    now = timezone.now()
    for spec in TENANTS:
        personas, plans = plan_tenant(spec, now)
        assert plan_tenant(spec, now) == (personas, plans)
        assert len(plans) == spec.tickets
        for plan in plans:
            moments = [action.at for action in plan.actions]
            assert moments[0] == plan.created_at
            assert moments == sorted(moments)
            assert moments[-1] < now


@pytest.mark.django_db
def test_refuses_to_run_without_debug():
    with pytest.raises(CommandError, match="DJANGO_DEBUG"):
        call_command("seed_demo", stdout=io.StringIO())


@pytest.mark.django_db
@pytest.mark.usefixtures("demo")
def test_every_demo_tenant_has_macros_in_its_languages_that_render():
    from care.macros.models import Macro
    from care.macros.placeholders import unknown_placeholders

    for code, language in (("SWN", "de"), ("SWN", "en"), ("TSOL", "es"), ("KOOP", "nl"), ("HUDS", "en")):
        macros = list(Macro.objects.filter(tenant__code=code, language=language, is_active=True))
        assert macros, (code, language)
        for macro in macros:
            assert unknown_placeholders(macro.body) == [], macro.title
