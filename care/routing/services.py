"""Routing operations: queue work, give it to the right agent, offers, returns, manual assignment.

Concurrency (several workers route at once):
- ``route_item`` locks the queued item with ``FOR UPDATE SKIP LOCKED`` (another worker deciding on
  it means this one has nothing to do), then the ticket, then the chosen agent with ``SKIP LOCKED``
  (a locked agent is being given other work right now: try the next candidate). With the agent row
  locked, the agent's load is read again from the database, so capacity can never be exceeded.
- ``route_for_agent`` (an agent freed up) locks the agent first, then each item with ``SKIP LOCKED``.
  Second locks are always ``SKIP LOCKED``, so the two paths cannot deadlock.
- Ticket services announce changes inside their transaction (``tickets.signals.ticket_changed``);
  the receivers here only insert rows or touch items with ``SKIP LOCKED``, never waiting on a router.
- Every lock names ``of=("self",)``: ``QueuedItem``'s default ordering joins the tenant, and a bare
  ``FOR UPDATE`` would lock the tenant row too (so ``SKIP LOCKED`` would skip every item of a tenant
  while one of them is being routed). The agent is locked ``FOR NO KEY UPDATE``: a transaction that
  assigns a ticket to that agent (its deferred foreign-key check takes ``KEY SHARE`` at commit) must
  not wait for a router that waits for the ticket.

Every decision is logged as a ``RoutingDecision`` with the step used and every candidate's reasons.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from care.accounts.models import Agent, Presence, Role
from care.core.errors import BusinessRuleViolation
from care.routing.eligibility import (
    AgentFacts,
    Requirement,
    agent_facts,
    agent_profile,
    current_load,
    rejections,
)
from care.routing.models import QueuedItem, RoutingDecision, RoutingStep, StepHours
from care.routing.rules import QueueRules, StepRule, TenantRules, rules_for_tenants
from care.routing.strategies import strategy_for
from care.tenants.calendar import ServiceCalendar, calendar_of
from care.tickets.models import Direction, Interaction, Ticket, TicketEvent
from care.tickets.services import ticket_assign
from care.tickets.status import ACTIONABLE

if TYPE_CHECKING:
    from care.accounts.models import User

logger = logging.getLogger(__name__)

# How many waiting items an agent who frees up looks at, most urgent first.
PULL_WINDOW = 100
# How many candidates a decision log keeps (the rest are counted).
LOGGED_CANDIDATES = 100
# An item no step applies to (e.g. out of hours, no out-of-hours step) is looked at again after this.
RECHECK_AFTER = dt.timedelta(seconds=60)
# The sweep retries an item whose next attempt is overdue by this much (its timer was lost).
SWEEP_GRACE = dt.timedelta(seconds=15)


# Set while routing itself assigns a ticket, so that the receiver can tell its own assignments from
# those made elsewhere (the admin's assignee field, a future desk form), which it logs as by hand.
_routing_assigns: contextvars.ContextVar[bool] = contextvars.ContextVar("routing_assigns", default=False)


@contextlib.contextmanager
def _as_router() -> Iterator[None]:
    token = _routing_assigns.set(True)
    try:
        yield
    finally:
        _routing_assigns.reset(token)


def _assign(*, ticket: Ticket, agent: Agent | None, actor: User | None) -> Ticket:
    with _as_router():
        return ticket_assign(ticket=ticket, agent=agent, actor=actor)


def assignment_logged_elsewhere(*, ticket: Ticket, event: TicketEvent) -> None:
    """Log an assignment made outside routing (e.g. the admin's assignee field) as one by hand."""
    if _routing_assigns.get() or event.actor_id is None:
        return
    before, after = (event.changes or {}).get("assignee", [None, None])
    now = timezone.now()
    if after is None:
        _log(
            None,
            ticket,
            RoutingDecision.Kind.RETURNED,
            now=now,
            agent=Agent.objects.filter(pk=before).first(),
            actor=event.actor,
            reason=_("unassigned by hand"),
        )
    else:
        _log(
            None,
            ticket,
            RoutingDecision.Kind.MANUAL,
            now=now,
            agent=Agent.objects.filter(pk=after).first(),
            actor=event.actor,
            reason=_("assigned by hand"),
        )


# --- Scheduling (after commit, robust: the sweep makes up for a lost message) ----------------------


def _after_commit(task_name: str, *args: Any, eta: dt.datetime | None = None) -> None:
    def send() -> None:
        from care.routing import tasks

        task = getattr(tasks, task_name)
        if eta is not None and eta > timezone.now():
            task.apply_async(args=args, eta=eta)
        else:
            task.delay(*args)

    transaction.on_commit(send, robust=True)


# --- Queueing ---------------------------------------------------------------------------------


def _waits(ticket: Ticket) -> bool:
    return ticket.status in ACTIONABLE and ticket.assignee_id is None and ticket.tenant.is_active


def routing_enqueue(*, ticket: Ticket, enqueued_at: dt.datetime | None = None) -> QueuedItem | None:
    """Put an unassigned, actionable ticket in its queue (idempotent) and route it after commit."""
    if not _waits(ticket):
        return None
    existing = QueuedItem.objects.filter(ticket=ticket).first()
    if existing is not None:
        return existing
    now = timezone.now()
    queue = rules_for_tenants([ticket.tenant_id])[ticket.tenant_id].match(
        channel=ticket.channel, language=ticket.language, tags=ticket.tags
    )
    try:
        with transaction.atomic():
            item = QueuedItem.objects.create(
                tenant_id=ticket.tenant_id,
                ticket=ticket,
                queue_id=queue.queue_id,
                channel=ticket.channel,
                language=ticket.language,
                priority=ticket.priority,
                sla_due_at=ticket.sla_due_at,
                enqueued_at=enqueued_at or now,
                queue_entered_at=now,
                next_attempt_at=now,
            )
    except IntegrityError:  # enqueued concurrently
        return QueuedItem.objects.filter(ticket=ticket).first()
    _after_commit("route_item", item.pk)
    return item


def routing_dequeue(*, ticket: Ticket) -> int:
    """Drop the ticket's queued item, unless a router holds it (it will see the ticket and drop it)."""
    items = QueuedItem.objects.select_for_update(skip_locked=True, of=("self",)).filter(ticket=ticket)
    deleted, _rows = QueuedItem.objects.filter(pk__in=list(items.values_list("pk", flat=True))).delete()
    return deleted


def routing_refresh(*, ticket: Ticket) -> None:
    """Copy the fields queues sort and match on after the ticket changed (priority, language, SLA)."""
    QueuedItem.objects.filter(
        pk__in=QueuedItem.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(ticket=ticket)
        .values("pk")
    ).update(priority=ticket.priority, language=ticket.language, sla_due_at=ticket.sla_due_at)


def agent_released(*, agent_id: int) -> None:
    """The agent finished or lost a piece of work: note when (longest idle) and offer them more."""

    def release() -> None:
        Agent.objects.filter(pk=agent_id).update(last_released_at=timezone.now())

    transaction.on_commit(release, robust=True)
    _after_commit("route_for_agent", agent_id)


# --- Deciding -----------------------------------------------------------------------------------


def _active_steps(
    queue: QueueRules, waited: dt.timedelta, calendar: ServiceCalendar | None, now: dt.datetime
) -> list[StepRule]:
    seconds = waited.total_seconds()
    is_open = calendar.is_open(now) if calendar is not None else True
    return [
        step
        for step in queue.steps
        if step.after_seconds <= seconds
        and (
            step.hours == StepHours.ANY
            or (step.hours == StepHours.OPEN and is_open)
            or (step.hours == StepHours.CLOSED and not is_open)
        )
    ]


def _needs_calendar(queue: QueueRules) -> bool:
    return any(step.hours != StepHours.ANY for step in queue.steps)


def _next_attempt(queue: QueueRules, item: QueuedItem, now: dt.datetime) -> dt.datetime:
    """When something changes for this item by time alone: the next step or the overflow."""
    boundaries = [item.queue_entered_at + dt.timedelta(seconds=s.after_seconds) for s in queue.steps]
    if queue.overflow_queue_id and queue.overflow_after_seconds is not None:
        boundaries.append(item.queue_entered_at + dt.timedelta(seconds=queue.overflow_after_seconds))
    future = [b for b in boundaries if b > now]
    if _needs_calendar(queue):
        future.append(now + RECHECK_AFTER)  # service hours open or close on the wall clock
    return min(future) if future else now + RECHECK_AFTER * 5


@dataclasses.dataclass
class _Tried:
    chosen: AgentFacts | None = None
    busy: set[int] = dataclasses.field(default_factory=set)
    tried: list[AgentFacts] = dataclasses.field(default_factory=list)


def _candidate_log(
    facts: Sequence[AgentFacts], need: Requirement | None, tried: _Tried, *, note: str = ""
) -> list[dict[str, Any]]:
    """The candidates in the order they were tried, then the rejected ones with their reasons."""
    entries: list[dict[str, Any]] = []
    tried_ids = {f.agent_id for f in tried.tried}
    for f in tried.tried:
        entry: dict[str, Any] = {"agent": f.agent_id, "name": f.name, "team": f.team_name, "rejected": []}
        if tried.chosen is not None and f.agent_id == tried.chosen.agent_id:
            entry["chosen"] = True
        elif f.agent_id in tried.busy:
            entry["rejected"] = [_("was being given other work by another worker")]
        entries.append(entry)
    others = [f for f in facts if f.agent_id not in tried_ids]
    for f in sorted(others, key=lambda f: f.name):
        reasons = rejections(f, need) if need is not None else []
        if not reasons and note:
            reasons = [note]
        entries.append({"agent": f.agent_id, "name": f.name, "team": f.team_name, "rejected": reasons})
    if len(entries) > LOGGED_CANDIDATES:
        rest = len(entries) - LOGGED_CANDIDATES
        entries = [*entries[:LOGGED_CANDIDATES], {"more": rest}]
    return entries


def _log(
    item: QueuedItem | None,
    ticket: Ticket,
    kind: str,
    *,
    now: dt.datetime,
    agent: Agent | None = None,
    actor: User | None = None,
    queue: QueueRules | None = None,
    step: StepRule | None = None,
    strategy: str = "",
    reason: str = "",
    candidates: list[dict[str, Any]] | None = None,
) -> RoutingDecision:
    enqueued_at = item.enqueued_at if item is not None else None
    return RoutingDecision.objects.create(
        tenant_id=ticket.tenant_id,
        ticket=ticket,
        kind=kind,
        agent=agent,
        actor=actor,
        queue_name=queue.name if queue is not None else "",
        step=step.label if step is not None else "",
        strategy=strategy,
        waited_seconds=max(0, int((now - enqueued_at).total_seconds())) if enqueued_at else 0,
        enqueued_at=enqueued_at,
        reason=reason[:500],
        candidates=candidates or [],
    )


def _lock_ticket(item: QueuedItem) -> Ticket | None:
    """The item's ticket, locked, if it still waits for an agent; otherwise the item is dropped."""
    ticket = Ticket.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=item.ticket_id)
    if not _waits(ticket):
        item.delete()
        return None
    return ticket


