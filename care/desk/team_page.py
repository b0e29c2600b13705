"""The supervisor's team view (``/desk/team/``) and reassignment (``/desk/team/<agent id>/``).

Who is listed: the active agents authorised for at least one active tenant the supervisor sees, and
each row shows only those tenants. What a row shows of the agent's work is scoped the same way
(the open tickets counted, the current item), with one exception on purpose: the load per channel
is routing's load (actionable tickets assigned plus pending offers, of every tenant the agent
serves), because capacity is shared across tenants and a supervisor must see why an agent is full.
It is a number per channel, never a ticket of a tenant the supervisor does not see.

The page costs a fixed number of queries, whatever the number of agents: one each for the tenants,
the teams, the agents, their authorisations, channels and languages, the ticket figures, the
offers, the live calls and the current tickets.

Reassignment goes ticket by ticket through ``routing_assign_by_hand`` (the routing decision log
records who moved what); a ticket the rules refuse is reported with the reason, the others move.
Supervisors and administrators only: agents get a 403 page that says so.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Prefetch, Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods

from care.accounts.models import Agent, Presence, Role, Team, TenantAuthorisation, User
from care.calls.models import Call, CallStatus
from care.desk.access import actor, desk_user_required, wants_json
from care.desk.work_page import sla_badge
from care.realtime.streams import tenant_stream
from care.routing.models import QueuedItem
from care.routing.services import routing_assign_by_hand
from care.tenants.models import Tenant
from care.tickets.models import Ticket
from care.tickets.selectors import QUEUE_ORDER
from care.tickets.status import ACTIONABLE, UNRESOLVED

View = TypeVar("View", bound=Callable[..., HttpResponse])

# A team view beyond this many rows is a report, not a screen: filter by tenant or team.
MAX_AGENTS = 300
# Tickets listed for reassignment at once (most urgent first); more are moved in several rounds.
MAX_TICKETS = 200
# The live view subscribes to at most this many tenant streams (an administrator of many tenants
# filters by tenant to watch one).
MAX_LIVE_TENANTS = 50
# A call in one of these states occupies the agent.
LIVE_CALL = (CallStatus.RINGING, CallStatus.ANSWERED, CallStatus.ON_HOLD)


def is_supervisor(user: Any) -> bool:
    return bool(
        getattr(user, "is_superuser", False) or getattr(user, "role", None) in (Role.SUPERVISOR, Role.ADMIN)
    )


def supervisor_required(template: str) -> Callable[[View], View]:
    """Desk staff only (portal users get the desk's 403), and of those supervisors and admins: an
    agent gets a 403 page rendered from ``template`` with a message saying why."""

    def decorate(view: View) -> View:
        @wraps(view)
        def supervisors_only(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not is_supervisor(request.user):
                message = _("This page is for supervisors and administrators.")
                if wants_json(request):
                    return JsonResponse({"error": message}, status=403)
                return render(request, template, {"forbidden": message}, status=403)
            return view(request, *args, **kwargs)

        return cast(View, desk_user_required(supervisors_only))

    return decorate


def scope_tenants(*, user: Any) -> list[Tenant]:
    """The active tenants the user sees, by name: the team view's scope and its tenant filter."""
    return list(Tenant.objects.visible_to(user).filter(is_active=True).order_by("name"))


# --- the team view ------------------------------------------------------------------------------------


@dataclass
class TeamFilters:
    tenant: Tenant | None = None
    team: Team | None = None
    presence: str = ""
    notes: list[str] = field(default_factory=list)


def parse_filters(params: QueryDict, tenants: Sequence[Tenant], teams: Sequence[Team]) -> TeamFilters:
    """Read the query string; a value that is not one of the user's is ignored and noted."""
    filters = TeamFilters()
    raw = params.get("tenant", "").strip()
    if raw:
        filters.tenant = next((t for t in tenants if str(t.pk) == raw or t.code == raw), None)
        if filters.tenant is None:
            filters.notes.append(_("The client filter was ignored: no such client among yours."))
    raw = params.get("team", "").strip()
    if raw:
        filters.team = next((t for t in teams if str(t.pk) == raw), None)
        if filters.team is None:
            filters.notes.append(_("The team filter was ignored: no such team among yours."))
    raw = params.get("presence", "").strip()
    if raw:
        if raw in Presence.values:
            filters.presence = raw
        else:
            filters.notes.append(_("The presence filter was ignored: unknown presence."))
    return filters


def scope_teams(tenant_ids: list[int]) -> list[Team]:
    """The teams with at least one active agent in the tenants (one query)."""
    return list(
        Team.objects.filter(
            agents__authorisations__tenant_id__in=tenant_ids, agents__user__is_active=True
        ).distinct()
    )


def scope_agents(
    *, tenant_ids: list[int], filters: TeamFilters | None = None, profile: bool = True
) -> list[Agent]:
    """The active agents authorised for one of ``tenant_ids`` (narrowed by ``filters``), with their
    user, team and only those authorisations, and (``profile``) their channels and languages:
    four queries (two without the profile)."""
    wanted = [filters.tenant.pk] if filters and filters.tenant else tenant_ids
    agents = Agent.objects.filter(
        user__is_active=True,
        pk__in=TenantAuthorisation.objects.filter(tenant_id__in=wanted).values("agent_id"),
    )
    if filters and filters.team:
        agents = agents.filter(team=filters.team)
    if filters and filters.presence:
        agents = agents.filter(presence=filters.presence)
    return list(
        agents.select_related("user", "team")
        .prefetch_related(
            Prefetch(
                "authorisations",
                queryset=TenantAuthorisation.objects.filter(tenant_id__in=tenant_ids)
                .select_related("tenant")
                .order_by("tenant__name"),
                to_attr="shown_authorisations",
            ),
            *(["channels", "languages"] if profile else []),
        )
        .order_by("user__full_name", "user__email")[:MAX_AGENTS]
    )


def _ticket_figures(agent_ids: list[int], tenant_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Per agent: routing's load per channel (every tenant) and the open tickets in ``tenant_ids``.
    Two queries (the tickets, the pending offers)."""
    figures: dict[int, dict[str, Any]] = defaultdict(lambda: {"load": defaultdict(int), "open": 0})
    rows = (
        Ticket.objects.filter(assignee_id__in=agent_ids, status__in=list(UNRESOLVED))
        .order_by()
        .values("assignee_id", "channel")
        .annotate(
            load=Count("pk", filter=Q(status__in=list(ACTIONABLE))),
            open=Count("pk", filter=Q(tenant_id__in=tenant_ids)),
        )
    )
    for row in rows:
        entry = figures[row["assignee_id"]]
        entry["load"][row["channel"]] += row["load"]
        entry["open"] += row["open"]
    offers = (
        QueuedItem.objects.filter(offered_to_id__in=agent_ids, state=QueuedItem.State.OFFERED)
        .order_by()
        .values("offered_to_id", "channel")
        .annotate(n=Count("pk"))
    )
    for row in offers:
        figures[row["offered_to_id"]]["load"][row["channel"]] += row["n"]
    return figures


def _live_calls(agent_ids: list[int], tenant_ids: list[int]) -> dict[int, Call]:
    """Each agent's newest live call in the tenants (one query)."""
    calls = (
        Call.objects.filter(agent_id__in=agent_ids, tenant_id__in=tenant_ids, status__in=list(LIVE_CALL))
        .select_related("ticket", "tenant")
        .order_by("agent_id", "-offered_at")
        .distinct("agent_id")
    )
    return {call.agent_id: call for call in calls if call.agent_id is not None}


def _current_tickets(agent_ids: list[int], tenant_ids: list[int]) -> dict[int, Ticket]:
    """Each agent's most urgent actionable ticket in the tenants (one query, DISTINCT ON)."""
    tickets = (
        Ticket.objects.filter(
            assignee_id__in=agent_ids, tenant_id__in=tenant_ids, status__in=list(ACTIONABLE)
        )
        .select_related("tenant")
        .order_by("assignee_id", *QUEUE_ORDER)
        .distinct("assignee_id")
    )
    return {ticket.assignee_id: ticket for ticket in tickets if ticket.assignee_id is not None}


def team_rows(*, agents: list[Agent], tenant_ids: list[int], now: dt.datetime) -> list[dict[str, Any]]:
    """What each row of the team view shows (three queries, none when there are no agents)."""
    if not agents:
        return []
    ids = [agent.pk for agent in agents]
    figures = _ticket_figures(ids, tenant_ids)
    calls = _live_calls(ids, tenant_ids)
    current = _current_tickets(ids, tenant_ids)
    rows = []
    for agent in agents:
        figure = figures.get(agent.pk) or {"load": {}, "open": 0}
        channels = [
            {
                "channel": channel.channel,
                "label": channel.get_channel_display(),
                "load": figure["load"].get(channel.channel, 0),
                "capacity": channel.capacity,
                "full": figure["load"].get(channel.channel, 0) >= channel.capacity,
            }
            for channel in agent.channels.all()
        ]
        ticket = current.get(agent.pk)
        rows.append(
            {
                "agent": agent,
                "tenants": [auth.tenant for auth in getattr(agent, "shown_authorisations", [])],
                "channels": channels,
                "languages": [language.language for language in agent.languages.all()],
                "open": figure["open"],
                "call": calls.get(agent.pk),
                "ticket": ticket,
                "sla": sla_badge(ticket.sla_due_at, now) if ticket is not None else None,
            }
        )
    return rows


def _team_query(filters: TeamFilters) -> str:
    kept = QueryDict(mutable=True)
    if filters.tenant:
        kept["tenant"] = str(filters.tenant.pk)
    if filters.team:
        kept["team"] = str(filters.team.pk)
    if filters.presence:
        kept["presence"] = filters.presence
    return kept.urlencode()


def _live_texts() -> dict[str, Any]:
    """Words the script needs, in the user's language."""
    return {
        "presence": {value: str(label) for value, label in Presence.choices},
        "since": _("since %(time)s"),
        "changed": _("%(name)s is now %(presence)s."),
        "states": {
            "connected": _("Live: presence and work update as they change."),
            "reconnecting": _("Reconnecting…"),
            "denied": _("Live updates are not available: reload the page."),
        },
    }


@require_http_methods(["GET", "HEAD"])
@supervisor_required("desk/team.html")
def page(request: HttpRequest) -> HttpResponse:
    user = actor(request)
    now = timezone.now()
    tenants = scope_tenants(user=user)
    tenant_ids = [tenant.pk for tenant in tenants]
    teams = scope_teams(tenant_ids)
    filters = parse_filters(request.GET, tenants, teams)
    agents = scope_agents(tenant_ids=tenant_ids, filters=filters)
    watched = [filters.tenant] if filters.tenant else tenants[:MAX_LIVE_TENANTS]
    context = {
        "rows": team_rows(agents=agents, tenant_ids=tenant_ids, now=now),
        "truncated": len(agents) >= MAX_AGENTS,
        "max_agents": MAX_AGENTS,
        "tenants": tenants,
        "teams": teams,
        "presences": Presence.choices,
        "filters": filters,
        "query": _team_query(filters),
        "live_config": {
            "streams": [tenant_stream(tenant.pk) for tenant in watched],
            "text": _live_texts(),
        },
    }
    return render(request, "desk/team.html", context)


# --- reassignment -------------------------------------------------------------------------------------


class ReassignError(Exception):
    """The posted form cannot be acted on at all; the message says why."""


def _source_agent(agent_id: int, tenant_ids: list[int]) -> Agent:
    """The agent whose work is moved: authorised for one of the tenants (a deactivated user too:
    their work is exactly what needs moving). 404 otherwise, alike for unknown and foreign ids."""
    agent = (
        Agent.objects.select_related("user", "team")
        .filter(
            pk=agent_id,
            pk__in=TenantAuthorisation.objects.filter(tenant_id__in=tenant_ids).values("agent_id"),
        )
        .first()
    )
    if agent is None:
        raise Http404(_("No such agent among your clients' agents."))
    return agent


def open_tickets_of(agent: Agent, tenant_ids: list[int]) -> list[Ticket]:
    """The agent's unresolved tickets in the tenants, most urgent first (one query)."""
    return list(
        Ticket.objects.filter(assignee=agent, tenant_id__in=tenant_ids, status__in=list(UNRESOLVED))
        .select_related("tenant", "customer")
        .order_by(*QUEUE_ORDER)[:MAX_TICKETS]
    )


def _target_rows(targets: list[Agent], source: Agent) -> list[dict[str, Any]]:
    return [
        {
            "agent": target,
            "codes": ", ".join(auth.tenant.code for auth in getattr(target, "shown_authorisations", [])),
            "tenant_ids": [auth.tenant_id for auth in getattr(target, "shown_authorisations", [])],
        }
        for target in targets
        if target.pk != source.pk
    ]


def _posted_ids(post: QueryDict) -> list[int]:
    values = [value.strip() for value in post.getlist("ticket")]
    if not values:
        raise ReassignError(_("Select at least one ticket first."))
    if len(values) > MAX_TICKETS:
        raise ReassignError(_("Select at most %(count)d tickets at once.") % {"count": MAX_TICKETS})
    if not all(value.isascii() and value.isdigit() and len(value) < 19 for value in values):
        raise ReassignError(_("Ticket IDs must be numbers."))
    return sorted({int(value) for value in values})


def _posted_target(post: QueryDict, source: Agent, tenant_ids: list[int]) -> Agent | None:
    """The agent to move the tickets to, or None for "back to the queue"."""
    raw = post.get("to", "").strip()
    if raw == "queue":
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) < 19):
        raise ReassignError(_("Choose the agent to move the tickets to, or return them to the queue."))
    if int(raw) == source.pk:
        raise ReassignError(
            _("The tickets are already %(agent)s's: choose another agent.") % {"agent": source}
        )
    target = (
        Agent.objects.select_related("user")
        .filter(
            pk=int(raw),
            user__is_active=True,
            pk__in=TenantAuthorisation.objects.filter(tenant_id__in=tenant_ids).values("agent_id"),
        )
        .first()
    )
    if target is None:
        raise ReassignError(_("That agent cannot be given work of your clients."))
    return target


