"""@mentions in internal notes: the handle syntax, who may be mentioned (staff who may see the
ticket's tenant, never anyone else), the live event to the mentioned agent, the suggestions
endpoint's scope, and marking mentions read."""

from __future__ import annotations

import pytest

from care.accounts.models import Role
from care.mentions import handles
from care.mentions.models import Mention
from care.mentions.selectors import unread_mentions
from care.mentions.services import mentions_mark_read
from care.realtime import log
from care.realtime.streams import agent_stream
from care.tickets.models import Interaction
from tests.desk.conftest import page_url
from tests.factories.accounts import UserFactory, make_agent

pytestmark = pytest.mark.django_db

JSON = {"accept": "application/json"}


@pytest.fixture(autouse=True)
def private_broker(broker):
    """The tasks a note enqueues after the commit (routing, SLA) go to this test's own queue."""
    return broker


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def colleagues(tenant_a, tenant_b):
    """Bea and Ben work tenant A; Carl works only B; Dora was deactivated; Pia is A's portal user;
    Root administers everything (no agent profile)."""
    return {
        "bea": make_agent(tenants=[tenant_a], email="bea@care.test"),
        "ben": make_agent(tenants=[tenant_a, tenant_b], email="ben.berg@care.test"),
        "carl": make_agent(tenants=[tenant_b], email="carl@care.test"),
        "dora": _inactive(make_agent(tenants=[tenant_a], email="dora@care.test")),
        "pia": UserFactory(email="pia@energie-nord.test", role=Role.PORTAL, portal_tenant=tenant_a),
        "root": UserFactory(email="root@care.test", role=Role.ADMIN, is_staff=True, is_superuser=True),
    }


def _inactive(agent):
    agent.user.is_active = False
    agent.user.save()
    return agent


def _note(client, ticket, text):
    response = client.post(page_url(ticket, "note"), {"text": text}, headers=JSON)
    assert response.status_code == 201, response.content
    return Interaction.objects.get(pk=response.json()["entry"]["id"])


def _mentioned(note):
    return sorted(Mention.objects.filter(interaction=note).values_list("mentioned__email", flat=True))


# --- the syntax ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "local_parts", "addresses"),
    [
        ("@bea bitte prüfen", {"bea"}, set()),
        ("Danke @Bea.", {"bea"}, set()),
        ("(@ben.berg), @bea!", {"ben.berg", "bea"}, set()),
        ("@bea@care.test und @bea", {"bea"}, {"bea@care.test"}),
        ("Kunde schrieb an greta@example.com", set(), set()),
        ("a@b, x.@bea, mail@bea.de", set(), set()),
        ("nur @ allein", set(), set()),
    ],
)
def test_handles_are_parsed(text, local_parts, addresses):
    parsed = handles.parse(text)
    assert (set(parsed.locals), set(parsed.addresses)) == (local_parts, addresses)


def test_at_most_max_handles_are_taken():
    text = " ".join(f"@user{number}" for number in range(handles.MAX_HANDLES + 5))
    assert len(handles.parse(text).locals) == handles.MAX_HANDLES


# --- who is mentioned -----------------------------------------------------------------------------


def test_only_staff_who_may_see_the_tenant_are_mentioned(client, agent, email_ticket, colleagues, commit):
    client.force_login(agent.user)

    with commit():
        note = _note(
            client, email_ticket, "@bea @ben.berg @carl @dora @pia @root @nobody @alice bitte ansehen"
        )

    # Carl serves only B, Dora is inactive, Pia is a portal user, nobody does not exist, Alice wrote it.
    assert _mentioned(note) == ["bea@care.test", "ben.berg@care.test", "root@care.test"]
    assert note.body_text.startswith("@bea @ben.berg @carl")  # the text is stored as written
    mention = Mention.objects.get(interaction=note, mentioned=colleagues["bea"].user)
    assert (mention.tenant_id, mention.ticket_id, mention.author_id, mention.read_at) == (
        email_ticket.tenant_id,
        email_ticket.pk,
        agent.user.pk,
        None,
    )


def test_a_shared_local_part_needs_the_full_address(client, agent, email_ticket, tenant_a, commit):
    make_agent(tenants=[tenant_a], email="eva@care.test")
    make_agent(tenants=[tenant_a], email="eva@kunde.test")
    client.force_login(agent.user)

    with commit():
        ambiguous = _note(client, email_ticket, "@eva schau mal")
        exact = _note(client, email_ticket, "@eva@kunde.test schau mal")

    assert _mentioned(ambiguous) == []
    assert _mentioned(exact) == ["eva@kunde.test"]


def test_replies_never_mention(client, agent, phone_ticket, colleagues, commit):
    client.force_login(agent.user)

    with commit():
        response = client.post(
            page_url(phone_ticket, "reply"), {"text": "@bea Rückruf erledigt"}, headers=JSON
        )

    assert response.status_code == 201
    assert not Mention.objects.exists()


def test_mentioned_agents_are_told_live_after_the_commit(client, agent, email_ticket, colleagues, commit):
    agent.user.full_name = "Alice Adler"
    agent.user.save()
    bea = colleagues["bea"]
    client.force_login(agent.user)

    with commit():
        note = _note(client, email_ticket, "@bea bitte den Zähler prüfen")
        assert log.since(agent_stream(bea.pk), 0).events == []  # nothing before the commit

    [event] = log.since(agent_stream(bea.pk), 0).events
    mention = Mention.objects.get(interaction=note)
    assert (event["type"], event["tenant"], event["stream"]) == (
        "mention.added",
        email_ticket.tenant_id,
        agent_stream(bea.pk),
    )
    assert event["data"]["mention"] == {
        "id": mention.pk,
        "ticket": {"id": email_ticket.pk, "reference": email_ticket.reference},
        "author": {"id": agent.user.pk, "name": "Alice Adler"},
        "excerpt": "@bea bitte den Zähler prüfen",
        "created_at": event["data"]["mention"]["created_at"],
    }
    # Nobody else's stream heard of it.
    assert log.since(agent_stream(colleagues["carl"].pk), 0).events == []
    assert [
        e["type"] for e in log.since(agent_stream(agent.pk), 0).events if e["type"] == "mention.added"
    ] == []


