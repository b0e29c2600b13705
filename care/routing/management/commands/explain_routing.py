"""``manage.py explain_routing ENN-12``: why a ticket went (or did not go) to whom.

Prints the ticket's place in the queue and every routing decision with its step and each candidate's
reasons (``routing.selectors.explain_ticket``); ``--json`` prints the same as one JSON object.
An unknown or malformed reference exits non-zero with a message on stderr.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from care.routing.models import QueuedItem, RoutingDecision
from care.routing.selectors import decisions_for_ticket, explain_ticket
from care.tickets.models import Ticket
from care.tickets.selectors import parse_reference


class Command(BaseCommand):
    help = "Explain how a ticket was routed: where it waits and every decision with its reasons."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("reference", help="The ticket's reference, e.g. ENN-12.")
        parser.add_argument("--json", action="store_true", help="Print the decisions as one JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        ticket = _ticket(options["reference"])
        if options["json"]:
            self.stdout.write(json.dumps(_as_data(ticket), ensure_ascii=False, indent=2))
        else:
            self.stdout.write(explain_ticket(ticket))


def _ticket(reference: str) -> Ticket:
    parsed = parse_reference(reference)
    if parsed is None:
        raise CommandError(
            _("%(reference)r is not a ticket reference; use the tenant's code and the number, e.g. ENN-12.")
            % {"reference": reference}
        )
    code, number = parsed
    ticket = Ticket.objects.select_related("tenant").filter(tenant__code=code, number=number).first()
    if ticket is None:
        raise CommandError(_("There is no ticket %(reference)s.") % {"reference": f"{code}-{number}"})
    return ticket


def _as_data(ticket: Ticket) -> dict[str, Any]:
    item = QueuedItem.objects.select_related("queue", "offered_to__user").filter(ticket=ticket).first()
    return {
        "ticket": ticket.reference,
        "subject": ticket.subject,
        "status": ticket.status,
        "queued": _item_data(item) if item is not None else None,
        "decisions": [_decision_data(d) for d in decisions_for_ticket(ticket)],
    }


def _item_data(item: QueuedItem) -> dict[str, Any]:
    return {
        "state": item.state,
        "queue": item.queue.name if item.queue else None,
        "waiting_since": item.enqueued_at.isoformat(),
        "offered_to": str(item.offered_to) if item.offered_to else None,
        "offer_expires_at": item.offer_expires_at.isoformat() if item.offer_expires_at else None,
        "next_attempt_at": item.next_attempt_at.isoformat() if item.next_attempt_at else None,
    }


def _decision_data(decision: RoutingDecision) -> dict[str, Any]:
    agent = decision.agent
    return {
        "at": decision.created_at.isoformat(),
        "kind": decision.kind,
        "agent": {"id": agent.pk, "name": agent.user.full_name or agent.user.email} if agent else None,
        "by": str(decision.actor) if decision.actor else None,
        "queue": decision.queue_name,
        "step": decision.step,
        "strategy": decision.strategy,
        "waited_seconds": decision.waited_seconds,
        "reason": decision.reason,
        "candidates": decision.candidates,
    }
