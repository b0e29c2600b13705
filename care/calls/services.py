"""Writes of the phone channel: calls built from the telephone system's events, codes, outbound logs.

``call_event_apply`` merges one ``CallEvent`` into its ``Call``. Events come twice and out of order,
so every field follows a rule that gives the same result whatever the order: the earliest offer and
answer, the latest end, the largest talk and hold times, the furthest status. Repeats are recognised
by ``CallEvent.event_id`` (kept in ``Call.events_seen``). Once a call has ended with an outcome worth
it, it becomes an interaction on the customer's ticket (docs/phone.md).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from care.accounts.models import Agent, Presence
from care.accounts.services import agent_set_presence
from care.calls.events import CallEvent, CallEventKind
from care.calls.models import (
    Call,
    CallCode,
    CallOutcome,
    CallStatus,
    Campaign,
    Direction,
    PhoneLine,
    Provider,
    ServiceLevelTarget,
    validate_e164,
)
from care.contacts.models import Identity
from care.contacts.services import customer_get_or_create_by_identity
from care.core.channels import Channel
from care.core.errors import BusinessRuleViolation
from care.tickets.models import Direction as InteractionDirection
from care.tickets.models import Ticket
from care.tickets.services import interaction_add, ticket_create
from care.tickets.status import UNRESOLVED

if TYPE_CHECKING:
    from care.accounts.models import User
    from care.tenants.models import Tenant

logger = logging.getLogger(__name__)

# Later states win over earlier ones whatever order the events came in. Held and answered share a
# rank: which of the two holds is decided by the held/resumed events themselves.
_STATUS_RANK = {
    CallStatus.OFFERED: 0,
    CallStatus.QUEUED: 1,
    CallStatus.RINGING: 2,
    CallStatus.ANSWERED: 3,
    CallStatus.ON_HOLD: 3,
    CallStatus.ENDED: 4,
}
_EVENT_STATUS = {
    CallEventKind.OFFERED: CallStatus.OFFERED,
    CallEventKind.QUEUED: CallStatus.QUEUED,
    CallEventKind.RINGING: CallStatus.RINGING,
    CallEventKind.ANSWERED: CallStatus.ANSWERED,
    CallEventKind.TRANSFERRED: CallStatus.ANSWERED,
    CallEventKind.HELD: CallStatus.ON_HOLD,
    CallEventKind.RESUMED: CallStatus.ANSWERED,
}
_TERMINAL = {
    CallEventKind.ENDED: CallOutcome.MISSED,
    CallEventKind.ABANDONED: CallOutcome.ABANDONED,
    CallEventKind.REJECTED: CallOutcome.REJECTED,
    CallEventKind.VOICEMAIL: CallOutcome.VOICEMAIL,
}
# Of two terminal events of an unanswered call (a voicemail and its hang-up, say), the more telling
# one decides the outcome, so that the order they arrive in does not matter.
_OUTCOME_RANK = {
    CallOutcome.MISSED: 0,
    CallOutcome.REJECTED: 1,
    CallOutcome.ABANDONED: 2,
    CallOutcome.VOICEMAIL: 3,
    CallOutcome.ANSWERED: 4,
}
DEFAULT_SHORT_ABANDON_SECONDS = 5
# The columns' limits: a value beyond them is bad input (400), not a database error (503, retried).
MAX_SECONDS = 2**31 - 1  # PositiveIntegerField
MAX_CALL_ID = Call._meta.get_field("external_id").max_length or 200
MAX_RECORDING_URL = Call._meta.get_field("recording_url").max_length or 1000


@dataclass(frozen=True)
class CallApplied:
    call: Call
    applied: bool  # False: this event was applied before


def _min(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _max_int(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def _lock_call(line: PhoneLine, event: CallEvent) -> Call:
    """The event's call, created if new, locked for this transaction. Precondition: in a transaction."""
    key = {"tenant_id": line.tenant_id, "provider": event.provider, "external_id": event.call_id}
    call = Call.objects.select_for_update().filter(**key).first()
    if call is not None:
        return call
    try:
        with transaction.atomic():
            return Call.objects.create(
                **key,
                line=line,
                direction=event.direction,
                offered_at=event.occurred_at,
                language=line.default_language,
            )
    except IntegrityError:
        # A concurrent worker created it first: wait for its transaction, then lock its row.
        return Call.objects.select_for_update().get(**key)


