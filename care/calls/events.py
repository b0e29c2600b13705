"""The one shape every phone adapter produces: ``CallEvent``.

A provider reports a call as a series of events (offered, answered, ended, ...). Adapters map
their own vocabulary onto ``CallEventKind`` so that the pipeline downstream knows one language.
Events may be delivered twice or out of order; ``CallEvent.event_id`` is the idempotency key that
lets the pipeline recognise a repeat.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

import phonenumbers
from django.utils.translation import gettext as _

_DIGITS = re.compile(r"[0-9]+")


class ParseError(ValueError):
    """Input from a provider that cannot be turned into call events; ``str()`` is user-facing."""


class CallEventKind(StrEnum):
    OFFERED = "offered"
    QUEUED = "queued"
    RINGING = "ringing"
    ANSWERED = "answered"
    HELD = "held"
    RESUMED = "resumed"
    TRANSFERRED = "transferred"
    ENDED = "ended"
    ABANDONED = "abandoned"
    REJECTED = "rejected"
    VOICEMAIL = "voicemail"


Direction = Literal["inbound", "outbound"]


@dataclass(frozen=True)
class CallEvent:
    """One thing that happened to one call, as reported by ``provider``.

    ``occurred_at`` is an aware UTC datetime (enforced). ``caller``/``dialled`` are E.164 or "";
    the provider's spelling is kept in ``caller_raw``/``dialled_raw``.
    """

    provider: str
    call_id: str
    kind: CallEventKind
    occurred_at: datetime
    sequence: int | None = None
    caller: str = ""
    caller_raw: str = ""
    dialled: str = ""
    dialled_raw: str = ""
    agent_ref: str = ""
    talk_seconds: int | None = None
    hold_seconds: int | None = None
    wait_seconds: int | None = None
    # After-call work the telephone system measured (the agent not ready after the call ended).
    wrapup_seconds: int | None = None
    recording_url: str = ""
    ivr_digits: str = ""
    direction: Direction = "inbound"
    # Left out of the hash (a dict cannot be hashed) but compared, so events stay usable in sets.
    extra: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None or self.occurred_at.utcoffset() is None:
            raise ValueError("CallEvent.occurred_at must be timezone-aware")
        if self.occurred_at.utcoffset() != UTC.utcoffset(None):
            # Normalise to UTC so that equal instants compare and hash (event_id) the same.
            object.__setattr__(self, "occurred_at", self.occurred_at.astimezone(UTC))
        if not self.call_id:
            raise ValueError("CallEvent.call_id must not be empty")

    @property
    def event_id(self) -> str:
        """Stable idempotency key: the same event delivered twice gets the same key.

        Uses the provider's sequence number when it has one (two callbacks of one call can share a
        second), else the event time to the microsecond.
        """
        order = f"seq:{self.sequence}" if self.sequence is not None else self.occurred_at.isoformat()
        material = "\x1f".join((self.provider, self.call_id, str(self.kind), order))
        digest = hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]
        return f"{self.provider}:{digest}"


def normalise_number(raw: str, *, default_region: str | None = None) -> str:
    """``raw`` as E.164 if it is a possible phone number, else "" (extensions, "anonymous", SIP).

    ``default_region`` (ISO 3166 alpha-2, e.g. "US") is needed for numbers in national format.
    Possibility (length) rather than validity is checked: PBX data is often pseudonymised or uses
    number ranges the library does not know, and a plausible number is still worth matching on.
    """
    text = raw.strip()
    if not text or not any(ch.isdigit() for ch in text):
        return ""
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return ""
    if not phonenumbers.is_possible_number(number):
        return ""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_int(value: str, *, name: str) -> int:
    """A non-negative integer field; ``ParseError`` naming the field otherwise."""
    text = value.strip()
    if not _DIGITS.fullmatch(text):
        raise ParseError(
            _("The field %(name)s must be a whole number, not %(value)r.") % {"name": name, "value": value}
        )
    return int(text)