def _lock_free_agent(agent_id: int) -> Agent | None:
    # FOR NO KEY UPDATE, not FOR UPDATE: routers still exclude each other, but a transaction that
    # references the agent (a ticket assigned by hand; its deferred foreign-key check takes KEY SHARE
    # at commit) does not wait for us while we wait for its ticket, which would be a deadlock.
    return (
        Agent.objects.select_for_update(skip_locked=True, no_key=True, of=("self",))
        .select_related("user", "team")
        .filter(pk=agent_id, presence=Presence.ONLINE, user__is_active=True)
        .first()
    )


def _give(
    item: QueuedItem,
    ticket: Ticket,
    agent: Agent,
    *,
    queue: QueueRules,
    step: StepRule,
    strategy: str,
    candidates: list[dict[str, Any]],
    now: dt.datetime,
) -> RoutingDecision:
    """Offer or assign ``item`` to ``agent`` (whose row the caller holds locked)."""
    Agent.objects.filter(pk=agent.pk).update(last_routed_at=now)
    if agent.accepts_offers:
        item.state = QueuedItem.State.OFFERED
        item.offered_to = agent
        item.offer_expires_at = now + dt.timedelta(seconds=queue.offer_timeout_seconds)
        item.last_routed_at = now
        item.attempts = F("attempts") + 1
        item.save(
            update_fields=[
                "state",
                "offered_to",
                "offer_expires_at",
                "last_routed_at",
                "attempts",
                "updated_at",
            ]
        )
        decision = _log(
            item,
            ticket,
            RoutingDecision.Kind.OFFERED,
            now=now,
            agent=agent,
            queue=queue,
            step=step,
            strategy=strategy,
            candidates=candidates,
            reason=_("offered for %(seconds)d s") % {"seconds": queue.offer_timeout_seconds},
        )
        _after_commit("expire_offer", item.pk, eta=item.offer_expires_at)
        return decision
    decision = _log(
        item,
        ticket,
        RoutingDecision.Kind.ASSIGNED,
        now=now,
        agent=agent,
        queue=queue,
        step=step,
        strategy=strategy,
        candidates=candidates,
    )
    item.delete()
    _assign(ticket=ticket, agent=agent, actor=None)
    return decision


