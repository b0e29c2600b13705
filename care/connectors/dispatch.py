"""Which code processes a stored inbound message: one handler per provider."""

from __future__ import annotations

from collections.abc import Callable

from care.connectors.models import InboundMessage
from care.connectors.services import inbound_process


def _handlers() -> dict[str, Callable[[InboundMessage], None]]:
    from care.connectors.email.ingest import email_apply
    from care.connectors.phone.ingest import PROVIDERS as PHONE_PROVIDERS
    from care.connectors.phone.ingest import phone_apply
    from care.connectors.social.ingest import social_apply
    from care.connectors.social.registry import PROVIDERS as SOCIAL_PROVIDERS

    # Phone: one handler for every stored phone format (JSON events, Twilio callbacks, CDR files).
    handlers: dict[str, Callable[[InboundMessage], None]] = {"email": email_apply}
    handlers.update(dict.fromkeys(PHONE_PROVIDERS, phone_apply))
    # Social: one handler for every platform; the adapter is picked from the provider's slug.
    handlers.update(dict.fromkeys(SOCIAL_PROVIDERS, social_apply))
    return handlers


def process_stored(inbound_id: int) -> InboundMessage | None:
    """Process one stored message with its provider's handler (picked from the locked row)."""
    return inbound_process(inbound_id=inbound_id, handler=_handlers())