def _find_agent(tenant_id: int, ref: str) -> Agent | None:
    """The agent of the tenant's authorised agents known to the telephone system as ``ref``."""
    match = Q(phone_extension=ref) | Q(sip_uri=ref)
    if ref.startswith("agent:") and ref[len("agent:") :].isdigit():
        match |= Q(pk=int(ref[len("agent:") :]))
    return (
        Agent.objects.filter(match, authorisations__tenant_id=tenant_id)
        .select_related("user")
        .order_by("pk")
        .first()
    )


def _check_event(event: CallEvent) -> None:
    """Refuse values the call records cannot hold, naming the field (``ValidationError``)."""
    if len(event.call_id) > MAX_CALL_ID:
        raise ValidationError(
            {"call_id": _("The call id is longer than %(limit)d characters.") % {"limit": MAX_CALL_ID}}
        )
    for name in ("talk_seconds", "hold_seconds", "wait_seconds", "wrapup_seconds"):
        value = getattr(event, name)
        if value is not None and not 0 <= value <= MAX_SECONDS:
            raise ValidationError(
                {name: _("%(name)s must be between 0 and %(limit)d.") % {"name": name, "limit": MAX_SECONDS}}
            )
    url = event.recording_url
    if url and (len(url) > MAX_RECORDING_URL or not url.lower().startswith(("https://", "http://"))):
        raise ValidationError(
            {
                "recording_url": _(
                    "The recording URL must be an http(s) URL of at most %(limit)d characters."
                )
                % {"limit": MAX_RECORDING_URL}
            }
        )


def _merge_times(call: Call, event: CallEvent) -> None:
    at = event.occurred_at
    call.offered_at = min(call.offered_at, at)
    if event.kind == CallEventKind.QUEUED:
        call.queued_at = _min(call.queued_at, at)
    if event.kind == CallEventKind.ANSWERED:
        call.answered_at = _min(call.answered_at, at)
    if event.kind in _TERMINAL:
        call.ended_at = at if call.ended_at is None else max(call.ended_at, at)
    call.last_event_at = at if call.last_event_at is None else max(call.last_event_at, at)
    call.talk_seconds = max(call.talk_seconds, event.talk_seconds or 0)
    call.hold_seconds = max(call.hold_seconds, event.hold_seconds or 0)
    call.wrapup_seconds = max(call.wrapup_seconds, event.wrapup_seconds or 0)
    call.reported_wait_seconds = _max_int(call.reported_wait_seconds, event.wait_seconds)


def _queue_wait(call: Call) -> int | None:
    """Seconds from queueing (or the offer) to the answer, or to the end of an unanswered call.

    As care/reporting/call_figures.py defines the wait: a voicemail call's end includes the message
    and a rejected call never waited, so neither has a wait unless the telephone system reports one.
    """
    if call.reported_wait_seconds is not None:
        return call.reported_wait_seconds
    if call.answered_at is None and call.outcome in (CallOutcome.VOICEMAIL, CallOutcome.REJECTED):
        return None
    until = call.answered_at or call.ended_at
    if until is None:
        return None
    return max(0, int((until - (call.queued_at or call.offered_at)).total_seconds()))


def _merge_state(call: Call, event: CallEvent, previous_last: dt.datetime | None) -> None:
    if event.kind in _TERMINAL:
        call.status = CallStatus.ENDED
        if call.answered_at is not None:
            call.outcome = CallOutcome.ANSWERED
        else:
            current = _OUTCOME_RANK[CallOutcome(call.outcome)] if call.outcome else -1
            new = _TERMINAL[event.kind]
            if _OUTCOME_RANK[new] > current:
                call.outcome = new
    elif call.status != CallStatus.ENDED:
        new_status = _EVENT_STATUS[event.kind]
        new_rank, rank = _STATUS_RANK[new_status], _STATUS_RANK[CallStatus(call.status)]
        # Between answered and on hold the newest event decides (held at :60 reported after resumed
        # at :90 leaves the call answered).
        newest = previous_last is None or event.occurred_at >= previous_last
        if new_rank > rank or (new_rank == rank and newest):
            call.status = new_status
    elif call.answered_at is not None:
        # An answer arriving after the end: the call was answered after all.
        call.outcome = CallOutcome.ANSWERED


