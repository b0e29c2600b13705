"""Writing mentions: recording the colleagues a note names, and marking mentions read."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Q
from django.utils import timezone

from care.accounts.models import User
from care.mentions import handles
from care.mentions.live import publish_mention_added
from care.mentions.models import Mention
from care.mentions.selectors import mentionable_users
from care.tickets.models import Direction, Interaction


def mentions_record(*, interaction: Interaction) -> list[Mention]:
    """Record a Mention for each colleague the note names (handles.py) who may see the ticket's
    tenant, and tell each of them live after the commit. Call it in the note's transaction.

    Handles naming nobody, someone outside the tenant, a portal user, an ambiguous local part or
    the note's author are left as text: no mention, no error. Two queries whatever the number of
    handles (the people, the rows), none for a note without handles.
    """
    if interaction.direction != Direction.NOTE:
        return []
    written = handles.parse(interaction.body_text)
    if not written.locals and not written.addresses:
        return []
    people = (
        mentionable_users(tenant_id=interaction.tenant_id)
        .filter(Q(local__in=sorted(written.locals)) | Q(email__in=sorted(written.addresses)))
        .select_related("agent")
        .order_by("pk")
    )
    named = [
        person for person in people if person.pk != interaction.author_user_id and _is_named(person, written)
    ]
    if not named:
        return []
    ticket = interaction.ticket
    mentions = Mention.objects.bulk_create(
        Mention(
            tenant_id=interaction.tenant_id,
            interaction=interaction,
            ticket=ticket,
            mentioned=person,
            author_id=interaction.author_user_id,
        )
        for person in named
    )
    for mention, person in zip(mentions, named, strict=True):
        agent = getattr(person, "agent", None)
        if agent is not None:
            publish_mention_added(mention=mention, agent_id=agent.pk, author=interaction.author_user)
    return mentions


def _is_named(person: Any, written: handles.Handles) -> bool:
    """By the full address, or by a local part only this person has (``mentionable_users``)."""
    if person.email.lower() in written.addresses:
        return True
    return bool(person.local in written.locals and not person.ambiguous)


def mentions_mark_read(*, user: User, mention_ids: Iterable[int] | None = None) -> int:
    """Mark ``user``'s own unread mentions read (all of them, or those of ``mention_ids``); others'
    mentions and those of tenants the user no longer sees are left alone. Returns how many."""
    unread = Mention.objects.visible_to(user).filter(mentioned=user, read_at__isnull=True)
    if mention_ids is not None:
        unread = unread.filter(pk__in=list(mention_ids))
    return int(unread.update(read_at=timezone.now()))