@dataclass
class Outcome:
    moved: list[Ticket] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (reference, reason)
    missing: int = 0


def reassign(
    *,
    user: User,
    source: Agent,
    target: Agent | None,
    ticket_ids: list[int],
    tenant_ids: list[int],
    note: str,
) -> Outcome:
    """Move the source agent's tickets among ``ticket_ids`` one by one through routing (each in its
    own transaction). Tickets outside the tenants read like unknown ids; tickets no longer the
    source agent's are refused (the page the supervisor looked at was stale)."""
    outcome = Outcome()
    tickets = list(
        Ticket.objects.filter(pk__in=ticket_ids, tenant_id__in=tenant_ids)
        .select_related("tenant")
        .order_by("pk")
    )
    outcome.missing = len(ticket_ids) - len(tickets)
    for ticket in tickets:
        if ticket.assignee_id != source.pk:
            outcome.failed.append(
                (ticket.reference, _("no longer assigned to %(agent)s") % {"agent": source})
            )
            continue
        try:
            outcome.moved.append(routing_assign_by_hand(ticket=ticket, agent=target, actor=user, note=note))
        except ValidationError as exc:  # a BusinessRuleViolation, or a value the model refuses
            outcome.failed.append((ticket.reference, " ".join(exc.messages)))
    return outcome


