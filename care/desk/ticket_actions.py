"""What an agent does to a ticket from its page: status, priority, tags, assignment, merge and link.

The panel (``templates/desk/ticket_actions.html``) is rendered with the page from ``actions_context``
and again, alone, by every action's JSON answer and by ``GET …/actions`` (the panel's script re-reads
it when the ticket changed elsewhere), so there is one rendering of the panel, not a second one in
script. Every action is a POST to ``…/actions/<action>``:

- with ``Accept: application/json`` the answer is ``{"ticket": facts, "html": panel}`` (``"confirm":
  true`` when a merge waits for its confirmation), or ``{"error": message}`` with status 400;
- as a plain form post it redirects (303) back to the ticket page, or shows the page with the message
  in the panel (400), or the merge's confirmation (200).

Writes go through the services: ``ticket_change_status``, ``ticket_update`` (priority, tags),
``ticket_assign`` for "assign to me" (routing's receiver logs it as a decision by hand, and takes the
ticket out of its queue), routing's ``routing_assign_by_hand`` when a supervisor assigns someone else
or returns the ticket to the queue, ``ticket_merge``, ``ticket_link`` and ``ticket_unlink``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from care.accounts.models import Agent, Role, User
from care.core.errors import BusinessRuleViolation
from care.desk.access import actor, desk_user_required, wants_json
from care.routing.services import routing_assign_by_hand
from care.tickets.models import Priority, Ticket, TicketLink
from care.tickets.selectors import access_ticket
from care.tickets.services import (
    ticket_assign,
    ticket_change_status,
    ticket_link,
    ticket_merge,
    ticket_merge_check,
    ticket_unlink,
    ticket_update,
)
from care.tickets.status import TRANSITIONS, Status

# A tag is stored in a field of 50 characters; a ticket carries a handful, not hundreds.
MAX_TAG_CHARS = 50
MAX_TAGS = 30
# A reference is a tenant code (up to 10) and a number (up to 9 digits); more is not a reference.
MAX_REFERENCE_CHARS = 30
# Attribute on the page's ticket object that carries this panel's error or pending confirmation to
# ``actions_context`` when the whole page is rendered after a plain form post (the page's context
# is built by care/desk/views.py, which hands this part only the ticket and the user).
_PANEL_STATE = "_desk_actions_state"


# --- who may do what ------------------------------------------------------------------------------


def assigns_others(user: User) -> bool:
    """Supervisors and administrators assign anyone (routing checks it again); agents take work."""
    return bool(user.is_active and (user.sees_all_tenants or user.role == Role.SUPERVISOR))


def _tenant_agents(ticket: Ticket) -> list[Agent]:
    """The active agents authorised for the ticket's tenant, with their users: one query."""
    return list(
        Agent.objects.filter(authorisations__tenant_id=ticket.tenant_id, user__is_active=True)
        .select_related("user")
        .order_by("user__full_name", "user__email")
    )


def _my_agent_id(ticket: Ticket, user: User) -> int | None:
    """The user's agent if authorised for the ticket's tenant (one query), else None."""
    return (
        Agent.objects.filter(user_id=user.pk, authorisations__tenant_id=ticket.tenant_id)
        .values_list("pk", flat=True)
        .first()
    )


# --- the panel's context ----------------------------------------------------------------------------


def _links(ticket: Ticket) -> tuple[list[dict[str, Any]], Ticket | None, list[Ticket]]:
    """Links in both directions (one query: the other tickets joined, their tenant is the ticket's),
    the ticket this one was merged into, and those merged into it."""
    rows = (
        TicketLink.objects.filter(Q(source_id=ticket.pk) | Q(target_id=ticket.pk))
        .select_related("source", "target")
        .order_by("created_at", "id")
    )
    outgoing_labels: dict[str, str] = {
        TicketLink.Kind.FOLLOW_UP: _("Follow-up of"),
        TicketLink.Kind.RELATED: _("Related to"),
        TicketLink.Kind.MERGED: _("Merged into"),
    }
    incoming_labels: dict[str, str] = {
        TicketLink.Kind.FOLLOW_UP: _("Followed up by"),
        TicketLink.Kind.RELATED: _("Related to"),
        TicketLink.Kind.MERGED: _("Merged from"),
    }
    links: list[dict[str, Any]] = []
    merged_into: Ticket | None = None
    merged_from: list[Ticket] = []
    for link in rows:
        outgoing = link.source_id == ticket.pk
        other = link.target if outgoing else link.source
        other.tenant = ticket.tenant  # links join tickets of one tenant: no query for it
        if link.kind == TicketLink.Kind.MERGED:
            if outgoing:
                merged_into = other
            else:
                merged_from.append(other)
        labels = outgoing_labels if outgoing else incoming_labels
        links.append(
            {
                "id": link.pk,
                "kind": link.kind,
                "label": labels.get(link.kind, link.get_kind_display()),
                "ticket": other,
                "removable": link.kind != TicketLink.Kind.MERGED,
            }
        )
    return links, merged_into, merged_from


