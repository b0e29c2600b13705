"""The agents' pages. The start page says who you are and which clients' work you can see; the ticket
page is the live view of one ticket (docs/realtime.md): its timeline, who else is on it, and the
reply and note form. The full desk (queues, search) arrives with its own issue.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from care.accounts.models import User
from care.connectors.email.outbound import email_reply
from care.connectors.social.outbound import social_reply
from care.core.channels import Channel
from care.core.errors import BusinessRuleViolation
from care.desk.access import actor, desk_user_required, wants_json
from care.desk.composer import composer_context, posted_attachments, refuse_attachments_on_notes
from care.desk.ticket_actions import actions_context
from care.desk.ticket_panels import panels_context, sla_clocks
from care.desk.timeline import (
    TIMELINE_WINDOW,
    event_entries,
    interaction_entry,
    ticket_timeline_window,
    timeline_interactions,
)
from care.mentions.services import mentions_record
from care.realtime.streams import ticket_stream
from care.sla.models import ClockState, Target
from care.sla.selectors import ClockStatus, clocks_of
from care.tickets.models import Direction, Interaction, Priority, Ticket
from care.tickets.selectors import access_ticket, open_ticket_counts_by_tenant, ticket_events
from care.tickets.services import interaction_add
from care.tickets.status import Status

# A reply or note longer than this is a paste gone wrong, not something to send to a customer.
MAX_TEXT_CHARS = 50_000
# The most interactions one page shows when asked for the whole timeline (a runaway ticket stays bounded).
MAX_TIMELINE = 2_000
# The most timeline entries one request may ask for by id (a burst of live events is batched).
MAX_ENTRY_IDS = 100


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "desk/home.html")


@require_GET
@login_required
def my_tenants(request: HttpRequest) -> HttpResponse:
    return render(request, "desk/my_tenants.html", {"rows": open_ticket_counts_by_tenant(user=request.user)})


# --- the ticket page ------------------------------------------------------------------------------


def _sla_alert(clocks: list[ClockStatus]) -> dict[str, Any] | None:
    """The running clock to warn about (a breached one first, else one past its warning time), as the
    banner shows it; None when every clock is on time."""
    running = [clock for clock in clocks if clock.state == ClockState.RUNNING]
    clock = next((c for c in running if c.breached), None) or next((c for c in running if c.warned), None)
    if clock is None:
        return None
    return {
        "kind": "breach" if clock.breached else "warning",
        "target": Target(clock.target).label,
        "due_at": clock.due_at,
    }


def _labels() -> dict[str, dict[str, str]]:
    return {
        "status": {value: str(label) for value, label in Status.choices},
        "priority": {str(value): str(label) for value, label in Priority.choices},
        "target": {value: str(label) for value, label in Target.choices},
        "direction": {value: str(label) for value, label in Direction.choices},
    }


def _texts() -> dict[str, str]:
    """What the page's script writes into the page, in the user's language."""
    return {
        "unassigned": _("Unassigned"),
        "typing_one": _("%(name)s is typing…"),
        "typing_many": _("%(names)s are typing…"),
        "reconnecting": _("Connection lost; reconnecting…"),
        "denied": _("Live updates stopped: your session has ended. Reload the page to log in again."),
        "refused": _("No live updates for this ticket: %(reason)s"),
        "sla_warning": _("SLA warning: %(target)s is due"),
        "sla_breach": _("SLA breached: %(target)s was due"),
        "send_failed": _("Not sent: the server could not be reached. Your text is kept; try again."),
        "preview": _("(preview; reload the page for the full text)"),
        # The SLA countdowns (desk/ticket_sla_clocks.html); the same words as the server renders.
        "sla_left": _("%(time)s left"),
        "sla_overdue": _("overdue by %(time)s"),
        "sla_days": _("%(days)s d"),
    }


def _entry_order(interaction: Interaction) -> int:
    """The timeline's order (occurred, then id) as one number the script can compare: microseconds."""
    occurred: dt.datetime = interaction.occurred_at
    return int(occurred.timestamp()) * 1_000_000 + occurred.microsecond


def _ticket_facts(ticket: Ticket) -> dict[str, Any]:
    """The header's changeable facts, shaped like the live events' ticket (docs/realtime.md)."""
    assignee = ticket.assignee
    return {
        "status": ticket.status,
        "priority": ticket.priority,
        "subject": ticket.subject,
        "assignee": {"id": assignee.pk, "name": str(assignee)} if assignee is not None else None,
    }


def _entry_context(interaction: Interaction) -> dict[str, Any]:
    # What desk/ticket_entry.html shows of one interaction (care/desk/timeline.py): its call, delivery,
    # subject, attachments with their download links.
    return {
        "entry": interaction_entry(interaction),
        "interaction": interaction,
        "order": _entry_order(interaction),
    }


