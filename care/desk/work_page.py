"""The agent's "My work" page: the tickets assigned to me across every tenant I am authorised for,
most urgent first, and the routing offers waiting for my answer (accept or decline, posted to the
same URL so the page needs no URL of its own beyond /desk/work/).

The page costs a fixed number of queries whatever the number of tickets: the tickets come with
their tenant and customer in one query, the offers with their ticket and tenant in another.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.timesince import timesince, timeuntil
from django.utils.translation import gettext as _

from care.accounts.models import Agent, User
from care.core.errors import BusinessRuleViolation
from care.desk.access import desk_user_required
from care.mentions.selectors import unread_mentions
from care.realtime.streams import agent_stream
from care.routing.models import QueuedItem
from care.routing.selectors import offers_for_agent
from care.routing.services import offer_accept, offer_decline
from care.tickets.models import Ticket
from care.tickets.selectors import QUEUE_ORDER
from care.tickets.status import Status

# What "my work" is: the tickets that still need me. On hold, solved and closed ones are not.
MY_STATUSES = (Status.NEW, Status.OPEN, Status.PENDING)
# A sane page: an agent with more assigned tickets than this has a routing problem, not a list.
MAX_TICKETS = 200
# An SLA due within this time is shown as "due soon" (amber) rather than "on time".
DUE_SOON = dt.timedelta(hours=1)


@dataclass(frozen=True)
class SlaBadge:
    kind: str  # "overdue" | "soon" | "ok" | "none": the badge's style
    text: str
    due_at: dt.datetime | None


def sla_badge(due_at: dt.datetime | None, now: dt.datetime) -> SlaBadge:
    """The SLA state of a ticket in words, from its nearest running target's due time."""
    if due_at is None:
        return SlaBadge("none", _("No SLA"), None)
    if due_at <= now:
        return SlaBadge(
            "overdue", _("Overdue by %(time)s") % {"time": timesince(due_at, now, depth=1)}, due_at
        )
    kind = "soon" if due_at - now <= DUE_SOON else "ok"
    return SlaBadge(kind, _("Due in %(time)s") % {"time": timeuntil(due_at, now, depth=1)}, due_at)


def _agent_of(user: User) -> Agent | None:
    # Supervisors and admins may have no agent profile: they then have no work of their own.
    try:
        agent: Agent = user.agent
    except ObjectDoesNotExist:
        return None
    return agent


def my_tickets(*, user: User, agent: Agent) -> list[Ticket]:
    """The agent's open work, most urgent first; one query (tenant and customer joined)."""
    return list(
        Ticket.objects.visible_to(user)
        .filter(assignee=agent, status__in=list(MY_STATUSES))
        .select_related("tenant", "customer")
        .order_by(*QUEUE_ORDER)[:MAX_TICKETS]
    )


def _rows(tickets: list[Ticket], now: dt.datetime) -> list[dict[str, Any]]:
    return [{"ticket": ticket, "sla": sla_badge(ticket.sla_due_at, now)} for ticket in tickets]


def _context(user: User) -> dict[str, Any]:
    agent = _agent_of(user)
    now = timezone.now()
    tickets = my_tickets(user=user, agent=agent) if agent is not None else []
    offers = list(offers_for_agent(user=user, agent=agent)) if agent is not None else []
    active = [ticket for ticket in tickets if ticket.status != Status.PENDING]
    pending = [ticket for ticket in tickets if ticket.status == Status.PENDING]
    return {
        "agent": agent,
        # Pending tickets wait on the customer: listed apart, after the work that waits on me.
        "groups": [
            {"kind": "active", "title": "", "rows": _rows(active, now)},
            {"kind": "pending", "title": _("Waiting on the customer"), "rows": _rows(pending, now)},
        ],
        "count": len(tickets),
        "offers": offers,
        # Notes that @mention me, on tickets of tenants I still see (one query; issue 9, composer).
        "mentions": unread_mentions(user=user),
        "live_config": {
            "stream": agent_stream(agent.pk) if agent is not None else None,
            # The script re-words the SLA badges as time passes, in the user's language.
            "text": {"due_in": _("Due in %(time)s"), "overdue": _("Overdue by %(time)s")},
        },
    }


def _answer_offer(request: HttpRequest, user: User) -> HttpResponse:
    """Accept or decline one offer; any failure is a message on the page, never an error page."""
    back = redirect("desk:my_work")
    back.status_code = 303
    agent = _agent_of(user)
    action = request.POST.get("action", "")
    raw_item = request.POST.get("item", "").strip()
    if action not in ("accept", "decline"):
        messages.error(request, _("Unknown action: choose Accept or Decline."))
        return back
    if agent is None:
        messages.error(request, _("Only agents receive offers."))
        return back
    item_id = int(raw_item) if raw_item.isascii() and raw_item.isdigit() else None
    # The offer must be mine and of a tenant I still see; the services check the first again.
    if (
        item_id is None
        or not QueuedItem.objects.visible_to(user).filter(pk=item_id, offered_to=agent).exists()
    ):
        messages.error(request, _("This offer is no longer open."))
        return back
    try:
        if action == "accept":
            ticket = offer_accept(item_id=item_id, agent=agent)
        else:
            offer_decline(item_id=item_id, agent=agent)
    except BusinessRuleViolation as exc:
        messages.error(request, " ".join(exc.messages))
        return back
    if action == "decline":
        messages.success(request, _("Offer declined: the work goes back to the queue."))
        return back
    response = redirect("desk:ticket", reference=ticket.reference)
    response.status_code = 303
    return response


@desk_user_required
def page(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)  # noqa: S101 - desk_user_required ran
    if request.method == "POST":
        return _answer_offer(request, user)
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD", "POST"])
    # The page's script re-reads this same page on live events and swaps in its list region.
    return render(request, "desk/my_work.html", _context(user))