def actions_context(*, ticket: Ticket, user: User) -> dict[str, Any]:
    """The template context this part adds to the ticket page: two queries (the links, and the
    agents a supervisor may assign or the user's own agent), whatever the number of links, tags or
    agents."""
    state: dict[str, Any] = getattr(ticket, _PANEL_STATE, {})
    links, merged_into, merged_from = _links(ticket)
    others = assigns_others(user)
    agents = _tenant_agents(ticket) if others else []
    if others:
        me = next((agent.pk for agent in agents if agent.user_id == user.pk), None)
    else:
        me = _my_agent_id(ticket, user)
    current = ticket.status
    statuses = [
        (value, label) for value, label in Status.choices if value == current or value in TRANSITIONS[current]
    ]
    return {
        "actions": {
            "statuses": statuses,
            "priorities": Priority.choices,
            "tags": list(ticket.tags),
            "me": me,
            "assigned_to_me": me is not None and ticket.assignee_id == me,
            "assigns_others": others,
            "agents": agents,
            "links": links,
            "merged_into": merged_into,
            "merged_from": merged_from,
            "closed": current == Status.CLOSED,
            "max_tag_chars": MAX_TAG_CHARS,
            "error": state.get("error", ""),
            "confirm_merge": state.get("confirm_merge"),
            "merge_reference": state.get("merge_reference", ""),
            "link_reference": state.get("link_reference", ""),
        }
    }


def _facts(ticket: Ticket) -> dict[str, Any]:
    """The header's facts, shaped like the live events' ticket (as ticket.js reads them)."""
    assignee = ticket.assignee
    return {
        "id": ticket.pk,
        "reference": ticket.reference,
        "status": ticket.status,
        "priority": ticket.priority,
        "subject": ticket.subject,
        "tags": list(ticket.tags),
        "assignee": {"id": assignee.pk, "name": str(assignee)} if assignee is not None else None,
    }


def _reload(ticket: Ticket, user: User) -> Ticket:
    """The ticket as it is now, loaded as the page loads it."""
    return access_ticket(user, ticket.pk)


def _panel_html(request: HttpRequest, ticket: Ticket, user: User) -> str:
    context = {"ticket": ticket, **actions_context(ticket=ticket, user=user)}
    return render_to_string(
        "desk/ticket_actions.html", {**context, "actions_panel_only": True}, request=request
    )


def _panel_answer(request: HttpRequest, ticket: Ticket, user: User, **extra: Any) -> JsonResponse:
    return JsonResponse({"ticket": _facts(ticket), "html": _panel_html(request, ticket, user), **extra})


def _page(request: HttpRequest, ticket: Ticket, *, status: int, **state: Any) -> HttpResponse:
    from care.desk.views import _render_ticket  # views imports this module for the page's context

    setattr(ticket, _PANEL_STATE, state)
    return _render_ticket(request, ticket, status=status)


# --- reading what was posted --------------------------------------------------------------------


def _other_ticket(user: User, ticket: Ticket, raw: str) -> Ticket:
    """The ticket a reference names among those the user may see. A bare number means this
    ticket's tenant. Not found and not allowed read alike."""
    reference = raw.strip().lstrip("#").upper()
    if not reference:
        raise BusinessRuleViolation(
            _("Enter a ticket reference such as %(example)s.") % {"example": ticket.reference}
        )
    if len(reference) > MAX_REFERENCE_CHARS:
        raise BusinessRuleViolation(_("That is not a ticket reference."))
    if reference.isascii() and reference.isdigit():
        reference = f"{ticket.tenant.code}-{int(reference)}"
    try:
        return access_ticket(user, reference)
    except Http404:
        raise BusinessRuleViolation(
            _("There is no ticket %(reference)s among yours.") % {"reference": reference}
        ) from None


