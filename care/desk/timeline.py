"""The ticket page's timeline: every channel's interactions (emails with their attachments, calls with
their times and recording, social messages, internal notes) and the audit trail's changes (status,
assignment, priority, links, merges), one list in time order.

Loaded in a fixed number of queries whatever the length: the interactions with their authors, call,
delivery and an email's subject (joins and a per-row subquery, one query), their attachments (one),
the changes with their actors (one), and only when changes name agents, teams, tickets or customers
the page does not hold already, one query per kind of name.

Each entry is a dict for the templates (``desk/ticket_entry.html``, ``desk/ticket_event.html``) with
``order``: the moment in microseconds, which the page's script compares to place live entries. On the
same microsecond an interaction comes before a change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Case, F, OuterRef, Q, QuerySet, Subquery, When
from django.db.models.fields.json import KT
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from care.accounts.models import Agent, Team
from care.calls.models import Call
from care.connectors.models import InboundMessage
from care.contacts.identities import IdentityKind
from care.contacts.models import Customer
from care.contacts.selectors import phone_international
from care.core.channels import Channel
from care.desk.attachments import attachment_url
from care.tickets.models import Direction, Interaction, Priority, Ticket, TicketEvent, TicketLink
from care.tickets.selectors import ticket_events, ticket_timeline
from care.tickets.status import Status

INTERACTION_RANK = 0
EVENT_RANK = 1

# Raster images a browser shows safely in <img> (social media previews); others are just links.
PREVIEW_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def order_of(moment: dt.datetime) -> int:
    """(occurred, then id) as one number the script can compare: microseconds since the epoch."""
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


# --- interactions ------------------------------------------------------------------------------------


def timeline_interactions(*, ticket: Ticket) -> QuerySet[Interaction]:
    """The ticket's interactions in order with everything an entry shows, in one query (plus one for
    the attachments): the call behind a phone entry (its agent, codes), the outbound delivery, the
    social account's platform of a reply, and an inbound email's subject from its stored message."""
    subject = (
        InboundMessage.objects.filter(interaction=OuterRef("pk"))
        .order_by("pk")
        .values_list(KT("summary__subject"))[:1]
    )
    return (
        ticket_timeline(ticket=ticket)
        .select_related("call__agent__user", "call__reason", "call__outcome_code", "delivery")
        .annotate(
            email_subject=Case(When(channel=Channel.EMAIL, then=Subquery(subject))),
            delivery_platform=F("delivery__social_account__platform"),
        )
    )


def safe_recording_url(url: str) -> str | None:
    """The recording's address if it is a plain web link (http or https with a host); None otherwise,
    so a ``javascript:`` or ``data:`` value stored by a telephone system is never made a link."""
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def duration(seconds: int | None) -> str:
    """``m:ss`` or ``h:mm:ss``; empty when unknown."""
    if seconds is None:
        return ""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _call_of(interaction: Interaction) -> Call | None:
    if interaction.channel != Channel.PHONE:
        return None
    try:
        call: Call = interaction.call
    except ObjectDoesNotExist:
        return None
    return call


def _call_view(call: Call) -> dict[str, Any]:
    agent = str(call.agent.user) if call.agent is not None else call.agent_ref
    return {
        "call": call,
        "caller": phone_international(call.caller) if call.caller.startswith("+") else call.caller,
        "dialled": phone_international(call.dialled) if call.dialled.startswith("+") else call.dialled,
        "agent": agent,
        "wait": duration(call.queue_wait_seconds),
        "talk": duration(call.talk_seconds),
        "hold": duration(call.hold_seconds),
        "recording_url": safe_recording_url(call.recording_url),
        "has_recording": bool(call.recording_url),
        "reason": call.reason.label if call.reason is not None else "",
        "outcome_code": call.outcome_code.label if call.outcome_code is not None else "",
    }


def _delivery_of(interaction: Interaction) -> Any:
    if interaction.direction != Direction.OUTBOUND or interaction.channel not in (
        Channel.EMAIL,
        Channel.SOCIAL,
    ):
        return None
    try:
        return interaction.delivery
    except ObjectDoesNotExist:
        return None


def _platform_of(interaction: Interaction, delivery: Any) -> str:
    """The social platform: the customer's handle's, else the account's a reply went out by."""
    if interaction.channel != Channel.SOCIAL:
        return ""
    identity = interaction.author_identity
    if identity is not None and identity.kind == IdentityKind.SOCIAL:
        return identity.get_platform_display()
    platform = getattr(interaction, "delivery_platform", None)
    if platform is None and delivery is not None and delivery.social_account_id is not None:
        platform = delivery.social_account.platform  # a single entry rendered after a POST
    if not platform:
        return ""
    from care.contacts.identities import SocialPlatform

    return str(SocialPlatform(platform).label) if platform in SocialPlatform.values else platform


def _attachments(interaction: Interaction) -> list[dict[str, Any]]:
    return [
        {
            "attachment": attachment,
            "url": attachment_url(attachment),
            "preview": attachment.content_type.split(";")[0].strip().lower() in PREVIEW_TYPES
            and interaction.channel == Channel.SOCIAL,
        }
        for attachment in interaction.attachments.all()
    ]


