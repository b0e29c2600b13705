"""Where a ringing call goes: an agent, the queue (overflow) or voicemail.

The telephone system asks ``POST /inbound/phone/<token>/route`` while the caller hears the IVR's
last prompt, and does what the answer says (docs/phone.md):

- outside the tenant's service hours (``ServiceCalendar.is_open``): the line's voicemail;
- otherwise the language and tags come from the caller's IVR choice (the line's default language
  when the digits mean nothing), the tenant's routing queue for phone work in that language and
  those tags is matched, and its steps that apply at once (``after_seconds`` 0, any time or during
  service hours) are tried in order with routing's own eligibility rule and strategy
  (``care.routing.eligibility``: authorised for the tenant, the language at the step's level which
  is never below the tenant's, works phone, online, on shift, below capacity; longest idle for
  phone unless the queue names another strategy). Nothing is duplicated here;
- nobody free: the queue (``line.overflow_target`` or ``"queue"``): the telephone system keeps the
  caller waiting (music, position announcements) and asks again; every ask is a fresh decision.

Concurrency, as routing's (care/routing/services.py): the candidate's agent row is locked
``FOR NO KEY UPDATE SKIP LOCKED`` and re-read as online, and their live calls are counted again under the
lock, so two calls ringing at the same instant never get the same agent: the second skips the
locked row and tries the next candidate. The chosen agent is set ``on_call`` in the same
transaction; the call's events put them back (``answered`` .. ``ended``, docs/phone.md).

The decision is logged (``care.calls.routing`` logger, with every candidate's rejections) rather than
stored as a ``RoutingDecision``: that log belongs to tickets, and a ringing call has none yet.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from care.accounts.models import Agent, Presence, PresenceSource
from care.accounts.services import agent_set_presence
from care.calls.events import CallEvent, CallEventKind
from care.calls.models import Call, CallStatus, PhoneLine
from care.calls.services import call_event_apply
from care.core.channels import Channel
from care.routing.eligibility import AgentFacts, Requirement, agent_facts, rejections
from care.routing.models import StepHours
from care.routing.rules import StepRule, rules_of_tenant_memoised
from care.routing.strategies import strategy_for
from care.tenants.calendar import calendar_of_memoised

logger = logging.getLogger(__name__)


class Target:
    AGENT = "agent"
    QUEUE = "queue"
    VOICEMAIL = "voicemail"


@dataclasses.dataclass(frozen=True)
class RingingCall:
    """What the telephone system told us about the call it wants routed."""

    call_id: str
    caller: str = ""
    dialled: str = ""
    ivr: str = ""


@dataclasses.dataclass(frozen=True)
class RouteAnswer:
    """The decision. ``rejected`` maps every authorised agent not chosen to why (empty list: eligible
    but busy or ranked lower), for the log and for tests."""

    target: str
    address: str
    language: str = ""
    agent: Agent | None = None
    call: Call | None = None
    rejected: dict[int, list[str]] = dataclasses.field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"target": self.target, "address": self.address}
        if self.agent is not None:
            body["agent"] = {"id": self.agent.pk, "name": self.agent.user.full_name or self.agent.user.email}
            body["language"] = self.language
        if self.call is not None:
            body["call"] = self.call.pk
        return body


def _immediate_steps(steps: tuple[StepRule, ...]) -> list[StepRule]:
    # Routing is asked only while the tenant is open, so out-of-hours steps never apply here; a call
    # that waits is asked about again, always as "just arrived" (the PBX keeps the waiting time).
    return [s for s in steps if s.after_seconds == 0 and s.hours in (StepHours.ANY, StepHours.OPEN)]


# A call counts as keeping its agent busy while it rings, is answered or on hold, unless its newest
# event is older than these: a telephone system that lost a call's end must not block an agent for
# good (a ring lasts well under two minutes; no service call lasts four hours).
RINGING_FOR_AT_MOST = dt.timedelta(minutes=2)
LIVE_FOR_AT_MOST = dt.timedelta(hours=4)


def live_calls(
    agent_ids: list[int], *, now: dt.datetime, besides: RingingCall | None = None
) -> dict[int, int]:
    """Calls ringing at, answered by or on hold with each agent now (agents with none left out).
    ``besides``: the call being routed (asked about again), which keeps nobody from taking itself."""
    calls = Call.objects.filter(agent_id__in=agent_ids).filter(
        Q(status=CallStatus.RINGING, last_event_at__gte=now - RINGING_FOR_AT_MOST)
        | Q(status__in=(CallStatus.ANSWERED, CallStatus.ON_HOLD), last_event_at__gte=now - LIVE_FOR_AT_MOST)
    )
    if besides is not None:
        calls = calls.exclude(external_id=besides.call_id)
    rows = calls.values("agent_id").annotate(calls=Count("pk")).values_list("agent_id", "calls")
    return {agent_id: count for agent_id, count in rows if agent_id is not None}


def _with_call_load(
    facts: list[AgentFacts], *, now: dt.datetime, besides: RingingCall, languages: set[str]
) -> list[AgentFacts]:
    """The facts with an agent's phone load counted as their live calls, not as routing counts it.

    Routing's load for the phone channel is the phone *tickets* assigned to the agent (a call-back
    to do, a voicemail to answer): work, but not a line that is busy. Whether an agent can take a
    ringing call depends on the calls they are on, so that is the load compared with their phone
    capacity here (the ``on_call`` presence says the same for the common capacity of one).
    """
    # Only agents who could take the call at all are counted: online, working phone, speaking one
    # of the languages asked for (no query when nobody does: the queue answer stays cheap).
    could = [
        f.agent_id
        for f in facts
        if f.presence == Presence.ONLINE and f.capacity is not None and languages & f.languages.keys()
    ]
    calls = live_calls(could, now=now, besides=besides) if could else {}
    return [dataclasses.replace(f, load=calls.get(f.agent_id, 0)) for f in facts]


def _lock_if_free(candidate: AgentFacts, *, now: dt.datetime, besides: RingingCall) -> Agent | None:
    """The candidate's row locked, if nobody else holds it and they are still online with room.

    ``SKIP LOCKED``: another ringing call (or a router) is deciding on this agent right now, so try
    the next one. ``no_key``: see care/routing/services.py ``_lock_free_agent``.
    """
    agent = (
        Agent.objects.select_for_update(skip_locked=True, no_key=True, of=("self",))
        .select_related("user")
        .filter(pk=candidate.agent_id, presence=Presence.ONLINE, user__is_active=True)
        .first()
    )
    if agent is None or live_calls([agent.pk], now=now, besides=besides).get(agent.pk, 0) >= (
        candidate.capacity or 0
    ):
        return None
    return agent


def _record_call(*, line: PhoneLine, ringing: RingingCall, agent: Agent, now: dt.datetime) -> Call:
    """The call, created or updated through the events pipeline as a synthetic ``ringing`` event at
    ``agent``: the same merge rules as the telephone system's own events (status never goes back,
    language from the IVR path, the customer by the caller's number)."""
    event = CallEvent(
        provider=line.provider,
        call_id=ringing.call_id,
        kind=CallEventKind.RINGING,
        occurred_at=now,
        caller=ringing.caller,
        caller_raw=ringing.caller,
        dialled=ringing.dialled or line.number,
        dialled_raw=ringing.dialled,
        agent_ref=f"agent:{agent.pk}",
        ivr_digits=ringing.ivr[:100],
        extra={"source": "route"},
    )
    return call_event_apply(line=line, event=event, agent=agent).call