def _posted_tag(request: HttpRequest) -> str:
    tag = " ".join(request.POST.get("tag", "").split()).lower()
    if not tag:
        raise BusinessRuleViolation(_("Enter a tag first."))
    if len(tag) > MAX_TAG_CHARS:
        raise BusinessRuleViolation(_("A tag has at most %(count)d characters.") % {"count": MAX_TAG_CHARS})
    return tag


# --- the actions ----------------------------------------------------------------------------------
# Each takes the ticket (as loaded for the user), the user and the POST and returns the ticket as it
# is now; a BusinessRuleViolation is the user's error.


def _change_status(request: HttpRequest, ticket: Ticket, user: User) -> Ticket:
    status = request.POST.get("status", "").strip()
    if status not in Status.values:
        raise BusinessRuleViolation(_("Choose one of the statuses offered."))
    ticket_change_status(ticket=ticket, status=status, actor=user)
    return _reload(ticket, user)


def _change_priority(request: HttpRequest, ticket: Ticket, user: User) -> Ticket:
    raw = request.POST.get("priority", "").strip()
    if not (raw.isascii() and raw.isdigit() and int(raw) in Priority.values):
        raise BusinessRuleViolation(_("Choose one of the priorities offered."))
    if ticket.status == Status.CLOSED:
        raise BusinessRuleViolation(_("A closed ticket cannot be changed."))
    ticket_update(ticket=ticket, actor=user, priority=int(raw))
    return _reload(ticket, user)


def _add_tag(request: HttpRequest, ticket: Ticket, user: User) -> Ticket:
    tag = _posted_tag(request)
    if ticket.status == Status.CLOSED:
        raise BusinessRuleViolation(_("A closed ticket cannot be changed."))
    if tag not in ticket.tags and len(ticket.tags) >= MAX_TAGS:
        raise BusinessRuleViolation(_("A ticket has at most %(count)d tags.") % {"count": MAX_TAGS})
    with transaction.atomic():
        # Read the tags under the ticket's lock: two agents tagging at once both keep their tag.
        current = (
            Ticket.objects.select_for_update(of=("self",)).values_list("tags", flat=True).get(pk=ticket.pk)
        )
        ticket_update(ticket=ticket, actor=user, tags=[*current, tag])
    return _reload(ticket, user)


def _remove_tag(request: HttpRequest, ticket: Ticket, user: User) -> Ticket:
    tag = _posted_tag(request)
    if ticket.status == Status.CLOSED:
        raise BusinessRuleViolation(_("A closed ticket cannot be changed."))
    with transaction.atomic():
        current = (
            Ticket.objects.select_for_update(of=("self",)).values_list("tags", flat=True).get(pk=ticket.pk)
        )
        ticket_update(ticket=ticket, actor=user, tags=[value for value in current if value != tag])
    return _reload(ticket, user)


def _assign(request: HttpRequest, ticket: Ticket, user: User) -> Ticket:
    """``to``: ``me``, ``none`` (unassign / back to the queue) or an agent's id."""
    to = request.POST.get("to", "").strip()
    if to == "me":
        me = _my_agent_id(ticket, user)
        if me is None:
            raise BusinessRuleViolation(_("You are not an agent authorised for this client."))
        agent = Agent.objects.select_related("user").get(pk=me)
        # routing's receiver logs this as an assignment by hand and dequeues the ticket.
        ticket_assign(ticket=ticket, agent=agent, actor=user)
    elif to == "none":
        if assigns_others(user):
            routing_assign_by_hand(ticket=ticket, agent=None, actor=user)
        elif ticket.assignee is not None and ticket.assignee.user_id == user.pk:
            ticket_assign(ticket=ticket, agent=None, actor=user)  # giving my own ticket back
        else:
            raise BusinessRuleViolation(_("Only supervisors unassign someone else's ticket."))
    elif to.isascii() and to.isdigit():
        if not assigns_others(user):
            raise BusinessRuleViolation(_("Only supervisors and administrators assign work to others."))
        # Looked up among the tenant's agents only: another client's agent reads as unknown.
        other = (
            Agent.objects.filter(pk=int(to), authorisations__tenant_id=ticket.tenant_id, user__is_active=True)
            .select_related("user")
            .first()
        )
        if other is None:
            raise BusinessRuleViolation(_("Choose one of the agents authorised for this client."))
        if other.user_id == user.pk:
            ticket_assign(ticket=ticket, agent=other, actor=user)
        else:
            routing_assign_by_hand(ticket=ticket, agent=other, actor=user)
    else:
        raise BusinessRuleViolation(_("Choose whom to assign the ticket to."))
    return _reload(ticket, user)