def interaction_entry(interaction: Interaction) -> dict[str, Any]:
    """One interaction as ``desk/ticket_entry.html`` renders it. Reads only what is loaded for rows of
    ``timeline_interactions``; a single fresh interaction (the answer to a POST) costs a query or two."""
    call = _call_of(interaction)
    delivery = _delivery_of(interaction)
    identity = interaction.author_identity
    if interaction.direction == Direction.NOTE:
        kind = "note"
    elif call is not None:
        kind = "call"
    else:
        kind = str(interaction.channel)
    return {
        "kind": kind,
        "interaction": interaction,
        "order": order_of(interaction.occurred_at),
        "subject": getattr(interaction, "email_subject", None) or "",
        "call": _call_view(call) if call is not None else None,
        "delivery": delivery,
        "platform": _platform_of(interaction, delivery),
        "handle": f"@{identity.value}"
        if identity is not None and identity.kind == IdentityKind.SOCIAL
        else "",
        "sender_name": identity.display_name if identity is not None else "",
        "attachments": _attachments(interaction),
    }


# --- changes -----------------------------------------------------------------------------------------


class _Names:
    """The names changes refer to by id, read in one query per kind for a whole list of changes."""

    def __init__(self, ticket: Ticket, events: list[TicketEvent]) -> None:
        agent_ids: set[int] = set()
        team_ids: set[int] = set()
        ticket_ids: set[int] = set()
        customer_ids: set[int] = set()
        for event in events:
            changes = event.changes if isinstance(event.changes, dict) else {}
            agent_ids |= _ids(changes.get("assignee"))
            team_ids |= _ids(changes.get("team"))
            customer_ids |= _ids(changes.get("customer"))
            for value in _pair(changes.get("link")):
                if isinstance(value, dict) and isinstance(value.get("ticket"), int):
                    ticket_ids.add(value["ticket"])
        self.agents: dict[int, str] = {}
        if (
            ticket.assignee_id is not None
            and Ticket.assignee.is_cached(ticket)
            and ticket.assignee is not None
        ):
            self.agents[ticket.assignee_id] = str(ticket.assignee.user)
        missing = agent_ids - set(self.agents)
        if missing:
            for agent in Agent.objects.select_related("user").filter(pk__in=missing):
                self.agents[agent.pk] = str(agent.user)
        self.teams: dict[int, str] = {}
        if team_ids:
            self.teams = dict(Team.objects.filter(pk__in=team_ids).values_list("pk", "name"))
        self.tickets: dict[int, str] = {}
        if ticket_ids:
            code = ticket.tenant.code
            self.tickets = {
                pk: f"{code}-{number}"
                for pk, number in Ticket.objects.filter(
                    tenant_id=ticket.tenant_id, pk__in=ticket_ids
                ).values_list("pk", "number")
            }
        self.customers: dict[int, str] = {}
        if customer_ids:
            self.customers = {
                customer.pk: str(customer)
                for customer in Customer.objects.filter(tenant_id=ticket.tenant_id, pk__in=customer_ids).only(
                    "pk", "display_name"
                )
            }


def _pair(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) and len(value) == 2 else [None, None]


def _ids(value: Any) -> set[int]:
    return {item for item in _pair(value) if isinstance(item, int) and not isinstance(item, bool)}


def _label(choices: Any, value: Any) -> str:
    try:
        return str(choices(value).label)
    except ValueError:
        return str(value)


def _ticket_link(reference: str) -> dict[str, str]:
    return {"label": reference, "url": reverse("desk:ticket", kwargs={"reference": reference})}