def test_note_query_count_does_not_grow_with_the_mentions(
    client, agent, email_ticket, tenant_a, django_assert_max_num_queries
):
    people = [make_agent(tenants=[tenant_a], email=f"kollege{number}@care.test") for number in range(5)]
    client.force_login(agent.user)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _note(client, email_ticket, "warm up @kollege0")
    with CaptureQueriesContext(connection) as one:
        _note(client, email_ticket, "@kollege0 bitte")
    with CaptureQueriesContext(connection) as five:
        _note(client, email_ticket, " ".join(f"@{p.user.email.split('@')[0]}" for p in people))
    with CaptureQueriesContext(connection) as none:
        _note(client, email_ticket, "ohne Erwähnung")

    assert Mention.objects.count() == 1 + 1 + 5
    # The people (one query) and the rows (one insert), whatever their number; none without handles.
    assert len(five.captured_queries) == len(one.captured_queries)
    assert len(one.captured_queries) == len(none.captured_queries) + 2


# --- suggestions ----------------------------------------------------------------------------------


def test_suggestions_offer_only_staff_who_may_see_the_tenant(client, agent, email_ticket, colleagues):
    client.force_login(agent.user)

    everyone = client.get(page_url(email_ticket, "mentions"), headers=JSON).json()["people"]
    bees = client.get(page_url(email_ticket, "mentions"), {"q": "be"}, headers=JSON).json()["people"]

    # Not Alice herself: she writes the note.
    assert sorted(person["email"] for person in everyone) == [
        "bea@care.test",
        "ben.berg@care.test",
        "root@care.test",
    ]
    assert sorted((person["handle"], person["email"]) for person in bees) == [
        ("bea", "bea@care.test"),
        ("ben.berg", "ben.berg@care.test"),
    ]


def test_suggestions_give_the_full_address_where_the_local_part_is_shared(
    client, agent, email_ticket, tenant_a
):
    make_agent(tenants=[tenant_a], email="eva@care.test")
    make_agent(tenants=[tenant_a], email="eva@kunde.test")
    client.force_login(agent.user)

    people = client.get(page_url(email_ticket, "mentions"), {"q": "eva"}, headers=JSON).json()["people"]

    assert sorted(person["handle"] for person in people) == ["eva@care.test", "eva@kunde.test"]


def test_suggestions_of_another_tenants_ticket_are_404_and_portal_users_403(
    client, outsider, portal_user, email_ticket
):
    client.force_login(outsider.user)
    assert client.get(page_url(email_ticket, "mentions"), headers=JSON).status_code == 404
    client.force_login(portal_user)
    assert client.get(page_url(email_ticket, "mentions"), headers=JSON).status_code == 403


def test_suggestions_query_count_is_pinned(client, agent, email_ticket, tenant_a, django_assert_num_queries):
    for number in range(12):
        make_agent(tenants=[tenant_a], email=f"kollege{number}@care.test")
    client.force_login(agent.user)
    # session, user, the user's tenants, the ticket, the people (8 at most)
    with django_assert_num_queries(5):
        people = client.get(page_url(email_ticket, "mentions"), {"q": "kollege"}, headers=JSON).json()[
            "people"
        ]
    assert len(people) == 8


# --- reading --------------------------------------------------------------------------------------


def test_marking_read_touches_only_my_own_mentions(client, agent, email_ticket, colleagues, commit):
    client.force_login(agent.user)
    with commit():
        first = _note(client, email_ticket, "@bea @ben.berg eins")
        second = _note(client, email_ticket, "@bea zwei")
    bea, ben = colleagues["bea"].user, colleagues["ben"].user
    bens = Mention.objects.get(interaction=first, mentioned=ben)

    client.force_login(bea)
    mine = Mention.objects.get(interaction=first, mentioned=bea)
    refused = client.post("/desk/mentions/read", {"mention": [bens.pk]}, headers=JSON)
    one = client.post("/desk/mentions/read", {"mention": [mine.pk]}, headers=JSON)

    assert refused.json() == {"read": 0}
    assert one.json() == {"read": 1}
    assert [m.interaction_id for m in unread_mentions(user=bea)] == [second.pk]
    assert [m.interaction_id for m in unread_mentions(user=ben)] == [first.pk]

    form = client.post("/desk/mentions/read", {"all": "1"})
    assert form.status_code == 303
    assert form["Location"] == "/desk/work/"
    assert unread_mentions(user=bea) == []
    assert client.post("/desk/mentions/read", {"mention": ["x"]}, headers=JSON).status_code == 400


def test_mentions_of_a_tenant_no_longer_seen_are_hidden_and_stay_unread(
    client, agent, email_ticket, colleagues, commit
):
    client.force_login(agent.user)
    with commit():
        _note(client, email_ticket, "@ben.berg eins")
    ben = colleagues["ben"]
    ben.authorisations.filter(tenant=email_ticket.tenant).delete()
    ben.user.refresh_from_db()

    assert unread_mentions(user=ben.user) == []
    assert mentions_mark_read(user=ben.user) == 0
    assert Mention.objects.filter(read_at__isnull=True).count() == 1