def _render_ticket(
    request: HttpRequest, ticket: Ticket, *, error: str = "", text: str = "", status: int = 200
) -> HttpResponse:
    user = actor(request)
    # Interactions of every channel and the audit trail's changes, one list in time order: the newest
    # part of a long ticket, the rest on demand (care/desk/timeline.py TIMELINE_WINDOW).
    # ``?timeline=all`` (the "earlier entries" link without script): the whole timeline.
    everything = request.GET.get("timeline") == "all"
    window = ticket_timeline_window(ticket=ticket, limit=MAX_TIMELINE if everything else TIMELINE_WINDOW)
    clocks = clocks_of(ticket)
    alert = _sla_alert(clocks)
    live_config = {
        "ticket": {"id": ticket.pk, "reference": ticket.reference},
        "stream": ticket_stream(ticket.pk),
        "user": user.pk,
        "urls": {"entries": reverse("desk:ticket_entries", kwargs={"reference": ticket.reference})},
        "labels": _labels(),
        "text": _texts(),
    }
    return render(
        request,
        "desk/ticket.html",
        {
            **actions_context(ticket=ticket, user=user),
            **panels_context(ticket=ticket, user=user),
            **composer_context(ticket=ticket, user=user),
            "ticket": ticket,
            "timeline": window.entries,
            "timeline_earlier": window.earlier_before,
            "sla_alert": alert,
            "sla_clocks": sla_clocks(clocks),
            "live_config": live_config,
            "error": error,
            "text": text,
        },
        status=status,
    )


@require_GET
@desk_user_required
def ticket(request: HttpRequest, reference: str) -> HttpResponse:
    return _render_ticket(request, access_ticket(request.user, reference))


@require_GET
@desk_user_required
def ticket_entries(request: HttpRequest, reference: str) -> JsonResponse:
    """Timeline entries rendered as on the page, for the script: ``?id=`` (repeated) for the entries
    live events announced, ``?events_after=<id>`` for the changes (status, assignment, ...) newer than
    the newest the page shows (the live ``ticket.updated`` and ``ticket.assigned`` events carry no
    id; 0 for all), ``?all=1`` for every interaction (after the server said reload, with
    ``events_after=0``). With them the SLA banner,
    the SLA clocks and the header's facts as they are now: a reply can meet a response target, a
    status change pause a clock, and after a reload the header must be re-read too."""
    ticket_ = access_ticket(request.user, reference)
    timeline = timeline_interactions(ticket=ticket_)
    try:
        ids = sorted({int(value) for value in request.GET.getlist("id")})
        after = request.GET.get("events_after", "")
        after_id = int(after) if after else None
        before = request.GET.get("before", "")
        before_id = int(before) if before else None
    except ValueError:
        return JsonResponse({"error": _("Entry IDs must be numbers.")}, status=400)
    if before_id is not None:
        return _earlier_entries(request, ticket_, before_id)
    if request.GET.get("all") != "1":
        if len(ids) > MAX_ENTRY_IDS:
            return JsonResponse(
                {"error": _("Ask for at most %(count)d entries.") % {"count": MAX_ENTRY_IDS}}, status=400
            )
        timeline = timeline.filter(pk__in=ids)  # no ids: no query
    # The changes only when asked for (``events_after=0``: all of them), so the entries of a
    # live interaction cost no query for them.
    events = ticket_events(ticket=ticket_, after_id=after_id) if after_id is not None else None
    entries = [
        {
            "id": interaction.pk,
            "order": _entry_order(interaction),
            "html": render_to_string("desk/ticket_entry.html", _entry_context(interaction), request=request),
        }
        for interaction in timeline
    ]
    changes = [
        {
            "id": entry["event"].pk,
            "order": entry["order"],
            "html": render_to_string("desk/ticket_event.html", {"entry": entry}, request=request),
        }
        for entry in (event_entries(ticket=ticket_, events=events) if events is not None else [])
    ]
    clocks = clocks_of(ticket_)
    banner = render_to_string(
        "desk/ticket_sla.html", {"sla_alert": _sla_alert(clocks)}, request=request
    ).strip()
    clock_list = render_to_string(
        "desk/ticket_sla_clocks.html", {"sla_clocks": sla_clocks(clocks), "ticket": ticket_}, request=request
    ).strip()
    return JsonResponse(
        {
            "entries": entries,
            "events": changes,
            "sla": banner,
            "clocks": clock_list,
            "ticket": _ticket_facts(ticket_),
        }
    )


