"""Routing a ringing call: ``POST /inbound/phone/<token>/route`` and ``care.calls.routing``.

The telephone system asks where a call goes; Care answers an agent (who speaks the caller's IVR
language, is authorised for the tenant, works phone, is online and free), the queue when nobody is
free, or voicemail outside service hours. The chosen agent is on a call at once, so a second call
ringing at the same moment never gets them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from care.accounts.models import Agent, Presence
from care.calls.models import Call, CallStatus, PhoneLine, Provider
from care.calls.routing import RingingCall, Target, route_ringing_call
from care.core.channels import Channel
from care.core.languages import Proficiency
from care.core.memo import clear_all_memos
from care.routing.eligibility import current_load
from care.routing.models import RoutingQueue, RoutingStep
from care.tenants.models import ServiceHours
from care.tickets.services import ticket_assign
from tests.factories.accounts import make_agent
from tests.factories.tickets import make_ticket
from tests.helpers import run_in_threads

MENU = {"1": {"language": "de"}, "2": {"language": "en", "tags": ["billing"]}}


def _line(tenant, *, number="+493012345678", secret="", **kwargs) -> PhoneLine:
    return PhoneLine.objects.create(
        tenant=tenant,
        number=number,
        name="Hotline",
        provider=Provider.GENERIC,
        signing_secret=secret,
        ivr_menu=MENU,
        default_language="de",
        voicemail_target="sip:voicemail@pbx.test",
        overflow_target="sip:queue@pbx.test",
        **kwargs,
    )


def _online(agent: Agent, *, idle_minutes: int = 0, sip: str = "") -> Agent:
    Agent.objects.filter(pk=agent.pk).update(
        presence=Presence.ONLINE,
        presence_changed_at=timezone.now() - dt.timedelta(minutes=idle_minutes),
        sip_uri=sip,
        phone_extension=f"{100 + agent.pk}",
    )
    agent.refresh_from_db()
    return agent


def _hang_up(agent: Agent) -> Agent:
    """The agent's calls end (as their ``ended`` events would say) and they are online again."""
    Call.objects.filter(agent=agent).update(status=CallStatus.ENDED)
    return _online(agent)


def _phone_agent(tenants, *, languages=(("de", Proficiency.NATIVE),), idle_minutes=0, email=None, sip=""):
    agent = make_agent(tenants=tenants, languages=languages, channels=[Channel.PHONE], email=email)
    return _online(agent, idle_minutes=idle_minutes, sip=sip)


