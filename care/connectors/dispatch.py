"""Which code processes a stored inbound message: one handler per provider."""

from __future__ import annotations

from collections.abc import Callable

from care.connectors.models import InboundMessage
from care.connectors.services import inbound_process


def _handlers() -> dict[str, Callable[[InboundMessage], None]]:
    from care.connectors.email.ingest import email_apply

    return {"email": email_apply}


def process_stored(inbound_id: int) -> InboundMessage | None:
    """Process one stored message with its provider's handler (picked from the locked row)."""
    return inbound_process(inbound_id=inbound_id, handler=_handlers())