def _merge_parties(call: Call, line: PhoneLine, event: CallEvent) -> None:
    call.caller = call.caller or event.caller
    call.dialled = call.dialled or event.dialled
    call.recording_url = call.recording_url or event.recording_url
    # The longest path is the caller's full way through the menu, however the events are ordered.
    if len(event.ivr_digits) > len(call.ivr_path) or (
        len(event.ivr_digits) == len(call.ivr_path) and event.ivr_digits > call.ivr_path
    ):
        call.ivr_path = event.ivr_digits[:100]
        language = line.ivr_choice(call.ivr_path).get("language")
        call.language = language if isinstance(language, str) and language else line.default_language


def _merge_agent(call: Call, event: CallEvent, known: Agent | None) -> None:
    # The newest event naming an agent wins (a transfer hands the call on), compared with the newest
    # one so far that named an agent (not with events naming nobody, such as a late "ended"). Two
    # at the same instant: the greater reference wins, so that the order they came in does not matter.
    if not event.agent_ref:
        return
    ref = event.agent_ref[:300]
    named = call.agent_named_at
    if named is not None and call.agent_ref and (event.occurred_at, ref) <= (named, call.agent_ref):
        return
    call.agent_named_at = event.occurred_at
    if ref == call.agent_ref:
        return
    call.agent_ref = ref
    if known is not None and event.agent_ref == f"agent:{known.pk}":
        call.agent = known
    else:
        call.agent = _find_agent(call.tenant_id, event.agent_ref)
    if call.agent is None:
        logger.warning("Call %s: no authorised agent is known as %r", call.pk, event.agent_ref)


def _merge_customer(call: Call) -> None:
    number = call.caller if call.direction == Direction.INBOUND else call.dialled
    if call.customer_id is not None or not number.startswith("+"):
        return
    customer, _identity, _created = customer_get_or_create_by_identity(
        tenant=call.tenant, kind="phone", value=number
    )
    call.customer = customer


@transaction.atomic
def call_event_apply(*, line: PhoneLine, event: CallEvent, agent: Agent | None = None) -> CallApplied:
    """Merge ``event`` into its call (created on its first event); a repeat changes nothing.

    ``agent``: the agent the event names as ``agent:<id>``, when the caller has loaded it and knows it
    is authorised for the line's tenant (the router, which just chose them); saves looking them up.

    Two workers applying events of one call wait for each other on the call's row lock.
    """
    _check_event(event)
    call = _lock_call(line, event)
    if event.event_id in call.events_seen:
        return CallApplied(call=call, applied=False)
    was_live = call.status in (CallStatus.ANSWERED, CallStatus.ON_HOLD)
    previous_agent = call.agent
    previous_last = call.last_event_at
    call.tenant = line.tenant
    call.events_seen = [*call.events_seen, event.event_id]
    _merge_times(call, event)
    _merge_state(call, event, previous_last)
    call.queue_wait_seconds = _queue_wait(call)  # needs the outcome
    _merge_parties(call, line, event)
    _merge_agent(call, event, agent)
    _merge_customer(call)
    call.save()
    _update_presence(call, was_live=was_live, previous_agent=previous_agent)
    if call.status == CallStatus.ENDED and call.interaction_id is None and _worth_a_ticket(call):
        _record_on_ticket(call)
    return CallApplied(call=call, applied=True)


def _release(agent: Agent) -> None:
    if agent.presence == Presence.ON_CALL:
        # Only undo what the call did: an agent who chose another presence meanwhile keeps it.
        agent_set_presence(
            agent=agent, presence=Presence.ONLINE, expected=(Presence.ON_CALL, agent.presence_source)
        )


def _update_presence(call: Call, *, was_live: bool, previous_agent: Agent | None) -> None:
    agent = call.agent
    handed_on = previous_agent is not None and previous_agent.pk != call.agent_id
    if handed_on and previous_agent is not None:
        # Reserved by the router (ringing) or talking until a transfer: the call is someone else's now.
        _release(previous_agent)
    if agent is None:
        return
    live = call.status in (CallStatus.ANSWERED, CallStatus.ON_HOLD)
    if live and (not was_live or handed_on) and agent.presence != Presence.ON_CALL:
        agent_set_presence(agent=agent, presence=Presence.ON_CALL)
    elif call.status == CallStatus.ENDED:
        _release(agent)


def short_abandon_seconds(tenant_id: int) -> int:
    target = ServiceLevelTarget.objects.filter(tenant_id=tenant_id).values_list(
        "short_abandon_seconds", flat=True
    )
    return next(iter(target), DEFAULT_SHORT_ABANDON_SECONDS)


