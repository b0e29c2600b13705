"""Reading mentions: who may be mentioned on a ticket, and a user's unread mentions."""

from __future__ import annotations

from typing import Any

from django.db.models import CharField, Exists, F, Func, OuterRef, Q, QuerySet, Value

from care.accounts.models import Role, TenantAuthorisation, User
from care.mentions.models import Mention

# The suggestions list under the note box: enough to pick from, small enough to read.
MAX_SUGGESTIONS = 8
# My work lists this many unread mentions; older unread ones wait until these are read.
MAX_UNREAD = 50


def _local_part() -> Func:
    return Func(F("email"), Value("@"), Value(1), function="split_part", output_field=CharField())


def mentionable_users(*, tenant_id: int) -> QuerySet[User]:
    """Staff who may see the tenant: active agents and supervisors authorised for it (the tenant
    active), and administrators. Never portal users, never anyone else. Annotated with ``local``
    (the email's local part, lower-case) and ``ambiguous`` (another of them shares it)."""
    authorised = TenantAuthorisation.objects.filter(
        agent__user=OuterRef("pk"), tenant_id=tenant_id, tenant__is_active=True
    )
    people = (
        User.objects.filter(is_active=True)
        .exclude(role=Role.PORTAL)
        .filter(Q(is_superuser=True) | Q(role=Role.ADMIN) | Exists(authorised))
    )
    same_local = (
        people.annotate(other_local=_local_part())
        .filter(other_local=OuterRef("local"))
        .exclude(pk=OuterRef("pk"))
    )
    return people.annotate(local=_local_part()).annotate(ambiguous=Exists(same_local))


def handle_of(user: Any) -> str:
    """How to mention ``user`` (annotated by ``mentionable_users``): the local part, or the full
    address where the local part is shared."""
    return str(user.email).lower() if user.ambiguous else str(user.local)


def mention_suggestions(
    *, tenant_id: int, query: str, exclude_user_id: int | None = None
) -> list[dict[str, str]]:
    """Colleagues who may see the tenant whose address starts with or name contains ``query`` (not
    ``exclude_user_id``, the writer: nobody mentions themselves); one query."""
    people = mentionable_users(tenant_id=tenant_id)
    if exclude_user_id is not None:
        people = people.exclude(pk=exclude_user_id)
    query = query.strip()
    if query:
        people = people.filter(Q(email__istartswith=query) | Q(full_name__icontains=query))
    return [
        {"handle": handle_of(user), "name": user.get_full_name(), "email": user.email}
        for user in people.order_by("full_name", "email")[:MAX_SUGGESTIONS]
    ]


def unread_mentions(*, user: User) -> list[Mention]:
    """``user``'s unread mentions on tickets they still may see, newest first; one query."""
    return list(
        Mention.objects.visible_to(user)
        .filter(mentioned=user, read_at__isnull=True)
        .select_related("ticket__tenant", "author", "interaction")
        .order_by("-created_at", "-pk")[:MAX_UNREAD]
    )