def _overflow(
    item: QueuedItem, ticket: Ticket, queue: QueueRules, rules: TenantRules, now: dt.datetime
) -> QueueRules:
    """Move the item on to the overflow queue if it waited long enough here; returns its queue."""
    if queue.overflow_queue_id is None or queue.overflow_after_seconds is None:
        return queue
    if (now - item.queue_entered_at).total_seconds() < queue.overflow_after_seconds:
        return queue
    target = rules.by_id.get(queue.overflow_queue_id)
    if target is None:  # the overflow queue was deactivated
        return queue
    _log(
        item,
        ticket,
        RoutingDecision.Kind.OVERFLOWED,
        now=now,
        queue=target,
        reason=_("waited %(seconds)d s in %(queue)s")
        % {"seconds": queue.overflow_after_seconds, "queue": queue.name},
    )
    item.queue_id, item.queue_entered_at, item.explained_steps = target.queue_id, now, ""
    item.save(update_fields=["queue", "queue_entered_at", "explained_steps", "updated_at"])
    return target


def route_item(*, item_id: int, now: dt.datetime | None = None) -> RoutingDecision | None:
    """Give one waiting item to the best eligible agent of its earliest step that has one free.

    Returns the decision (assigned, offered or waiting) or None when there was nothing to decide:
    the item is gone, offered, held by another worker, or its ticket no longer waits.
    """
    with transaction.atomic():
        item = (
            QueuedItem.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=item_id, state=QueuedItem.State.WAITING)
            .first()
        )
        if item is None:
            return None
        ticket = _lock_ticket(item)
        if ticket is None:
            return None
        now = now or timezone.now()
        rules = rules_for_tenants([ticket.tenant_id])[ticket.tenant_id]
        queue = _overflow(item, ticket, rules.for_queue(item.queue_id), rules, now)
        calendar = calendar_of(ticket.tenant) if _needs_calendar(queue) else None
        active = _active_steps(queue, now - item.queue_entered_at, calendar, now)
        facts = agent_facts(
            tenant_id=ticket.tenant_id,
            channel=item.channel,
            languages={item.language, *(s.language for s in active if s.language)},
            skill_id=queue.required_skill_id,
            now=now,
        )
        strategy = strategy_for(queue.strategy, item.channel)
        tried = _Tried()
        need: Requirement | None = None
        for step in active:
            need = _requirement(step, item, ticket, queue)
            eligible = [f for f in facts if not rejections(f, need)]
            tried = _Tried()
            for candidate in strategy.order(eligible):
                tried.tried.append(candidate)
                agent = _lock_free_agent(candidate.agent_id)
                if agent is None or current_load(agent.pk, item.channel) >= (candidate.capacity or 0):
                    tried.busy.add(candidate.agent_id)
                    continue
                tried.chosen = candidate
                return _give(
                    item,
                    ticket,
                    agent,
                    queue=queue,
                    step=step,
                    strategy=strategy.name,
                    candidates=_candidate_log(facts, need, tried),
                    now=now,
                )
        return _wait(item, ticket, queue, active, facts, need, tried, now)