def _post(client, line: PhoneLine, payload: dict, *, secret: str | None = None, signature: str | None = None):
    body = json.dumps(payload).encode()
    headers = {}
    if secret is not None:
        headers["HTTP_X_CARE_SIGNATURE"] = (
            "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        )
    if signature is not None:
        headers["HTTP_X_CARE_SIGNATURE"] = signature
    url = reverse("inbound:phone_route", kwargs={"token": line.inbound_token})
    return client.post(url, body, content_type="application/json", **headers)


def _ringing(call_id: str = "call-1", ivr: str = "1") -> RingingCall:
    return RingingCall(call_id=call_id, caller="+4915112345678", dialled="+493012345678", ivr=ivr)


@pytest.mark.django_db
def test_picks_an_authorised_agent_speaking_the_ivr_language(client, tenant_a, tenant_b):
    line = _line(tenant_a)
    english_only = _phone_agent([tenant_a], languages=(("en", Proficiency.NATIVE),), idle_minutes=90)
    weak_german = _phone_agent([tenant_a], languages=(("de", Proficiency.B1),), idle_minutes=80)
    not_authorised = _phone_agent([tenant_b], idle_minutes=70)
    chosen = _phone_agent([tenant_a], idle_minutes=5, sip="sip:anna@pbx.test")

    response = _post(
        client, line, {"call_id": "c-1", "caller": "+4915112345678", "dialled": line.number, "ivr": "1"}
    )

    assert response.status_code == 200
    body = response.json()
    call = Call.objects.get(tenant=tenant_a, external_id="c-1")
    assert body == {
        "target": "agent",
        "agent": {"id": chosen.pk, "name": chosen.user.full_name},
        "address": "sip:anna@pbx.test",
        "language": "de",
        "call": call.pk,
    }
    assert (call.status, call.agent_id, call.language, call.ivr_path) == (
        CallStatus.RINGING,
        chosen.pk,
        "de",
        "1",
    )
    assert call.line_id == line.pk
    assert call.caller == "+4915112345678"
    chosen.refresh_from_db()
    assert chosen.presence == Presence.ON_CALL
    assert chosen.last_routed_at is not None

    # The same call asked about again, directly: the others' reasons are routing's own words.
    _online(chosen)
    answer = route_ringing_call(
        line=PhoneLine.objects.select_related("tenant").get(pk=line.pk), ringing=_ringing("c-1")
    )
    assert answer.agent is not None
    assert answer.agent.pk == chosen.pk
    assert answer.rejected[english_only.pk] == ["does not speak de"]
    assert answer.rejected[weak_german.pk] == ["speaks de at B1, needs B2"]
    assert not_authorised.pk not in answer.rejected  # not a candidate at all


@pytest.mark.django_db
def test_ivr_choice_sets_the_language_and_unknown_digits_fall_back_to_the_default(tenant_a):
    line = PhoneLine.objects.select_related("tenant").get(pk=_line(tenant_a).pk)
    german = _phone_agent([tenant_a], idle_minutes=60)
    english = _phone_agent([tenant_a], languages=(("en", Proficiency.C1),), idle_minutes=1)

    answer = route_ringing_call(line=line, ringing=_ringing("c-en", ivr="2"))
    assert (answer.target, answer.agent.pk, answer.language) == (Target.AGENT, english.pk, "en")
    assert answer.address == english.phone_extension  # no SIP URI: the extension

    answer = route_ringing_call(line=line, ringing=_ringing("c-x", ivr="9"))
    assert (answer.target, answer.agent.pk, answer.language) == (Target.AGENT, german.pk, "de")


@pytest.mark.django_db
def test_longest_idle_agent_is_chosen(tenant_a):
    line = PhoneLine.objects.select_related("tenant").get(pk=_line(tenant_a).pk)
    _phone_agent([tenant_a], idle_minutes=5)
    longest = _phone_agent([tenant_a], idle_minutes=50)
    _phone_agent([tenant_a], idle_minutes=20)
    assert route_ringing_call(line=line, ringing=_ringing()).agent.pk == longest.pk


@pytest.mark.django_db
def test_out_of_service_hours_goes_to_voicemail(client, tenant_a):
    line = _line(tenant_a)
    agent = _phone_agent([tenant_a])
    tomorrow = (timezone.now().astimezone(dt.UTC) + dt.timedelta(days=1)).weekday()
    ServiceHours.objects.create(tenant=tenant_a, weekday=tomorrow, opens_at=dt.time(8), closes_at=dt.time(9))
    # Wide enough that "now" in Berlin is never tomorrow's 08:00-09:00 UTC weekday.

    response = _post(client, line, {"call_id": "c-night", "caller": "+4915112345678", "ivr": "1"})

    assert response.status_code == 200
    assert response.json() == {"target": "voicemail", "address": "sip:voicemail@pbx.test"}
    agent.refresh_from_db()
    assert agent.presence == Presence.ONLINE
    assert not Call.objects.exists()


@pytest.mark.django_db
def test_nobody_free_goes_to_the_queue(client, tenant_a):
    line = _line(tenant_a)
    busy = _phone_agent([tenant_a])
    Agent.objects.filter(pk=busy.pk).update(presence=Presence.ON_CALL)
    away = _phone_agent([tenant_a])
    Agent.objects.filter(pk=away.pk).update(presence=Presence.AWAY)

    response = _post(client, line, {"call_id": "c-wait", "ivr": "1"})

    assert response.status_code == 200
    assert response.json() == {"target": "queue", "address": "sip:queue@pbx.test"}
    answer = route_ringing_call(
        line=PhoneLine.objects.select_related("tenant").get(pk=line.pk), ringing=_ringing()
    )
    assert answer.rejected == {busy.pk: ["is on a call"], away.pk: ["is away"]}
    assert not Call.objects.exists()

    PhoneLine.objects.filter(pk=line.pk).update(overflow_target="")
    assert _post(client, line, {"call_id": "c-wait", "ivr": "1"}).json() == {
        "target": "queue",
        "address": "queue",
    }


@pytest.mark.django_db
def test_an_existing_call_is_updated_not_duplicated(tenant_a):
    line = PhoneLine.objects.select_related("tenant").get(pk=_line(tenant_a).pk)
    Call.objects.create(
        tenant=tenant_a,
        line=line,
        direction="inbound",
        provider=line.provider,
        external_id="c-known",
        status=CallStatus.QUEUED,
        offered_at=timezone.now() - dt.timedelta(seconds=30),
    )
    agent = _phone_agent([tenant_a])
    answer = route_ringing_call(line=line, ringing=_ringing("c-known"))
    call = Call.objects.get()
    assert answer.call is not None
    assert answer.call.pk == call.pk
    assert (call.status, call.agent_id, call.language) == (CallStatus.RINGING, agent.pk, "de")


@pytest.mark.django_db
def test_the_chosen_agent_is_not_chosen_again(tenant_a):
    line = PhoneLine.objects.select_related("tenant").get(pk=_line(tenant_a).pk)
    first = _phone_agent([tenant_a], idle_minutes=30)
    second = _phone_agent([tenant_a], idle_minutes=10)
    assert route_ringing_call(line=line, ringing=_ringing("c-1")).agent.pk == first.pk
    assert route_ringing_call(line=line, ringing=_ringing("c-2")).agent.pk == second.pk
    assert route_ringing_call(line=line, ringing=_ringing("c-3")).target == Target.QUEUE


@pytest.mark.django_db(transaction=True)
def test_two_calls_ringing_at_once_never_get_the_same_agent(tenant_a):
    line = _line(tenant_a)
    agents = {_phone_agent([tenant_a], idle_minutes=n).pk for n in (10, 20)}

    def ring(index: int):
        fresh = PhoneLine.objects.select_related("tenant").get(pk=line.pk)
        answer = route_ringing_call(line=fresh, ringing=_ringing(f"c-{index}"))
        return answer.agent.pk if answer.agent else None

    for round_ in range(3):
        Agent.objects.filter(pk__in=agents).update(presence=Presence.ONLINE)
        Call.objects.all().delete()
        chosen = run_in_threads(ring, 3)
        picked = [pk for pk in chosen if pk is not None]
        assert sorted(picked) == sorted(agents), (round_, chosen)  # two agents, two calls, one queued
        assert Call.objects.count() == 2
        assert set(Agent.objects.filter(pk__in=agents).values_list("presence", flat=True)) == {
            Presence.ON_CALL
        }


@pytest.mark.django_db(transaction=True)
def test_an_agent_locked_by_another_decision_is_skipped_not_waited_for(tenant_a):
    line = _line(tenant_a)
    longest = _phone_agent([tenant_a], idle_minutes=60)
    other = _phone_agent([tenant_a], idle_minutes=1)
    held, release = threading.Event(), threading.Event()

    def work(index: int):
        if index == 0:  # another router holds the longest-idle agent's row
            with transaction.atomic():
                Agent.objects.select_for_update(no_key=True).get(pk=longest.pk)
                held.set()
                release.wait(timeout=30)
            return None
        held.wait(timeout=30)
        try:
            fresh = PhoneLine.objects.select_related("tenant").get(pk=line.pk)
            return route_ringing_call(line=fresh, ringing=_ringing()).agent.pk
        finally:
            release.set()

    assert run_in_threads(work, 2)[1] == other.pk
    longest.refresh_from_db()
    assert longest.presence == Presence.ONLINE


@pytest.mark.django_db
def test_unknown_token_is_404_and_nothing_happens(client, tenant_a):
    agent = _phone_agent([tenant_a])
    response = client.post(
        reverse("inbound:phone_route", kwargs={"token": "nope"}), b"{}", content_type="application/json"
    )
    assert response.status_code == 404
    line = _line(tenant_a, is_active=False)
    assert _post(client, line, {"call_id": "c-1", "ivr": "1"}).status_code == 404
    agent.refresh_from_db()
    assert agent.presence == Presence.ONLINE


@pytest.mark.django_db
def test_signed_lines_need_a_valid_signature(client, tenant_a):
    line = _line(tenant_a, secret="s3cret")
    agent = _phone_agent([tenant_a])
    payload = {"call_id": "c-1", "ivr": "1"}

    assert _post(client, line, payload).status_code == 401
    assert _post(client, line, payload, signature="sha256=" + "0" * 64).status_code == 403
    assert _post(client, line, payload, secret="wrong").status_code == 403
    agent.refresh_from_db()
    assert agent.presence == Presence.ONLINE
    assert not Call.objects.exists()

    response = _post(client, line, payload, secret="s3cret")
    assert response.status_code == 200
    assert response.json()["agent"]["id"] == agent.pk


@pytest.mark.django_db
def test_bad_requests(client, tenant_a):
    line = _line(tenant_a)
    url = reverse("inbound:phone_route", kwargs={"token": line.inbound_token})
    assert client.get(url).status_code == 405
    assert client.post(url, b"not json", content_type="application/json").status_code == 400
    assert _post(client, line, {"ivr": "1"}).status_code == 400
    assert _post(client, line, {"call_id": "c", "ivr": ["1"]}).status_code == 400


@pytest.mark.django_db
def test_another_tenants_agents_are_never_chosen(client, tenant_a, tenant_b):
    line_b = _line(tenant_b, number="+34911234567")
    _phone_agent([tenant_a], idle_minutes=99)  # free, German, but not B's
    response = _post(client, line_b, {"call_id": "c-b", "ivr": "1"})
    assert response.json()["target"] == "queue"
    b_agent = _phone_agent([tenant_b])
    response = _post(client, line_b, {"call_id": "c-b", "ivr": "1"})
    assert response.json()["agent"]["id"] == b_agent.pk
    assert Call.objects.get().tenant_id == tenant_b.pk


def _queries_with(tenant, agents: int) -> tuple[int, int]:
    line = PhoneLine.objects.select_related("tenant").get(tenant=tenant)
    for n in range(agents):
        _phone_agent([tenant], idle_minutes=n + 1)
    with CaptureQueriesContext(connection) as routed:
        answer = route_ringing_call(line=line, ringing=_ringing(f"c-{tenant.pk}"))
    assert answer.target == Target.AGENT
    Agent.objects.filter(authorisations__tenant=tenant).update(presence=Presence.ON_CALL)
    with CaptureQueriesContext(connection) as queued:
        assert route_ringing_call(line=line, ringing=_ringing("c-q")).target == Target.QUEUE
    return len(routed), len(queued)


# Routed, the tenant's first call in this process: service hours 2 and queues 1 (then memoised,
# care/core/memo.py), savepoint 1, facts 1 and the candidates' live calls 1, agent lock 1, live calls
# under the lock 1, on_call 1 + the
# agent's tenants for its receivers 1, last routed 1, then ``call_event_apply`` for the chosen agent
# (savepoint, call lookup, insert in a savepoint, customer by phone identity created in a savepoint,
# save) 12, release 1. Queued (everyone on a call), configuration memoised: savepoint 1, facts 1,
# release 1; no live-call count, as nobody online could take the call.
ROUTED_QUERIES = 24
QUEUED_QUERIES = 3


@pytest.mark.django_db
def test_query_count_is_pinned_and_does_not_grow_with_agents(tenant_a, tenant_b):
    _line(tenant_a)
    _line(tenant_b, number="+34911234567")
    assert _queries_with(tenant_a, 5) == (ROUTED_QUERIES, QUEUED_QUERIES)
    assert _queries_with(tenant_b, 50) == (ROUTED_QUERIES, QUEUED_QUERIES)


@pytest.mark.django_db
def test_service_hours_and_queues_are_memoised_but_a_change_applies_at_once(tenant_a, settings):
    line = PhoneLine.objects.select_related("tenant").get(pk=_line(tenant_a).pk)
    agent = _phone_agent([tenant_a])
    assert route_ringing_call(line=line, ringing=_ringing("c-1")).agent == agent
    _hang_up(agent)
    with CaptureQueriesContext(connection) as warm:
        assert route_ringing_call(line=line, ringing=_ringing("c-2")).agent == agent
    assert not [q for q in warm if "servicehours" in q["sql"] or "routingqueue" in q["sql"]]

    # Saved in this process (admin, API): the memo is cleared, the next call sees it.
    _hang_up(agent)
    now = timezone.now().astimezone(dt.UTC)
    ServiceHours.objects.create(
        tenant=tenant_a,
        weekday=(now + dt.timedelta(days=1)).weekday(),
        opens_at=dt.time(8),
        closes_at=dt.time(9),
    )
    assert route_ringing_call(line=line, ringing=_ringing("c-3")).target == Target.VOICEMAIL
    ServiceHours.objects.all().delete()
    queue = RoutingQueue.objects.create(tenant=tenant_a, name="Nobody", channels=[Channel.PHONE])
    RoutingStep.objects.create(queue=queue, position=1, language="ja")
    answer = route_ringing_call(line=line, ringing=_ringing("c-4"))
    assert answer.target == Target.QUEUE
    assert answer.rejected[agent.pk]  # nobody speaks the queue's language

    # Changed behind the memo's back (another process): seen once the memo's seconds have passed;
    # with CONFIG_MEMO_SECONDS = 0 at once.
    RoutingQueue.objects.filter(pk=queue.pk).update(is_active=False)
    assert route_ringing_call(line=line, ringing=_ringing("c-5")).target == Target.QUEUE
    settings.CONFIG_MEMO_SECONDS = 0
    clear_all_memos()
    assert route_ringing_call(line=line, ringing=_ringing("c-6")).agent == agent


@pytest.mark.django_db
def test_phone_tickets_to_work_on_do_not_make_an_agent_busy_for_calls_but_a_live_call_does(tenant_a):
    # Routing counts assigned phone tickets (call-backs, voicemails) as phone load; a ringing call
    # asks whether the agent's line is free: the calls they are on.
    line = PhoneLine.objects.select_related("tenant").get(pk=_line(tenant_a).pk)
    agent = _phone_agent([tenant_a])
    ticket_assign(ticket=make_ticket(tenant=tenant_a, channel=Channel.PHONE), agent=agent, actor=None)
    assert current_load(agent.pk, Channel.PHONE) == 1  # what routing counts for phone
    answer = route_ringing_call(line=line, ringing=_ringing("c-1"))
    assert answer.agent == agent
    _online(agent)  # say the telephone system lost the call's end: the call still rings at them
    answer = route_ringing_call(line=line, ringing=_ringing("c-2"))
    assert answer.target == Target.QUEUE
    assert "at capacity (1 of 1)" in answer.rejected[agent.pk]
    # Asked again about the call that rings at them, they are still its agent.
    assert route_ringing_call(line=line, ringing=_ringing("c-1")).agent == agent
    # A ring whose end never came stops counting after two minutes.
    _online(agent)
    Call.objects.filter(external_id="c-1").update(last_event_at=timezone.now() - dt.timedelta(minutes=3))
    assert route_ringing_call(line=line, ringing=_ringing("c-3")).agent == agent