def _worth_a_ticket(call: Call) -> bool:
    if call.customer_id is None:
        return False
    if call.outcome in (CallOutcome.ANSWERED, CallOutcome.VOICEMAIL):
        return True
    if call.direction == Direction.INBOUND and call.outcome in (CallOutcome.ABANDONED, CallOutcome.MISSED):
        # A caller who hung up at once is not worth calling back; one who waited is. "At once" is
        # what the figures call a short abandon: a wait of at most the threshold.
        return (call.queue_wait_seconds or 0) > short_abandon_seconds(call.tenant_id)
    return False


def _open_ticket(call: Call, customer_id: int, window_hours: int) -> Ticket | None:
    since = call.offered_at - dt.timedelta(hours=window_hours)
    return (
        Ticket.objects.filter(
            tenant_id=call.tenant_id, customer_id=customer_id, status__in=UNRESOLVED, updated_at__gte=since
        )
        .order_by("-updated_at", "-pk")
        .first()
    )


def _record_on_ticket(call: Call) -> None:
    """Add the call to the customer's open ticket, or to a new one. Precondition: the call is locked."""
    if call.customer is None:  # _worth_a_ticket checked this; kept for the type checker
        return
    line = call.line
    inbound = call.direction == Direction.INBOUND
    number = call.caller if inbound else call.dialled
    ticket = _open_ticket(call, call.customer.pk, line.ticket_window_hours if line is not None else 24)
    if ticket is None:
        subject = _("Call from %(number)s") if inbound else _("Call to %(number)s")
        tags = line.ivr_choice(call.ivr_path).get("tags", []) if line is not None and call.ivr_path else []
        ticket = ticket_create(
            tenant=call.tenant,
            customer=call.customer,
            channel=Channel.PHONE,
            subject=subject % {"number": number},
            language=call.language,
            tags=[str(tag) for tag in tags] if isinstance(tags, list) else [],
        )
    identity = Identity.objects.filter(
        tenant_id=call.tenant_id, customer_id=call.customer.pk, kind="phone", value=number
    ).first()
    interaction, _created = interaction_add(
        ticket=ticket,
        channel=Channel.PHONE,
        direction=InteractionDirection.INBOUND if inbound else InteractionDirection.OUTBOUND,
        body_text=call_summary(call),
        author_identity=identity if inbound else None,
        author_user=call.agent.user if call.agent is not None and not inbound else None,
        external_id=f"call:{call.pk}",
        occurred_at=call.offered_at,
    )
    Call.objects.filter(pk=call.pk).update(ticket=ticket, interaction=interaction)
    call.ticket, call.interaction = ticket, interaction


def call_summary(call: Call) -> str:
    """A readable account of the call for the ticket's timeline."""

    def at(value: dt.datetime | None) -> str:
        return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "–"

    lines = [
        _("%(direction)s call, %(caller)s → %(dialled)s: %(outcome)s")
        % {
            "direction": call.get_direction_display(),
            "caller": call.caller or "?",
            "dialled": call.dialled or "?",
            "outcome": call.get_outcome_display(),
        },
        _("Offered %(offered)s, answered %(answered)s, ended %(ended)s")
        % {"offered": at(call.offered_at), "answered": at(call.answered_at), "ended": at(call.ended_at)},
        _("Waited %(wait)s s, talked %(talk)s s, on hold %(hold)s s")
        % {"wait": call.queue_wait_seconds or 0, "talk": call.talk_seconds, "hold": call.hold_seconds},
    ]
    if call.agent is not None:
        lines.append(_("Agent: %(agent)s") % {"agent": call.agent})
    elif call.agent_ref:
        lines.append(_("Agent (unknown to Care): %(ref)s") % {"ref": call.agent_ref})
    if call.ivr_path:
        lines.append(_("IVR choice: %(path)s") % {"path": call.ivr_path})
    if call.recording_url:
        lines.append(_("Recording: %(url)s") % {"url": call.recording_url})
    return "\n".join(lines)


def _check_actor(actor: User, tenant_id: int) -> None:
    if not actor.sees_all_tenants and tenant_id not in actor.visible_tenant_ids():
        raise BusinessRuleViolation(_("You may not change calls of this tenant."))


