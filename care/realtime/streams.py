"""The four kinds of stream a client can subscribe to, their channel-layer group names, and who may
subscribe to which.

A stream is named ``<kind>:<id>`` (``ticket:42``). Realtime knows no domain rules: the tenant of a
kind whose rows live in a higher app (a ticket) is looked up by a function that app registers in its
``AppConfig.ready()`` with :func:`register_kind`. Whether a user may see that tenant is the one
isolation rule, ``User.visible_tenant_ids``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from care.accounts.models import Role

AGENT = "agent"
TENANT = "tenant"
TICKET = "ticket"
WALLBOARD = "wallboard"

_NAME = re.compile(r"^(?P<kind>[a-z]+):(?P<id>[1-9][0-9]{0,17})$")

# A kind's function that answers the tenant id of one of its rows, or None when there is no such row.
TenantOf = Callable[[int], int | None]


@dataclass(frozen=True)
class StreamKind:
    name: str
    tenant_of: TenantOf | None  # None: the id is the tenant's own id (or, for agents, not tenant-bound)
    supervisors_only: bool = False
    log_length: int | None = None  # None: the LIVE_LOG_LENGTH setting; 1 for snapshot streams


_KINDS: dict[str, StreamKind] = {
    TENANT: StreamKind(TENANT, None),
    WALLBOARD: StreamKind(WALLBOARD, None, supervisors_only=True, log_length=1),
    AGENT: StreamKind(AGENT, None),
}


def register_kind(name: str, *, tenant_of: TenantOf) -> None:
    """Add a stream kind whose ids are rows of a higher app; ``tenant_of(id)`` answers their tenant."""
    _KINDS[name] = StreamKind(name, tenant_of)


def kind_of(stream: str) -> StreamKind | None:
    parsed = parse(stream)
    return _KINDS.get(parsed[0]) if parsed else None


def parse(stream: Any) -> tuple[str, int] | None:
    """``"ticket:42"`` -> ``("ticket", 42)``; None for anything that is not a well-formed name."""
    if not isinstance(stream, str):
        return None
    match = _NAME.match(stream)
    if match is None or match["kind"] not in _KINDS:
        return None
    return match["kind"], int(match["id"])


def agent_stream(agent_id: int) -> str:
    return f"{AGENT}:{agent_id}"


def tenant_stream(tenant_id: int) -> str:
    return f"{TENANT}:{tenant_id}"


def ticket_stream(ticket_id: int) -> str:
    return f"{TICKET}:{ticket_id}"


def wallboard_stream(tenant_id: int) -> str:
    return f"{WALLBOARD}:{tenant_id}"


def group_name(stream: str) -> str:
    """The channel-layer group of a stream (group names allow letters, digits, ``-_.`` only)."""
    return "live." + stream.replace(":", ".")


@dataclass(frozen=True)
class Access:
    """What one connection's user may see, loaded from the database when the connection opens and
    again every ``ACCESS_SECONDS`` (an authorisation withdrawn takes effect on open connections)."""

    user_id: int
    name: str
    agent_id: int | None
    supervisor: bool
    all_tenants: bool
    tenant_ids: frozenset[int]

    def may_see(self, tenant_id: int) -> bool:
        return self.all_tenants or tenant_id in self.tenant_ids


ACCESS_SECONDS = 30


def load_access(user: Any) -> Access | None:
    """The access of a logged-in staff user (agents, supervisors, admins), None for anyone else."""
    if not is_staff_user(user):
        return None
    from care.accounts.models import Agent

    agent_id = Agent.objects.filter(user_id=user.pk).values_list("pk", flat=True).first()
    return Access(
        user_id=user.pk,
        name=user.get_full_name(),
        agent_id=agent_id,
        supervisor=is_supervisor(user),
        all_tenants=user.sees_all_tenants,
        tenant_ids=frozenset(user.visible_tenant_ids()),
    )


def tenant_for_subscription(access: Access, stream: str) -> int | None:
    """The tenant whose events ``stream`` carries if the connection may subscribe to it, else None.

    Agent streams are not bound to one tenant: they answer 0, and every event on any stream is
    checked against the user's tenants again when it is forwarded. A refusal does not say whether
    the row exists.
    """
    parsed = parse(stream)
    if parsed is None:
        return None
    kind_name, row_id = parsed
    kind = _KINDS[kind_name]
    if kind_name == AGENT:
        return 0 if access.agent_id is not None and row_id == access.agent_id else None
    if kind.supervisors_only and not access.supervisor:
        return None
    tenant_id = row_id if kind.tenant_of is None else kind.tenant_of(row_id)
    if tenant_id is None or not access.may_see(tenant_id):
        return None
    return tenant_id


def is_staff_user(user: Any) -> bool:
    """Who may use the live layer at all: agents, supervisors and admins (not portal users)."""
    return bool(user.is_authenticated and user.is_active and user.role != Role.PORTAL)


def is_supervisor(user: Any) -> bool:
    return bool(user.is_superuser or user.role in (Role.SUPERVISOR, Role.ADMIN))
