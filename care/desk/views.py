"""The agents' (and everyone's) start page. The full desk arrives with its own issue; today the page
says who you are and which clients' work you can see, so every demo login shows something real."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from care.tickets.selectors import open_ticket_counts_by_tenant


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "desk/home.html")


@require_GET
@login_required
def my_tenants(request: HttpRequest) -> HttpResponse:
    return render(request, "desk/my_tenants.html", {"rows": open_ticket_counts_by_tenant(user=request.user)})