def _lines(event: TicketEvent, names: _Names) -> list[dict[str, Any]]:
    """What changed, as sentences without the actor (the template says who): each ``{"text", "link"}``."""
    changes = event.changes if isinstance(event.changes, dict) else {}
    lines: list[dict[str, Any]] = []

    def add(text: str, link: dict[str, str] | None = None) -> None:
        lines.append({"text": text, "link": link})

    for field, value in changes.items():
        before, after = _pair(value)
        if field == "status":
            if before is None:
                add(_("set the status to %(after)s") % {"after": _label(Status, after)})
            else:
                add(
                    _("changed the status from %(before)s to %(after)s")
                    % {"before": _label(Status, before), "after": _label(Status, after)}
                )
        elif field == "assignee":
            if after is None:
                add(_("unassigned %(before)s") % {"before": names.agents.get(before, _("an agent"))})
            else:
                add(_("assigned the ticket to %(after)s") % {"after": names.agents.get(after, _("an agent"))})
        elif field == "priority":
            add(
                _("changed the priority from %(before)s to %(after)s")
                % {"before": _label(Priority, before), "after": _label(Priority, after)}
            )
        elif field == "subject":
            add(
                _("changed the subject from “%(before)s” to “%(after)s”") % {"before": before, "after": after}
            )
        elif field == "language":
            add(_("changed the language from %(before)s to %(after)s") % {"before": before, "after": after})
        elif field == "team":
            add(
                _("changed the team from %(before)s to %(after)s")
                % {
                    "before": names.teams.get(before, _("none")) if before else _("none"),
                    "after": names.teams.get(after, _("none")) if after else _("none"),
                }
            )
        elif field == "tags":
            old, new = set(before or []), set(after or [])
            if new - old:
                add(_("added the tags %(tags)s") % {"tags": ", ".join(sorted(new - old))})
            if old - new:
                add(_("removed the tags %(tags)s") % {"tags": ", ".join(sorted(old - new))})
        elif field == "customer":
            add(
                _("merged the customer into %(customer)s")
                % {"customer": names.customers.get(after, _("another customer"))}
            )
        elif field == "link":
            link = after if isinstance(after, dict) else before if isinstance(before, dict) else {}
            reference = names.tickets.get(link.get("ticket"))  # type: ignore[arg-type]
            kind = _label(TicketLink.Kind, link.get("kind"))
            text = (
                _("linked this ticket: %(kind)s") % {"kind": kind}
                if isinstance(after, dict)
                else _("removed the link: %(kind)s") % {"kind": kind}
            )
            add(text, _ticket_link(reference) if reference else None)
        elif field in ("merged_into", "merged_from"):
            other = after if isinstance(after, dict) else {}
            reference = str(other.get("reference") or "")
            text = (
                _("merged this ticket into")
                if field == "merged_into"
                else _("merged another ticket into this one:")
            )
            add(text, _ticket_link(reference) if reference else None)
        elif field == "interactions":
            if after:
                count = int(after)
                add(
                    ngettext(
                        "moved %(count)s timeline entry here", "moved %(count)s timeline entries here", count
                    )
                    % {"count": count}
                )
        else:
            add(_("changed %(field)s") % {"field": field})
    if not lines:
        add(str(event.get_kind_display()))
    return lines


def event_entries(*, ticket: Ticket, events: Iterable[TicketEvent]) -> list[dict[str, Any]]:
    """Changes as ``desk/ticket_event.html`` renders them (names read in at most one query per kind)."""
    rows = list(events)
    names = _Names(ticket, rows)
    return [
        {
            "kind": "event",
            "event": event,
            "event_kind": str(event.kind),
            "actor": str(event.actor) if event.actor is not None else "",
            "lines": _lines(event, names),
            "order": order_of(event.created_at),
        }
        for event in rows
    ]


def ticket_timeline_entries(*, ticket: Ticket) -> list[dict[str, Any]]:
    """The whole timeline: interactions and changes merged in time order."""
    entries = [interaction_entry(interaction) for interaction in timeline_interactions(ticket=ticket)]
    entries += event_entries(ticket=ticket, events=ticket_events(ticket=ticket))
    return sorted(entries, key=_sort_key)


# A long ticket opens with its newest interactions and the changes among them; the older ones load
# when the agent asks ("Show earlier entries"). Rendering an entry costs about a millisecond, so a
# ticket with hundreds of messages would otherwise open several times slower than a short one.
TIMELINE_WINDOW = 50


@dataclass(frozen=True)
class TimelineWindow:
    entries: list[dict[str, Any]]
    # When older interactions exist: the id of the oldest one shown, which asks for the ones before it.
    earlier_before: int | None


def ticket_timeline_window(
    *, ticket: Ticket, before_id: int | None = None, limit: int = TIMELINE_WINDOW
) -> TimelineWindow:
    """The newest ``limit`` interactions (before the interaction ``before_id``, if given) and the
    changes from the oldest of them on (up to that interaction), merged in time order. Three queries
    (four with ``before_id``) plus the name lookups of ``event_entries``, whatever the ticket's length.
    An unknown ``before_id`` gives an empty window."""
    interactions = timeline_interactions(ticket=ticket)
    events = ticket_events(ticket=ticket)
    if before_id is not None:
        anchor = (
            Interaction.objects.filter(ticket=ticket, pk=before_id)
            .values_list("occurred_at", flat=True)
            .first()
        )
        if anchor is None:
            return TimelineWindow([], None)
        interactions = interactions.filter(
            Q(occurred_at__lt=anchor) | Q(occurred_at=anchor, pk__lt=before_id)
        )
        events = events.filter(created_at__lt=anchor)
    newest = list(interactions.order_by("-occurred_at", "-id")[: limit + 1])
    shown = newest[:limit][::-1]
    more = len(newest) > limit
    if more:
        events = events.filter(created_at__gte=shown[0].occurred_at)
    entries = [interaction_entry(interaction) for interaction in shown]
    entries += event_entries(ticket=ticket, events=events)
    return TimelineWindow(sorted(entries, key=_sort_key), shown[0].pk if more else None)


def _sort_key(entry: dict[str, Any]) -> tuple[int, int, int]:
    if entry["kind"] == "event":
        return entry["order"], EVENT_RANK, entry["event"].pk
    return entry["order"], INTERACTION_RANK, entry["interaction"].pk