class _ConfirmMerge(Exception):  # noqa: N818 - a state, not an error
    def __init__(self, target: Ticket) -> None:
        super().__init__(target.reference)
        self.target = target


def _merge(request: HttpRequest, ticket: Ticket, user: User) -> Ticket:
    target = _other_ticket(user, ticket, request.POST.get("target", ""))
    if TicketLink.objects.filter(source=ticket, target=target, kind=TicketLink.Kind.MERGED).exists():
        return _reload(ticket, user)  # a repeated confirmation (a second click): done already
    ticket_merge_check(source=ticket, target=target)  # stated before the confirmation step
    if request.POST.get("confirm") != "1":
        raise _ConfirmMerge(target)
    ticket_merge(source=ticket, target=target, actor=user)
    return _reload(ticket, user)


def _link(request: HttpRequest, ticket: Ticket, user: User) -> Ticket:
    target = _other_ticket(user, ticket, request.POST.get("target", ""))
    if TicketLink.objects.filter(
        Q(source=ticket, target=target) | Q(source=target, target=ticket), kind=TicketLink.Kind.RELATED
    ).exists():
        raise BusinessRuleViolation(
            _("%(ticket)s is already linked to this ticket.") % {"ticket": target.reference}
        )
    ticket_link(source=ticket, target=target, kind=TicketLink.Kind.RELATED, actor=user)
    return _reload(ticket, user)


def _unlink(request: HttpRequest, ticket: Ticket, user: User) -> Ticket:
    raw = request.POST.get("link", "").strip()
    link = None
    if raw.isascii() and raw.isdigit():
        link = (
            TicketLink.objects.filter(Q(source_id=ticket.pk) | Q(target_id=ticket.pk), pk=int(raw))
            .select_related("source__tenant", "target__tenant")
            .first()
        )
    if link is None:
        raise BusinessRuleViolation(_("That link is not on this ticket (any more)."))
    ticket_unlink(source=link.source, target=link.target, kind=link.kind, actor=user)
    return _reload(ticket, user)


ACTIONS: dict[str, Callable[[HttpRequest, Ticket, User], Ticket]] = {
    "status": _change_status,
    "priority": _change_priority,
    "tag-add": _add_tag,
    "tag-remove": _remove_tag,
    "assign": _assign,
    "merge": _merge,
    "link": _link,
    "unlink": _unlink,
}


@require_GET
@desk_user_required
def panel(request: HttpRequest, reference: str) -> JsonResponse:
    """The panel as it is now, for the script after the ticket changed elsewhere."""
    user = actor(request)
    ticket = access_ticket(user, reference)
    return _panel_answer(request, ticket, user)


@require_POST
@desk_user_required
def act(request: HttpRequest, reference: str, action: str) -> HttpResponse:
    user = actor(request)
    ticket = access_ticket(user, reference)
    perform = ACTIONS.get(action)
    if perform is None:
        raise Http404("No such action.")
    as_json = wants_json(request)
    try:
        changed = perform(request, ticket, user)
    except _ConfirmMerge as pending:
        state = {"confirm_merge": pending.target, "merge_reference": pending.target.reference}
        if as_json:
            setattr(ticket, _PANEL_STATE, state)
            return _panel_answer(request, ticket, user, confirm=True)
        return _page(request, ticket, status=200, **state)
    except BusinessRuleViolation as exc:
        message = " ".join(exc.messages)
        if as_json:
            return JsonResponse({"error": message}, status=400)
        state = {
            "error": message,
            "merge_reference": request.POST.get("target", "")[:MAX_REFERENCE_CHARS]
            if action == "merge"
            else "",
            "link_reference": request.POST.get("target", "")[:MAX_REFERENCE_CHARS]
            if action == "link"
            else "",
        }
        return _page(request, _reload(ticket, user), status=400, **state)
    if as_json:
        return _panel_answer(request, changed, user)
    response = redirect("desk:ticket", reference=changed.reference)
    response["Location"] += "#ticket-actions"
    response.status_code = 303
    return response