def route_ringing_call(
    *, line: PhoneLine, ringing: RingingCall, now: dt.datetime | None = None
) -> RouteAnswer:
    """Decide where ``ringing`` goes and, for an agent, reserve them (``on_call``) and record the call.

    ``line`` must be loaded with ``select_related("tenant")``. A constant number of queries whatever
    the number of agents (the facts come from one query).
    """
    now = now or timezone.now()
    tenant = line.tenant
    if not calendar_of_memoised(tenant).is_open(now):
        answer = RouteAnswer(target=Target.VOICEMAIL, address=line.voicemail_target)
        logger.info("call %s on %s: closed, voicemail", ringing.call_id, line.number)
        return answer
    choice = line.ivr_choice(ringing.ivr)
    language = str(choice.get("language") or line.default_language)
    tags = [str(t) for t in choice.get("tags") or [] if isinstance(t, str)]
    queue = rules_of_tenant_memoised(tenant.pk).match(channel=Channel.PHONE, language=language, tags=tags)
    steps = _immediate_steps(queue.steps)
    strategy = strategy_for(queue.strategy, Channel.PHONE)
    languages = {language, *(s.language for s in steps if s.language)}
    with transaction.atomic():
        facts = _with_call_load(
            agent_facts(
                tenant_id=tenant.pk,
                channel=Channel.PHONE,
                languages=languages,
                skill_id=queue.required_skill_id,
                now=now,
            ),
            now=now,
            besides=ringing,
            languages=languages,
        )
        rejected: dict[int, list[str]] = {}
        for step in steps:
            need = Requirement.for_step(
                step,
                channel=Channel.PHONE,
                language=language,
                tenant_level=tenant.required_proficiency,
                skill_name=queue.required_skill_name,
            )
            rejected = {f.agent_id: rejections(f, need) for f in facts}
            for candidate in strategy.order([f for f in facts if not rejected[f.agent_id]]):
                agent = _lock_if_free(candidate, now=now, besides=ringing)
                if agent is None:
                    continue
                # No presence source means "the phone" yet; MANUAL is the one the heartbeat rules
                # never undo, so an idle browser cannot turn a ringing agent back to online.
                agent_set_presence(agent=agent, presence=Presence.ON_CALL, source=PresenceSource.MANUAL)
                Agent.objects.filter(pk=agent.pk).update(last_routed_at=now)
                call = _record_call(line=line, ringing=ringing, agent=agent, now=now)
                del rejected[agent.pk]
                logger.info(
                    "call %s on %s: agent %s (%s, step %s, %s)",
                    ringing.call_id,
                    line.number,
                    agent.pk,
                    need.language,
                    step.label,
                    strategy.name,
                )
                logger.debug("call %s: rejected %s", ringing.call_id, rejected)
                address = agent.sip_uri or agent.phone_extension
                return RouteAnswer(
                    target=Target.AGENT,
                    address=address,
                    language=need.language,
                    agent=agent,
                    call=call,
                    rejected=rejected,
                )
    logger.info("call %s on %s: nobody free in %s", ringing.call_id, line.number, language)
    logger.debug("call %s: rejected %s", ringing.call_id, rejected)
    return RouteAnswer(
        target=Target.QUEUE, address=line.overflow_target or "queue", language=language, rejected=rejected
    )