def _requirement(step: StepRule, item: QueuedItem, ticket: Ticket, queue: QueueRules) -> Requirement:
    return Requirement.for_step(
        step,
        channel=item.channel,
        language=item.language,
        tenant_level=ticket.tenant.required_proficiency,
        skill_name=queue.required_skill_name,
        declined_by=item.declined_by,
    )


def _wait(
    item: QueuedItem,
    ticket: Ticket,
    queue: QueueRules,
    active: list[StepRule],
    facts: list[AgentFacts],
    need: Requirement | None,
    tried: _Tried,
    now: dt.datetime,
) -> RoutingDecision | None:
    """Nobody could take the item: log why (once per set of active steps) and schedule the next try."""
    key = ",".join(step.key for step in active) or "-"
    decision = None
    if item.explained_steps != key:
        reason = (
            _("no step applies now (outside service hours?)")
            if not active
            else _("nobody eligible is free at any active step")
        )
        decision = _log(
            item,
            ticket,
            RoutingDecision.Kind.WAITING,
            now=now,
            queue=queue,
            step=active[-1] if active else None,
            reason=reason,
            candidates=_candidate_log(facts, need, tried, note=_("no step applies now")),
        )
    scheduled = item.next_attempt_at
    item.explained_steps = key
    item.attempts = F("attempts") + 1
    item.last_routed_at = now
    item.next_attempt_at = _next_attempt(queue, item, now)
    item.save(
        update_fields=["explained_steps", "attempts", "last_routed_at", "next_attempt_at", "updated_at"]
    )
    # One timer per boundary: an attempt made early (an agent freed up, the sweep) leaves the timer
    # already scheduled for the same instant alone instead of adding another.
    if scheduled is None or scheduled <= now or scheduled != item.next_attempt_at:
        _after_commit("route_item", item.pk, eta=item.next_attempt_at)
    return decision