def _check_code(code: CallCode | None, tenant_id: int, kind: str, field: str) -> None:
    if code is None:
        return
    if code.tenant_id != tenant_id:
        raise BusinessRuleViolation(
            {field: _("The code %(code)s belongs to another tenant.") % {"code": code.code}}
        )
    if code.kind != kind:
        raise BusinessRuleViolation(
            {
                field: _("The code %(code)s is not a %(kind)s.")
                % {"code": code.code, "kind": CallCode.Kind(kind).label}
            }
        )


@transaction.atomic
def call_set_codes(
    *, call: Call, reason: CallCode | None, outcome_code: CallCode | None, actor: User
) -> Call:
    """Set the reason and outcome codes the agent chose; both must be the call's tenant's."""
    _check_actor(actor, call.tenant_id)
    _check_code(reason, call.tenant_id, CallCode.Kind.REASON, "reason")
    _check_code(outcome_code, call.tenant_id, CallCode.Kind.OUTCOME, "outcome_code")
    call.reason, call.outcome_code = reason, outcome_code
    call.save(update_fields=["reason", "outcome_code", "updated_at"])
    logger.info("Call %s coded by user %s: reason=%s outcome=%s", call.pk, actor.pk, reason, outcome_code)
    return call


@transaction.atomic
def outbound_call_log(
    *,
    tenant: Tenant,
    agent: Agent,
    dialled: str,
    started_at: dt.datetime,
    talk_seconds: int,
    outcome_code: CallCode | None,
    campaign: Campaign | None,
    sale_amount: Decimal | None,
    actor: User,
    ticket: Ticket | None = None,
) -> Call:
    """Record an outbound call an agent made (answered when they talked, else missed)."""
    _check_actor(actor, tenant.pk)
    validate_e164(dialled)
    if started_at.tzinfo is None:
        raise ValidationError({"started_at": _("Call times must carry a time zone.")})
    if talk_seconds < 0:
        raise ValidationError({"talk_seconds": _("The talk time cannot be negative.")})
    try:
        ended_at = started_at + dt.timedelta(seconds=talk_seconds)
    except OverflowError as error:
        raise ValidationError({"started_at": _("The call would end after the year 9999.")}) from error
    if not agent.authorisations.filter(tenant=tenant).exists():
        raise BusinessRuleViolation({"agent": _("The agent is not authorised for this tenant.")})
    _check_code(outcome_code, tenant.pk, CallCode.Kind.OUTCOME, "outcome_code")
    if campaign is not None and campaign.tenant_id != tenant.pk:
        raise BusinessRuleViolation({"campaign": _("The campaign belongs to another tenant.")})
    if ticket is not None and ticket.tenant_id != tenant.pk:
        raise BusinessRuleViolation({"ticket": _("The ticket belongs to another tenant.")})
    if sale_amount is not None:
        if sale_amount < 0:
            raise ValidationError({"sale_amount": _("A sale amount cannot be negative.")})
        if campaign is None and not (outcome_code is not None and outcome_code.is_sale):
            raise BusinessRuleViolation(
                {"sale_amount": _("A sale amount needs a campaign or an outcome code that counts as a sale.")}
            )
    answered = talk_seconds > 0
    customer, _identity, _created = customer_get_or_create_by_identity(
        tenant=tenant, kind="phone", value=dialled
    )
    call = Call.objects.create(
        tenant=tenant,
        direction=Direction.OUTBOUND,
        provider=Provider.GENERIC,
        external_id=f"outbound:{uuid.uuid4().hex}",
        dialled=dialled,
        customer=customer,
        status=CallStatus.ENDED,
        outcome=CallOutcome.ANSWERED if answered else CallOutcome.MISSED,
        offered_at=started_at,
        answered_at=started_at if answered else None,
        ended_at=ended_at,
        talk_seconds=talk_seconds,
        agent=agent,
        outcome_code=outcome_code,
        campaign=campaign,
        sale_amount=sale_amount,
        language=tenant.default_language,
        last_event_at=started_at,
    )
    if ticket is not None:
        interaction, _created = interaction_add(
            ticket=ticket,
            channel=Channel.PHONE,
            direction=InteractionDirection.OUTBOUND,
            body_text=call_summary(call),
            author_user=agent.user,
            external_id=f"call:{call.pk}",
            occurred_at=started_at,
        )
        Call.objects.filter(pk=call.pk).update(ticket=ticket, interaction=interaction)
        call.ticket, call.interaction = ticket, interaction
    return call