def _earlier_entries(request: HttpRequest, ticket_: Ticket, before_id: int) -> JsonResponse:
    """``?before=<interaction id>``: the window of entries before that one (interactions and changes
    alike, as ``entries`` and ``events``), and ``earlier``, the id to ask with next (null at the start)."""
    window = ticket_timeline_window(ticket=ticket_, before_id=before_id)
    entries, changes = [], []
    for entry in window.entries:
        if entry["kind"] == "event":
            html = render_to_string("desk/ticket_event.html", {"entry": entry}, request=request)
            changes.append({"id": entry["event"].pk, "order": entry["order"], "html": html})
        else:
            context = {"entry": entry, "interaction": entry["interaction"], "order": entry["order"]}
            html = render_to_string("desk/ticket_entry.html", context, request=request)
            entries.append({"id": entry["interaction"].pk, "order": entry["order"], "html": html})
    return JsonResponse({"entries": entries, "events": changes, "earlier": window.earlier_before})


def _posted_text(request: HttpRequest) -> str:
    text = request.POST.get("text", "").replace("\r\n", "\n").strip()
    if not text:
        raise BusinessRuleViolation(_("Write something first: the text is empty."))
    if len(text) > MAX_TEXT_CHARS:
        raise BusinessRuleViolation(
            _("The text is too long (at most %(count)d characters).") % {"count": MAX_TEXT_CHARS}
        )
    return text


# Both writes are atomic: the interaction and what its signals change (SLA clocks, routing, the
# email's delivery) commit together, and its live event goes out after that commit.


@transaction.atomic
def _send_reply(
    *,
    ticket: Ticket,
    author: User,
    text: str,
    template: dict[str, Any] | None = None,
    attachments: Sequence[tuple[str, bytes, str]] = (),
) -> Interaction:
    """An agent's answer to the customer on the ticket's channel. Email and social replies are sent
    by their connectors (stored now, sent by a task after the commit; a social reply the platform
    would refuse, e.g. outside WhatsApp's 24-hour window, is refused with the reason); the phone
    has no transport and is recorded as an outbound interaction (a call's summary). Only email
    carries ``attachments`` (``(filename, content, content type)``, checked by the composer)."""
    if ticket.channel == Channel.EMAIL:
        return email_reply(ticket=ticket, author=author, body_text=text, attachments=attachments)
    if attachments:
        raise BusinessRuleViolation(_("Only email replies carry attachments."))
    if ticket.channel == Channel.SOCIAL:
        return social_reply(ticket=ticket, author=author, text=text, **(template or {}))
    interaction, _created = interaction_add(
        ticket=ticket,
        channel=ticket.channel,
        direction=Direction.OUTBOUND,
        body_text=text,
        author_user=author,
    )
    return interaction


@transaction.atomic
def _add_note(*, ticket: Ticket, author: User, text: str) -> Interaction:
    """An internal note; the colleagues it @mentions who may see the tenant are told (mentions)."""
    interaction, _created = interaction_add(
        ticket=ticket, channel=ticket.channel, direction=Direction.NOTE, body_text=text, author_user=author
    )
    mentions_record(interaction=interaction)
    return interaction


def _post(
    request: HttpRequest, reference: str, write: Callable[..., Interaction], *, reply: bool = False
) -> HttpResponse:
    ticket_ = access_ticket(request.user, reference)
    author = actor(request)
    try:
        text = _posted_text(request)
        if reply:
            attachments = posted_attachments(request, ticket_)
            extra: dict[str, Any] = {"attachments": attachments} if attachments else {}
        else:
            refuse_attachments_on_notes(request)
            extra = {}
        interaction = write(ticket=ticket_, author=author, text=text, **extra)
    except BusinessRuleViolation as exc:
        message = " ".join(exc.messages)
        if wants_json(request):
            return JsonResponse({"error": message}, status=400)
        return _render_ticket(request, ticket_, error=message, text=request.POST.get("text", ""), status=400)
    if wants_json(request):
        html = render_to_string("desk/ticket_entry.html", _entry_context(interaction), request=request)
        return JsonResponse(
            {"entry": {"id": interaction.pk, "order": _entry_order(interaction), "html": html}}, status=201
        )
    # Post/redirect/get: reloading the page afterwards does not send the text again.
    response = redirect("desk:ticket", reference=ticket_.reference)
    response["Location"] += f"#interaction-{interaction.pk}"
    response.status_code = 303
    return response


def _posted_template(request: HttpRequest) -> dict[str, Any]:
    """A social reply's template (WhatsApp) or message tag (Messenger's HUMAN_AGENT), if given."""
    name = request.POST.get("template_name", "").strip()
    if not name:
        return {}
    parameters = request.POST.get("template_parameters", "").replace("\r\n", "\n").split("\n")
    return {
        "template_name": name,
        "template_language": request.POST.get("template_language", "").strip(),
        "template_parameters": tuple(value.strip() for value in parameters if value.strip()),
    }


@require_POST
@desk_user_required
def ticket_reply(request: HttpRequest, reference: str) -> HttpResponse:
    return _post(request, reference, partial(_send_reply, template=_posted_template(request)), reply=True)


@require_POST
@desk_user_required
def ticket_note(request: HttpRequest, reference: str) -> HttpResponse:
    return _post(request, reference, _add_note)