def route_for_agent(*, agent_id: int, now: dt.datetime | None = None) -> RoutingDecision | None:
    """An agent freed up (came online, finished work, declined): give them the most urgent waiting item
    of their tenants that they are eligible for now. One item per call; callers loop while it gives."""
    with transaction.atomic():
        agent = _lock_free_agent(agent_id)
        if agent is None:
            return None
        now = now or timezone.now()
        profile = agent_profile(agent, now=now)
        spare = profile.spare_channels()
        if not profile.on_shift or not spare or not profile.skills_by_tenant:
            return None
        items = list(
            QueuedItem.objects.filter(
                state=QueuedItem.State.WAITING,
                tenant_id__in=list(profile.skills_by_tenant),
                channel__in=spare,
            )
            # Work in a language the agent does not speak is skipped, unless its queue has a
            # fallback-language step: the window is then filled with work they might take.
            .filter(
                Q(language__in=list(profile.languages))
                | Q(queue_id__in=RoutingStep.objects.exclude(language="").values("queue_id"))
            )
            .exclude(declined_by__contains=[agent.pk])
            .select_related("tenant")
            .order_by(F("sla_due_at").asc(nulls_last=True), "-priority", "enqueued_at", "pk")[:PULL_WINDOW]
        )
        if not items:
            return None
        rules = rules_for_tenants({item.tenant_id for item in items})
        calendars: dict[int, ServiceCalendar] = {}
        for item in items:
            queue = rules[item.tenant_id].for_queue(item.queue_id)
            calendar = None
            if _needs_calendar(queue):
                calendar = calendars.setdefault(item.tenant_id, calendar_of(item.tenant))
            facts = profile.facts_for(
                tenant_id=item.tenant_id, channel=item.channel, skill_id=queue.required_skill_id
            )
            for step in _active_steps(queue, now - item.queue_entered_at, calendar, now):
                need = Requirement.for_step(
                    step,
                    channel=item.channel,
                    language=item.language,
                    tenant_level=item.tenant.required_proficiency,
                    skill_name=queue.required_skill_name,
                    declined_by=item.declined_by,
                )
                if rejections(facts, need):
                    continue
                locked = (
                    QueuedItem.objects.select_for_update(skip_locked=True, of=("self",))
                    .filter(pk=item.pk, state=QueuedItem.State.WAITING)
                    .first()
                )
                if locked is None:
                    break
                ticket = _lock_ticket(locked)
                if ticket is None:
                    break
                tried = _Tried(chosen=facts, tried=[facts])
                return _give(
                    locked,
                    ticket,
                    agent,
                    queue=queue,
                    step=step,
                    strategy="agent_freed_up",
                    candidates=_candidate_log([facts], need, tried),
                    now=now,
                )
        return None


