"""The ``mention.added`` live event (docs/realtime.md): sent to the mentioned agent's own stream."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from care.realtime.publish import publish_on_commit
from care.realtime.schema import timestamp
from care.realtime.streams import agent_stream
from care.tickets.live import PREVIEW_LENGTH, ticket_ref, user_person

if TYPE_CHECKING:
    from care.accounts.models import User
    from care.mentions.models import Mention


def mention_data(mention: Mention, author: User | None) -> dict[str, Any]:
    return {
        "mention": {
            "id": mention.pk,
            "ticket": ticket_ref(mention.ticket),
            "author": user_person(author),
            "excerpt": mention.interaction.body_text[:PREVIEW_LENGTH],
            "created_at": timestamp(mention.created_at),
        }
    }


def publish_mention_added(*, mention: Mention, agent_id: int, author: User | None) -> None:
    publish_on_commit(
        event_type="mention.added",
        tenant_id=mention.tenant_id,
        data=mention_data(mention, author),
        streams=[agent_stream(agent_id)],
    )
