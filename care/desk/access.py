"""Who may use the desk's pages, and small request helpers every desk view shares."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from care.accounts.models import Role, User

View = TypeVar("View", bound=Callable[..., HttpResponse])


def desk_user_required(view: View) -> View:
    """Logged in and staff of the service center (agent, supervisor, admin): tenant portal users get
    403 whatever the ticket, so the answer says nothing about which tickets exist."""

    @wraps(view)
    def staff_only(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if getattr(request.user, "role", None) == Role.PORTAL:
            raise PermissionDenied(_("The agent desk is for the service center's staff."))
        return view(request, *args, **kwargs)

    return cast(View, login_required(staff_only))


def actor(request: HttpRequest) -> User:
    """The logged-in user (desk views are behind ``desk_user_required``)."""
    user = request.user
    assert isinstance(user, User)  # noqa: S101 - login_required ran
    return user


def wants_json(request: HttpRequest) -> bool:
    # The page's script asks for JSON; a plain form post (no script) gets a page or a redirect.
    return "application/json" in request.headers.get("Accept", "")