# --- Offers -------------------------------------------------------------------------------------


def _locked_offer(item_id: int, agent: Agent) -> QueuedItem:
    item = QueuedItem.objects.select_for_update(of=("self",)).filter(pk=item_id).first()
    if item is None or item.state != QueuedItem.State.OFFERED or item.offered_to_id != agent.pk:
        raise BusinessRuleViolation(_("This offer is no longer open."))
    return item


def offer_accept(*, item_id: int, agent: Agent) -> Ticket:
    """The agent takes the offered work: it is assigned to them."""
    with transaction.atomic():
        item = _locked_offer(item_id, agent)
        now = timezone.now()
        assert item.offer_expires_at is not None  # noqa: S101 - an offered item has an expiry (constraint)
        if item.offer_expires_at <= now:
            raise BusinessRuleViolation(_("The offer timed out; the work went back to the queue."))
        ticket = (
            Ticket.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=item.ticket_id)
        )
        still_waits = ticket.status in ACTIONABLE and ticket.assignee_id is None
        if still_waits:
            _log(item, ticket, RoutingDecision.Kind.ACCEPTED, now=now, agent=agent, actor=agent.user)
        item.delete()  # committed either way: an offer of work that no longer waits must not expire later
        if still_waits:
            return _assign(ticket=ticket, agent=agent, actor=agent.user)
    raise BusinessRuleViolation(_("This ticket no longer waits for an agent."))


def _withdraw(item: QueuedItem, kind: str, *, now: dt.datetime, actor: User | None, reason: str = "") -> None:
    agent_id = item.offered_to_id
    ticket = Ticket.objects.select_related("tenant").get(pk=item.ticket_id)
    _log(item, ticket, kind, now=now, agent=item.offered_to, actor=actor, reason=reason)
    item.state = QueuedItem.State.WAITING
    item.offered_to = None
    item.offer_expires_at = None
    item.explained_steps = ""
    if agent_id is not None and agent_id not in item.declined_by:
        item.declined_by = [*item.declined_by, agent_id]
    item.save(
        update_fields=[
            "state",
            "offered_to",
            "offer_expires_at",
            "explained_steps",
            "declined_by",
            "updated_at",
        ]
    )
    _after_commit("route_item", item.pk)


@transaction.atomic
def offer_decline(*, item_id: int, agent: Agent, reason: str = "") -> None:
    """The agent turns the offer down: the work goes back to the queue, not to them again."""
    item = _locked_offer(item_id, agent)
    _withdraw(item, RoutingDecision.Kind.DECLINED, now=timezone.now(), actor=agent.user, reason=reason)
    _after_commit("route_for_agent", agent.pk)


def offer_expire(*, item_id: int, now: dt.datetime | None = None) -> bool:
    """Time out an unanswered offer (idempotent): back to the queue, and the silent agent is set away
    so that the next item does not wait on them too."""
    from care.accounts.services import agent_set_presence

    now = now or timezone.now()
    with transaction.atomic():
        item = (
            QueuedItem.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("offered_to")
            .filter(pk=item_id, state=QueuedItem.State.OFFERED, offer_expires_at__lte=now)
            .first()
        )
        if item is None:
            return False
        agent = item.offered_to
        _withdraw(item, RoutingDecision.Kind.EXPIRED, now=now, actor=None, reason=_("no answer in time"))
        if agent is not None and agent.presence == Presence.ONLINE:
            agent_set_presence(agent=agent, presence=Presence.AWAY)
    return True