def _summary(outcome: Outcome, target: Agent | None) -> tuple[str, list[str]]:
    """The success message and the error messages of an outcome."""
    count = len(outcome.moved)
    if target is None:
        done = ngettext(
            "%(count)d ticket returned to the queue.", "%(count)d tickets returned to the queue.", count
        ) % {"count": count}
    else:
        done = ngettext(
            "%(count)d ticket moved to %(agent)s.", "%(count)d tickets moved to %(agent)s.", count
        ) % {"count": count, "agent": target}
    errors = []
    if outcome.missing:
        errors.append(
            ngettext(
                "%(count)d selected ticket was not found among yours and was not moved.",
                "%(count)d selected tickets were not found among yours and were not moved.",
                outcome.missing,
            )
            % {"count": outcome.missing}
        )
    if outcome.failed:
        errors.append(
            _("Not moved: %(failures)s")
            % {"failures": "; ".join(f"{reference}: {reason}" for reference, reason in outcome.failed)}
        )
    return (done if count else ""), errors


def _post(request: HttpRequest, user: User, source: Agent, tenant_ids: list[int]) -> HttpResponse:
    back = redirect("desk:team_agent", agent_id=source.pk)
    back.status_code = 303
    try:
        ids = _posted_ids(request.POST)
        target = _posted_target(request.POST, source, tenant_ids)
    except ReassignError as exc:
        if wants_json(request):
            return JsonResponse({"error": str(exc)}, status=400)
        messages.error(request, str(exc))
        return back
    note = request.POST.get("note", "").strip()[:200]
    outcome = reassign(
        user=user, source=source, target=target, ticket_ids=ids, tenant_ids=tenant_ids, note=note
    )
    done, errors = _summary(outcome, target)
    if wants_json(request):
        failed = [{"reference": reference, "error": reason} for reference, reason in outcome.failed]
        body: dict[str, Any] = {
            "moved": [ticket.reference for ticket in outcome.moved],
            "failed": failed,
            "missing": outcome.missing,
            "message": done,
            "errors": errors,
        }
        if not outcome.moved:
            body["error"] = " ".join(errors)
            return JsonResponse(body, status=400)
        return JsonResponse(body)
    if done:
        messages.success(request, done)
    for error in errors:
        messages.error(request, error)
    return back


@require_http_methods(["GET", "HEAD", "POST"])
@supervisor_required("desk/team.html")
def agent_page(request: HttpRequest, agent_id: int) -> HttpResponse:
    """One agent's open tickets, to move to another agent or back to the queue."""
    user = actor(request)
    tenants = scope_tenants(user=user)
    tenant_ids = [tenant.pk for tenant in tenants]
    source = _source_agent(agent_id, tenant_ids)
    if request.method == "POST":
        return _post(request, user, source, tenant_ids)
    now = timezone.now()
    tickets = open_tickets_of(source, tenant_ids)
    targets = scope_agents(tenant_ids=tenant_ids, profile=False)
    context = {
        "source": source,
        "rows": [{"ticket": ticket, "sla": sla_badge(ticket.sla_due_at, now)} for ticket in tickets],
        "targets": _target_rows(targets, source),
        "truncated": len(tickets) >= MAX_TICKETS,
        "team_url": reverse("desk:team"),
    }
    return render(request, "desk/team_agent.html", context)
