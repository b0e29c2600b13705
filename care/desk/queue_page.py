"""The desk's "Queues" page: every ticket waiting in the tenants I may see, most urgent first, with
filters that live in the URL (so a view can be shared) and bulk actions for supervisors.

Reads go through ``Ticket.objects.visible_to(user)``: a filter can narrow the user's tenants, never
widen them, and a bulk action re-reads every posted id through the same scope.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, ngettext_lazy
from django.views.decorators.http import require_http_methods

from care.accounts.models import Agent, Role, User
from care.core.channels import Channel
from care.core.languages import LANGUAGE_CODES
from care.desk.access import desk_user_required
from care.realtime.streams import tenant_stream
from care.tenants.models import Tenant
from care.tickets.models import Priority, Ticket
from care.tickets.selectors import QUEUE_ORDER
from care.tickets.services import ticket_assign, ticket_change_status, ticket_update
from care.tickets.status import ACTIONABLE, Status

PAGE_SIZE = 50
# Offsets beyond this are not a queue anyone reads page by page; refuse them rather than scan.
MAX_PAGE = 200
# One bulk action changes at most a page of tickets.
MAX_BULK = PAGE_SIZE
# Up to this many index reads (tenants, or tenants times statuses) the page merges per-tenant reads of
# the queue instead of sorting every match (see _merged); beyond it, planning them costs more.
MERGE_BRANCHES_MAX = 64
_ACTIONABLE = frozenset(str(status) for status in ACTIONABLE)
# "Due soon": the SLA due within this long from now.
SOON = dt.timedelta(hours=1)

SLA_STATES = ("overdue", "soon", "later", "none")
ASSIGNEE_CHOICES = ("", "unassigned", "me")


def _sla_labels() -> dict[str, str]:
    return {
        "overdue": _("Overdue"),
        "soon": _("Due within 1 hour"),
        "later": _("Due later"),
        "none": _("No SLA"),
    }


def _assignee_labels() -> dict[str, str]:
    return {"": _("Anyone"), "unassigned": _("Unassigned"), "me": _("Me")}


@dataclass
class QueueFilters:
    """The filters as understood, with a note for every value that was ignored."""

    tenant: Tenant | None = None
    language: str = ""
    channel: str = ""
    statuses: list[str] = field(default_factory=lambda: [str(s) for s in ACTIONABLE])
    priority: int | None = None
    sla: str = ""
    assignee: str = ""
    page: int = 1
    notes: list[str] = field(default_factory=list)


def can_bulk_edit(user: Any) -> bool:
    """Bulk actions are for supervisors and administrators, not for plain agents."""
    return bool(
        getattr(user, "is_superuser", False) or getattr(user, "role", None) in (Role.SUPERVISOR, Role.ADMIN)
    )


def visible_tenants(*, user: Any) -> list[Tenant]:
    """Every tenant ``user`` may see, active or not (one query): the queue spans all of them."""
    return list(Tenant.objects.visible_to(user).order_by("name"))


def queue_tenants(*, user: Any) -> list[Tenant]:
    """The active tenants ``user`` may see, for the tenant filter (one query)."""
    return [tenant for tenant in visible_tenants(user=user) if tenant.is_active]


def parse_filters(params: QueryDict, tenants: Sequence[Tenant]) -> QueueFilters:
    """Read the query string; an invalid value is ignored and noted, never an error page. A tenant
    id the user may not see reads exactly like one that does not exist: nothing leaks."""
    filters = QueueFilters()
    raw_tenant = params.get("tenant", "").strip()
    if raw_tenant:
        by_id = {str(tenant.pk): tenant for tenant in tenants}
        filters.tenant = by_id.get(raw_tenant)
        if filters.tenant is None:
            filters.notes.append(_("The client filter was ignored: no such client among yours."))
    language = params.get("language", "").strip().lower()
    if language:
        if language in LANGUAGE_CODES:
            filters.language = language
        else:
            filters.notes.append(_("The language filter was ignored: unknown language code."))
    channel = params.get("channel", "").strip()
    if channel:
        if channel in Channel.values:
            filters.channel = channel
        else:
            filters.notes.append(_("The channel filter was ignored: unknown channel."))
    statuses = [value for value in params.getlist("status") if value]
    if statuses:
        known = [value for value in Status.values if value in statuses]
        if len(known) != len(set(statuses)):
            filters.notes.append(_("Unknown statuses in the filter were ignored."))
        if known:
            filters.statuses = known
    priority = params.get("priority", "").strip()
    if priority:
        if priority.isascii() and priority.isdigit() and int(priority) in Priority.values:
            filters.priority = int(priority)
        else:
            filters.notes.append(_("The priority filter was ignored: unknown priority."))
    sla = params.get("sla", "").strip()
    if sla:
        if sla in SLA_STATES:
            filters.sla = sla
        else:
            filters.notes.append(_("The SLA filter was ignored: unknown SLA state."))
    assignee = params.get("assignee", "").strip()
    if assignee in ASSIGNEE_CHOICES:
        filters.assignee = assignee
    else:
        filters.notes.append(_("The assignee filter was ignored: choose anyone, unassigned or me."))
    page = params.get("page", "1").strip()
    if page.isascii() and page.isdigit() and 1 <= int(page) <= MAX_PAGE:
        filters.page = int(page)
    elif page:
        filters.notes.append(
            _("The page number was ignored: use a number from 1 to %(max)d.") % {"max": MAX_PAGE}
        )
    return filters


def filtered_tickets(*, user: Any, filters: QueueFilters, now: dt.datetime) -> QuerySet[Ticket]:
    """The tickets matching ``filters`` in the user's tenants, most urgent first (QUEUE_ORDER), with
    what a row shows joined in: one query whatever the page size."""
    tickets = _matching(Ticket.objects.visible_to(user), user=user, filters=filters, now=now)
    return tickets.select_related("tenant", "customer", "assignee__user").order_by(*QUEUE_ORDER)


def _matching(
    tickets: QuerySet[Ticket], *, user: Any, filters: QueueFilters, now: dt.datetime
) -> QuerySet[Ticket]:
    """``tickets`` narrowed by the filters (not by the user's tenants: the caller's queryset does)."""
    tickets = tickets.filter(status__in=filters.statuses)
    if filters.tenant is not None:
        tickets = tickets.filter(tenant_id=filters.tenant.pk)
    if filters.language:
        tickets = tickets.filter(language=filters.language)
    if filters.channel:
        tickets = tickets.filter(channel=filters.channel)
    if filters.priority is not None:
        tickets = tickets.filter(priority=filters.priority)
    if filters.sla == "overdue":
        tickets = tickets.filter(sla_due_at__lt=now)
    elif filters.sla == "soon":
        tickets = tickets.filter(sla_due_at__gte=now, sla_due_at__lt=now + SOON)
    elif filters.sla == "later":
        tickets = tickets.filter(sla_due_at__gte=now + SOON)
    elif filters.sla == "none":
        tickets = tickets.filter(sla_due_at__isnull=True)
    if filters.assignee == "unassigned":
        tickets = tickets.filter(assignee__isnull=True)
    elif filters.assignee == "me":
        tickets = tickets.filter(assignee__user_id=user.pk)
    return tickets


def queue_page_of(
    *, user: Any, filters: QueueFilters, now: dt.datetime, tenant_ids: Collection[int] | None = None
) -> tuple[list[Ticket], bool]:
    """One page of the queue and whether another follows (one row more is read to know). One query.

    ``tenant_ids``: every tenant the user may see, when the caller has them (the page has); the queue
    then reads each tenant's top rows through its own index and merges them (``_merged``). Without
    them, one plain query: correct, but across several tenants PostgreSQL reads every matching ticket
    and sorts them (0.2 to 2.4 s at 1,000,000 tickets: docs/performance.md, "Desk pages").
    """
    offset = (filters.page - 1) * PAGE_SIZE
    tickets = filtered_tickets(user=user, filters=filters, now=now)
    if filters.tenant is None and tenant_ids is not None:
        tickets = _merged(tickets, user=user, filters=filters, tenant_ids=tenant_ids, now=now)
    rows = list(tickets[offset : offset + PAGE_SIZE + 1])
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def _merged(
    tickets: QuerySet[Ticket],
    *,
    user: Any,
    filters: QueueFilters,
    tenant_ids: Collection[int],
    now: dt.datetime,
) -> QuerySet[Ticket]:
    """``tickets`` (the user's, filtered, in QUEUE_ORDER), restricted to the union of each tenant's
    first rows up to the end of the page (each status's, when the statuses are not the actionable set).

    The queue indexes are ordered within one tenant and status (``tickets_queue_by_status``), or one
    tenant's actionable tickets (``tickets_queue_actionable``). Across tenants, or across statuses
    outside that set, PostgreSQL would read every match and sort it; instead each branch reads its
    first rows from its index (``LIMIT`` stops the scan) and only those are sorted: the top ``rows``
    of the whole queue are among them. The other filters are in every branch, so they stay filters
    on the index scan (or its range, for the SLA states). A branch names its one tenant instead of
    repeating the user's tenant list (which costs planning time fifty times over); ``tickets``, the
    user's scope, still wraps the result, so a tenant id the user may not see would add nothing.
    """
    rows = filters.page * PAGE_SIZE + 1
    tenants = sorted(set(tenant_ids))
    if len(tenants) <= 1 and set(filters.statuses) == _ACTIONABLE:
        return tickets
    by_status = set(filters.statuses) != _ACTIONABLE
    statuses: list[str | None] = list(filters.statuses) if by_status else [None]
    if len(tenants) * len(statuses) > MERGE_BRANCHES_MAX:
        if not by_status or len(tenants) > MERGE_BRANCHES_MAX:
            return tickets  # too many branches to plan quickly: the plain query
        statuses = [None]
    # The branches carry the sort keys, which the queue indexes hold: they are index-only reads, and
    # the union is sorted and cut to ``rows`` before a single ticket row is fetched and joined.
    base = (
        _matching(Ticket.objects.all(), user=user, filters=filters, now=now)
        .order_by(*QUEUE_ORDER)
        .values("id", "sla_due_at", "priority", "created_at")
    )
    branches = [
        (base.filter(tenant_id=tenant) if status is None else base.filter(tenant_id=tenant, status=status))[
            :rows
        ]
        for tenant in tenants
        for status in statuses
    ]
    if len(branches) <= 1:  # one tenant and status, or none at all: the plain query is the index read
        return tickets
    top = branches[0].union(*branches[1:], all=True).order_by(*QUEUE_ORDER)[:rows]
    # A union cannot be narrowed to its id column once ordered; select it from the union as a derived
    # table instead. The SQL is Django's own, parameters kept apart.
    sql, params = top.query.sql_with_params()
    derived = f"SELECT queue_top.id FROM ({sql}) AS queue_top"  # noqa: S608 - Django's SQL, not input
    return tickets.filter(pk__in=RawSQL(derived, params))  # noqa: S611 - params stay bound


def assignable_agents(*, user: Any) -> list[Agent]:
    """Agents authorised for at least one of the user's tenants: whom a bulk assignment may name.
    Whether an agent is authorised for each ticket's tenant is checked by ``ticket_assign``."""
    agents = Agent.objects.select_related("user").filter(user__is_active=True)
    if not getattr(user, "sees_all_tenants", False):
        agents = agents.filter(authorisations__tenant_id__in=list(user.visible_tenant_ids()))
    return list(agents.distinct().order_by("user__full_name", "user__email"))


def filters_query(filters: QueueFilters, *, page: int = 1) -> str:
    """The understood filters as a query string (an ignored value is not carried on), for the pages'
    links and the redirect after a bulk action."""
    kept = QueryDict(mutable=True)
    if filters.tenant is not None:
        kept["tenant"] = str(filters.tenant.pk)
    for key in ("language", "channel", "sla", "assignee"):
        if getattr(filters, key):
            kept[key] = getattr(filters, key)
    if filters.statuses != QueueFilters().statuses:
        kept.setlist("status", filters.statuses)
    if filters.priority is not None:
        kept["priority"] = str(filters.priority)
    if page > 1:
        kept["page"] = str(page)
    return kept.urlencode()


def _sla_state(ticket: Ticket, now: dt.datetime) -> str:
    due = ticket.sla_due_at
    if due is None:
        return "none"
    if due < now:
        return "overdue"
    return "soon" if due < now + SOON else "later"


@require_http_methods(["GET", "POST"])
@desk_user_required
def page(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _bulk(request)
    user = request.user
    now = timezone.now()
    visible = visible_tenants(user=user)
    tenants = [tenant for tenant in visible if tenant.is_active]
    filters = parse_filters(request.GET, tenants)
    tickets, has_next = queue_page_of(
        user=user, filters=filters, now=now, tenant_ids=[tenant.pk for tenant in visible]
    )
    bulk = can_bulk_edit(user)
    rows = [{"ticket": ticket, "sla": _sla_state(ticket, now)} for ticket in tickets]
    languages = sorted({code for tenant in tenants for code in tenant.languages})
    if filters.language and filters.language not in languages:
        languages.append(filters.language)
    context = {
        "rows": rows,
        "filters": filters,
        "tenants": tenants,
        "languages": languages,
        "channels": Channel.choices,
        "statuses": Status.choices,
        "priorities": Priority.choices,
        "sla_states": list(_sla_labels().items()),
        "assignee_choices": list(_assignee_labels().items()),
        "bulk": bulk,
        "agents": assignable_agents(user=user) if bulk else [],
        "query": filters_query(filters, page=filters.page),
        "next_query": filters_query(filters, page=filters.page + 1) if has_next else None,
        "previous_query": filters_query(filters, page=filters.page - 1) if filters.page > 1 else None,
        "live_config": {"streams": _live_streams(tenants, filters)},
    }
    return render(request, "desk/queue.html", context)


# The page follows at most this many tenants live; a wider view (an admin's) is re-read when it is
# next opened or filtered. Each stream is one subscription of the page's websocket.
MAX_LIVE_TENANTS = 50


def _live_streams(tenants: Sequence[Tenant], filters: QueueFilters) -> list[str]:
    """The tenant streams whose ticket events can change the rows shown: the filtered tenant's, or
    every active tenant's the user may see."""
    shown = [tenant for tenant in tenants if filters.tenant is None or tenant.pk == filters.tenant.pk]
    return [tenant_stream(tenant.pk) for tenant in shown[:MAX_LIVE_TENANTS]]


# --- bulk actions -----------------------------------------------------------------------------------


class BulkRequestError(Exception):
    """The posted form cannot be understood; the message says why."""


def _posted_ticket_ids(post: QueryDict) -> list[int]:
    values = post.getlist("ticket")
    if not values:
        raise BulkRequestError(_("Select at least one ticket first."))
    if len(values) > MAX_BULK:
        raise BulkRequestError(_("Select at most %(count)d tickets at once.") % {"count": MAX_BULK})
    if not all(value.isascii() and value.isdigit() for value in values):
        raise BulkRequestError(_("Ticket IDs must be numbers."))
    return sorted({int(value) for value in values})


def _bulk_change(request: HttpRequest, user: User) -> tuple[Callable[[Ticket], Ticket], Any]:
    """The change to make to each ticket: a function of (ticket) and what it is called in messages."""
    post = request.POST
    action = post.get("action", "")
    if action == "assign":
        raw = post.get("agent", "").strip()
        if raw == "none":
            return (lambda ticket: ticket_assign(ticket=ticket, agent=None, actor=user)), ngettext_lazy(
                "%(count)d ticket unassigned.",
                "%(count)d tickets unassigned.",
                "count",
            )
        if not (raw.isascii() and raw.isdigit()):
            raise BulkRequestError(_("Choose the agent to assign the tickets to."))
        agent = next((a for a in assignable_agents(user=user) if a.pk == int(raw)), None)
        if agent is None:
            raise BulkRequestError(_("That agent cannot be given work of your clients."))
        return (lambda ticket: ticket_assign(ticket=ticket, agent=agent, actor=user)), ngettext_lazy(
            "%(count)d ticket assigned.",
            "%(count)d tickets assigned.",
            "count",
        )
    if action == "status":
        status = post.get("new_status", "")
        if status not in Status.values:
            raise BulkRequestError(_("Choose the new status."))
        return (lambda ticket: ticket_change_status(ticket=ticket, status=status, actor=user)), ngettext_lazy(
            "Status changed on %(count)d ticket.",
            "Status changed on %(count)d tickets.",
            "count",
        )
    if action == "priority":
        raw = post.get("new_priority", "")
        if not (raw.isascii() and raw.isdigit() and int(raw) in Priority.values):
            raise BulkRequestError(_("Choose the new priority."))
        priority = int(raw)
        return (lambda ticket: ticket_update(ticket=ticket, actor=user, priority=priority)), ngettext_lazy(
            "Priority changed on %(count)d ticket.",
            "Priority changed on %(count)d tickets.",
            "count",
        )
    raise BulkRequestError(_("Choose an action: assign, change status or change priority."))


def _bulk(request: HttpRequest) -> HttpResponse:
    """Apply one action to the selected tickets. Every id is re-read through the user's scope (a
    ticket of another tenant is not touched, and is reported like an id that does not exist); a
    ticket the rules refuse (BusinessRuleViolation) is listed with the reason, the others are changed."""
    user = request.user
    assert isinstance(user, User)  # noqa: S101 - desk_user_required ran
    if not can_bulk_edit(user):
        raise PermissionDenied(_("Bulk actions are for supervisors and administrators."))
    back = redirect("desk:queue")
    # Back to the same view of the queue: the filters the page was showing, as the page understood them.
    shown = parse_filters(QueryDict(request.POST.get("query", "")), queue_tenants(user=user))
    query = filters_query(shown, page=shown.page)
    if query:
        back["Location"] += "?" + query
    back.status_code = 303
    try:
        ids = _posted_ticket_ids(request.POST)
        change, done = _bulk_change(request, user)
    except BulkRequestError as exc:
        messages.error(request, str(exc))
        return back
    tickets = list(Ticket.objects.visible_to(user).filter(pk__in=ids).select_related("tenant").order_by("pk"))
    failed: list[str] = []
    for ticket in tickets:
        try:
            change(ticket)
        except ValidationError as exc:  # a BusinessRuleViolation, or a value the model refuses
            failed.append(
                _("%(reference)s: %(reason)s")
                % {"reference": ticket.reference, "reason": " ".join(exc.messages)}
            )
    changed = len(tickets) - len(failed)
    if changed:
        messages.success(request, done % {"count": changed})
    missing = len(ids) - len(tickets)
    if missing:
        messages.error(
            request,
            ngettext(
                "%(count)d selected ticket was not found among yours and was not changed.",
                "%(count)d selected tickets were not found among yours and were not changed.",
                missing,
            )
            % {"count": missing},
        )
    if failed:
        messages.error(request, _("Not changed: %(failures)s") % {"failures": "; ".join(failed)})
    return back