# --- Returns and manual assignment ----------------------------------------------------------------


def _started(ticket: Ticket, agent: Agent) -> bool:
    """Whether the agent did anything on the ticket since it was last assigned to them."""
    assigned = (
        TicketEvent.objects.filter(ticket=ticket, kind=TicketEvent.Kind.ASSIGNED)
        .order_by("-created_at", "-id")
        .values_list("created_at", flat=True)
        .first()
    )
    return Interaction.objects.filter(
        ticket=ticket,
        author_user_id=agent.user_id,
        direction__in=[Direction.OUTBOUND, Direction.NOTE],
        created_at__gte=assigned or ticket.created_at,
    ).exists()


def _original_wait_start(ticket: Ticket) -> dt.datetime | None:
    return (
        RoutingDecision.objects.filter(ticket=ticket, enqueued_at__isnull=False)
        .order_by("-created_at", "-id")
        .values_list("enqueued_at", flat=True)
        .first()
    )


@transaction.atomic
def return_unstarted_work(*, agent: Agent, actor: User | None = None, reason: str = "") -> int:
    """Take back what the agent has not started (and withdraw their offers); it waits again where it
    waited before. Used when an agent goes offline. Returns the number of items returned."""
    now = timezone.now()
    reason = reason or _("the agent went offline")
    count = 0
    for item in QueuedItem.objects.select_for_update(skip_locked=True, of=("self",)).filter(
        offered_to=agent, state=QueuedItem.State.OFFERED
    ):
        _withdraw(item, RoutingDecision.Kind.RETURNED, now=now, actor=actor, reason=reason)
        count += 1
    tickets = (
        Ticket.objects.select_related("tenant").filter(assignee=agent, status__in=ACTIONABLE).order_by("pk")
    )
    for ticket in tickets:
        if _started(ticket, agent):
            continue
        waiting_since = _original_wait_start(ticket)
        ticket = _assign(ticket=ticket, agent=None, actor=actor)  # the receiver enqueues it again
        if waiting_since is not None:
            QueuedItem.objects.filter(ticket=ticket).update(enqueued_at=waiting_since)
        queued = QueuedItem.objects.filter(ticket=ticket).first()
        _log(queued, ticket, RoutingDecision.Kind.RETURNED, now=now, agent=agent, actor=actor, reason=reason)
        count += 1
    return count


def routing_escalate(*, ticket: Ticket, queue_id: int, reason: str) -> bool:
    """Route the ticket again through another queue of its tenant (e.g. an SLA breach sending work to
    the overflow pool): waiting work moves to that queue now; assigned work the agent has not started
    is taken back and queued there. Returns whether the ticket was moved."""
    now = timezone.now()
    with transaction.atomic():
        locked = Ticket.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=ticket.pk)
        target = rules_for_tenants([locked.tenant_id])[locked.tenant_id].by_id.get(queue_id)
        if target is None or locked.status not in ACTIONABLE:
            return False
        if locked.assignee_id is not None:
            agent = Agent.objects.get(pk=locked.assignee_id)
            if _started(locked, agent):
                return False
            waiting_since = _original_wait_start(locked)
            locked = _assign(ticket=locked, agent=None, actor=None)  # the receiver queues it again
            if waiting_since is not None:
                QueuedItem.objects.filter(ticket=locked).update(enqueued_at=waiting_since)
        item = (
            QueuedItem.objects.select_for_update(skip_locked=True, of=("self",)).filter(ticket=locked).first()
        )
        if item is None or item.state != QueuedItem.State.WAITING:
            return False
        if item.queue_id == queue_id:  # already waiting there: keep its place in the steps
            return False
        item.queue_id, item.queue_entered_at, item.explained_steps, item.next_attempt_at = (
            queue_id,
            now,
            "",
            now,
        )
        item.save(
            update_fields=["queue", "queue_entered_at", "explained_steps", "next_attempt_at", "updated_at"]
        )
        _log(item, locked, RoutingDecision.Kind.OVERFLOWED, now=now, queue=target, reason=reason)
        _after_commit("route_item", item.pk)
        return True


