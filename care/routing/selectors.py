"""Reads of routing: the decision log of a ticket (and its text form), and the queues at a glance."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, Min, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from care.accounts.models import Agent
from care.routing.models import QueuedItem, RoutingDecision
from care.tickets.models import Ticket


def offers_for_agent(*, user: Any, agent: Agent) -> QuerySet[QueuedItem]:
    """The agent's offers that have not timed out, of tenants the user still sees; one query."""
    return (
        QueuedItem.objects.visible_to(user)
        .filter(offered_to=agent, state=QueuedItem.State.OFFERED, offer_expires_at__gt=timezone.now())
        .select_related("ticket__tenant")
        .order_by("offer_expires_at", "pk")
    )


def decisions_for_ticket(ticket: Ticket) -> QuerySet[RoutingDecision]:
    return (
        RoutingDecision.objects.filter(tenant_id=ticket.tenant_id, ticket=ticket)
        .select_related("agent__user", "actor")
        .order_by("created_at", "id")
    )


def explain_decision(decision: RoutingDecision) -> list[str]:
    """One decision as readable lines: what happened, by which step, and each candidate's reasons."""
    who = decision.agent.user.full_name or decision.agent.user.email if decision.agent else ""
    head = f"{decision.created_at:%Y-%m-%d %H:%M:%S} {decision.get_kind_display()}"
    if who:
        head += f" → {who}"
    lines = [head]
    details = []
    if decision.queue_name:
        details.append(_("queue %(queue)s") % {"queue": decision.queue_name})
    if decision.step:
        details.append(_("step %(step)s") % {"step": decision.step})
    if decision.strategy:
        details.append(_("strategy %(strategy)s") % {"strategy": decision.strategy})
    if decision.enqueued_at:
        details.append(_("waited %(seconds)d s") % {"seconds": decision.waited_seconds})
    if decision.actor_id:
        details.append(_("by %(actor)s") % {"actor": decision.actor})
    if details:
        lines.append("    " + ", ".join(details))
    if decision.reason:
        lines.append("    " + decision.reason)
    for candidate in decision.candidates:
        if "more" in candidate:
            lines.append("    " + _("… and %(count)d more candidates") % {"count": candidate["more"]})
            continue
        if candidate.get("chosen"):
            verdict = _("chosen")
        elif candidate.get("rejected"):
            verdict = _("rejected: %(reasons)s") % {"reasons": "; ".join(candidate["rejected"])}
        else:
            verdict = _("eligible")
        lines.append(f"    - {candidate.get('name', candidate.get('agent'))}: {verdict}")
    return lines


def explain_ticket(ticket: Ticket) -> str:
    lines = [f"{ticket.reference} {ticket.subject}"]
    item = QueuedItem.objects.filter(ticket=ticket).first()
    if item is not None:
        lines.append(
            (
                _("Waiting since %(since)s")
                if item.state == QueuedItem.State.WAITING
                else _("Offered, waiting since %(since)s")
            )
            % {"since": item.enqueued_at}
        )
    decisions = list(decisions_for_ticket(ticket))
    if not decisions:
        lines.append(_("No routing decisions yet."))
    for decision in decisions:
        lines.extend(explain_decision(decision))
    return "\n".join(lines)


def queue_overview(*, tenant_ids: list[int], now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Per tenant and queue: items waiting, offered, and the longest wait in seconds."""
    now = now or timezone.now()
    rows = (
        QueuedItem.objects.filter(tenant_id__in=tenant_ids)
        .values("tenant_id", "tenant__code", "queue_id", "queue__name")
        .annotate(
            waiting=Count("pk", filter=Q(state=QueuedItem.State.WAITING)),
            offered=Count("pk", filter=Q(state=QueuedItem.State.OFFERED)),
            oldest=Min("enqueued_at"),
        )
        .order_by("tenant__code", "queue__name")
    )
    return [
        {
            "tenant": row["tenant__code"],
            "queue": row["queue__name"] or _("Default"),
            "waiting": row["waiting"],
            "offered": row["offered"],
            "longest_wait_seconds": int((now - row["oldest"]).total_seconds()) if row["oldest"] else 0,
        }
        for row in rows
    ]
