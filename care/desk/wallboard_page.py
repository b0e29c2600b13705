"""The wallboard (``/desk/wallboard/?tenant=CODE``): one tenant's service right now, in figures large
enough to read across the room, kept current by the ``wallboard:<tenant>`` stream.

Who may see it: supervisors and administrators, for the tenants they see. Agents get a 403 page:
the ``wallboard`` stream is for supervisors only (docs/realtime.md), so an agent's board could not
update itself, and a stale board on a wall is worse than none. A tenant code that is not one of the
user's answers 404, exactly like a code that does not exist.

The figures are those of ``care.reporting.selectors.live_figures`` (the board and the queue
statistics, five queries); the page adds the session, the user, the user's tenants and the tenant list.
The ``queue.stats`` events on the tenant's stream keep the per-queue table current.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from care.desk.access import actor
from care.desk.team_page import scope_tenants, supervisor_required
from care.realtime.streams import tenant_stream, wallboard_stream
from care.reporting.selectors import live_figures
from care.tenants.models import Tenant


def _texts() -> dict[str, str]:
    """Words the script needs to re-label figures in the user's language."""
    return {
        "none": _("none"),
        "no_data": _("no data yet"),
        "connected": _("Live"),
        "reconnecting": _("Reconnecting…"),
        "denied": _("Live updates are not available: reload the page."),
        "updated": _("Updated %(time)s UTC"),
        "default_queue": _("Default routing"),
        "no_queues": _("No queues."),
    }


def wait_text(since: str | None, now: dt.datetime) -> str:
    """A wait as ``m:ss`` or ``h:mm:ss`` (the script ticks it on from the same start)."""
    if not since:
        return "–"
    seconds = max(0, int((now - dt.datetime.fromisoformat(since)).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def share_text(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.0f} %"


def _chosen(code: str, tenants: list[Tenant]) -> Tenant | None:
    if code:
        tenant = next((t for t in tenants if t.code.lower() == code.lower()), None)
        if tenant is None:
            raise Http404(_("No such client among yours."))
        return tenant
    return tenants[0] if len(tenants) == 1 else None


@require_http_methods(["GET", "HEAD"])
@supervisor_required("desk/wallboard.html")
def page(request: HttpRequest) -> HttpResponse:
    user = actor(request)
    tenants = scope_tenants(user=user)
    tenant = _chosen(request.GET.get("tenant", "").strip(), tenants)
    context: dict[str, Any] = {"tenants": tenants, "tenant": tenant}
    if tenant is not None:
        now = timezone.now()
        board, stats = live_figures(tenant=tenant, now=now)
        context.update(
            {
                "board": board,
                "longest_wait": wait_text(board["oldest_waiting_since"], now),
                "service_level": share_text(board["service_level_today"]),
                "queues": [
                    {**queue, "wait": wait_text(queue["oldest_waiting_since"], now)}
                    for queue in stats["queues"]
                ],
                "stats": stats,
                "live_config": {
                    "wallboard": wallboard_stream(tenant.pk),
                    "tenant": tenant_stream(tenant.pk),
                    "board": board,
                    "stats": stats,
                    "text": _texts(),
                },
            }
        )
    return render(request, "desk/wallboard.html", context)