def _check_supervisor(actor: User, ticket: Ticket) -> None:
    if not actor.is_active or not (actor.sees_all_tenants or actor.role == Role.SUPERVISOR):
        raise BusinessRuleViolation(_("Only supervisors and administrators assign work by hand."))
    if not actor.may_see_tenant(ticket.tenant_id):
        raise BusinessRuleViolation(_("You are not authorised for this tenant."))


@transaction.atomic
def routing_assign_by_hand(*, ticket: Ticket, agent: Agent | None, actor: User, note: str = "") -> Ticket:
    """A supervisor assigns, reassigns or (agent None) returns the ticket to the queue.

    The agent must be authorised for the tenant; presence and capacity are the supervisor's call, but
    what routing would have objected to is logged with the decision.
    """
    _check_supervisor(actor, ticket)
    locked = Ticket.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=ticket.pk)
    now = timezone.now()
    if agent is None:
        before = locked.assignee
        locked = _assign(ticket=locked, agent=None, actor=actor)
        item = QueuedItem.objects.filter(ticket=locked).first()
        _log(
            item,
            locked,
            RoutingDecision.Kind.RETURNED,
            now=now,
            agent=before,
            actor=actor,
            reason=note or _("returned to the queue by a supervisor"),
        )
        return locked
    if not agent.authorisations.filter(tenant_id=locked.tenant_id).exists():
        raise BusinessRuleViolation(
            _("%(agent)s is not authorised for %(tenant)s.") % {"agent": agent, "tenant": locked.tenant}
        )
    item = QueuedItem.objects.filter(ticket=locked).first()
    facts = [
        f
        for f in agent_facts(
            tenant_id=locked.tenant_id,
            channel=locked.channel,
            languages={locked.language},
            skill_id=None,
            now=now,
        )
        if f.agent_id == agent.pk
    ]
    need = Requirement(
        channel=locked.channel, language=locked.language, min_proficiency=locked.tenant.required_proficiency
    )
    objections = rejections(facts[0], need) if facts else []
    _log(
        item,
        locked,
        RoutingDecision.Kind.MANUAL,
        now=now,
        agent=agent,
        actor=actor,
        reason=note or _("assigned by hand"),
        candidates=[{"agent": agent.pk, "name": str(agent), "chosen": True, "rejected": objections}],
    )
    return _assign(ticket=locked, agent=agent, actor=actor)


# --- Safety net -----------------------------------------------------------------------------------


def routing_sweep(*, now: dt.datetime | None = None, batch: int = 200) -> dict[str, int]:
    """Make up for lost timers and triggers, in bounded batches: expire offers, queue tickets that
    wait without an item, retry items whose next step is due, and let idle agents pull."""
    from care.routing import tasks

    now = now or timezone.now()
    expired = 0
    for item_id in QueuedItem.objects.filter(
        state=QueuedItem.State.OFFERED, offer_expires_at__lte=now
    ).values_list("pk", flat=True)[:batch]:
        expired += offer_expire(item_id=item_id, now=now)
    orphans = 0
    for ticket in Ticket.objects.select_related("tenant").filter(
        assignee__isnull=True, status__in=ACTIONABLE, tenant__is_active=True, queued_item__isnull=True
    )[:batch]:
        with transaction.atomic():
            orphans += routing_enqueue(ticket=ticket) is not None
    due = list(
        # Only items whose timer is overdue by a margin: those whose task was lost, not those whose
        # task is about to run.
        QueuedItem.objects.filter(state=QueuedItem.State.WAITING, next_attempt_at__lte=now - SWEEP_GRACE)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:batch]
    )
    for item_id in due:
        tasks.route_item.delay(item_id)
    pulls = 0
    if QueuedItem.objects.filter(state=QueuedItem.State.WAITING).exists():
        for agent_id in (
            Agent.objects.filter(presence=Presence.ONLINE, user__is_active=True)
            .order_by(F("last_routed_at").asc(nulls_first=True), "pk")
            .values_list("pk", flat=True)[:batch]
        ):
            tasks.route_for_agent.delay(agent_id)
            pulls += 1
    return {"expired_offers": expired, "enqueued": orphans, "retried": len(due), "pulls": pulls}
