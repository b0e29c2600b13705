"""The desk's search page (``/desk/search/``): tickets and timelines of the tenants the user may see.

A ticket reference jumps straight to the ticket; everything else lists one row per ticket, newest
first, with "More results" as a keyset link (``before=<last ticket id>``). The search itself is
``care.tickets.search.ticket_search``; this view reads the form and renders (docs/search.md).
With ``Accept: application/json`` it answers the rows as HTML for the page's script ("More results"
without a reload) and errors as ``{"error": ...}`` with status 400.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from care.core.errors import BusinessRuleViolation
from care.desk.access import actor, desk_user_required, wants_json
from care.tickets.search import MAX_QUERY_LENGTH, SearchResult, ticket_search, visible_tenants
from care.tickets.status import Status


def _number(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else None


@require_GET
@desk_user_required
def page(request: HttpRequest) -> HttpResponse:
    user = actor(request)
    tenants = visible_tenants(user=user)
    params = request.GET
    query = params.get("q", "")
    notes: list[str] = []
    tenant_id = _number(params.get("tenant", ""))
    if params.get("tenant", "").strip() and not any(t.pk == tenant_id for t in tenants):
        notes.append(_("The client filter was ignored: no such client among yours."))
        tenant_id = None
    statuses = [value for value in params.getlist("status") if value in Status.values]
    if len(statuses) != len([value for value in params.getlist("status") if value]):
        notes.append(_("Unknown statuses in the filter were ignored."))
    before = _number(params.get("before", ""))
    error = ""
    result = SearchResult(kind="empty")
    try:
        result = ticket_search(
            user=user,
            query=query,
            tenants=tenants,
            tenant_id=tenant_id,
            statuses=statuses,
            # The desk is for the service center's staff: internal notes are theirs to find.
            include_notes=True,
            before=before,
        )
    except BusinessRuleViolation as exc:
        error = " ".join(exc.messages)
    if wants_json(request) and error:
        return JsonResponse({"error": error}, status=400)
    jump = result.jump_to
    if jump is not None and before is None and not wants_json(request):
        return redirect("desk:ticket", jump.reference)
    more_url = ""
    if result.next_before is not None:
        kept: list[tuple[str, str | int]] = [("q", result.query)]
        if tenant_id is not None:
            kept.append(("tenant", tenant_id))
        kept += [("status", status) for status in statuses]
        kept.append(("before", result.next_before))
        more_url = "?" + urlencode(kept)
    context = {
        "query": query[: MAX_QUERY_LENGTH * 2],
        "result": result,
        "error": error or result.message,
        "notes": notes,
        "tenants": tenants,
        "tenant_id": tenant_id,
        "statuses": Status.choices,
        "selected_statuses": statuses,
        "more_url": more_url,
        "continued": before is not None,
        "max_length": MAX_QUERY_LENGTH,
    }
    if wants_json(request):
        rows = render_to_string("desk/search_rows.html", context, request=request)
        return JsonResponse({"rows": rows, "more_url": more_url, "count": len(result.hits)})
    return render(request, "desk/search.html", context)
