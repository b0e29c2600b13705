"""What a parsed email is: the dataclasses ``parse_email`` returns, and its one error."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from email import policy

# Raw header values kept in ParsedEmail.headers, for threading, routing and loop detection.
KEPT_HEADERS = (
    *("message-id", "in-reply-to", "references", "thread-index"),
    *("return-path", "sender", "reply-to", "x-original-sender", "x-original-to", "delivered-to"),
    *("list-id", "list-unsubscribe", "auto-submitted", "precedence", "x-autoreply", "x-autorespond"),
    *("x-auto-response-suppress", "x-failed-recipients", "x-spam-flag"),
    *("content-language", "x-mailer", "user-agent"),
)
_MAX_HEADER_CHARS = 2000
_MAX_DEPTH = 40  # MIME nesting deeper than this is an attack, not a mail

_PARSER_POLICY = policy.default
# Re-serialising an enclosed message keeps its header lines as they came (no refolding).
_SERIALISE_POLICY = policy.default.clone(refold_source="none", max_line_length=0)


class EmailParseError(ValueError):
    """The input is not an email at all (nothing but whitespace)."""


@dataclass(frozen=True)
class ParsedAttachment:
    """A file of the mail. ``filename`` is never empty (``image-1.png`` when the sender gave none);
    ``is_inline`` means the HTML shows it through a ``cid:`` reference."""

    filename: str
    content_type: str
    content: bytes = field(repr=False)
    content_id: str | None = None
    is_inline: bool = False

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True)
class BounceInfo:
    """A delivery-status report about a mail we sent."""

    original_message_id: str | None
    status: str | None  # enhanced status code, e.g. "5.1.1"
    permanent: bool
    recipient: str | None = None
    diagnostic: str | None = None


@dataclass(frozen=True)
class ParsedEmail:
    """One inbound mail as Care stores it.

    Ids are without angle brackets. ``text`` is the whole plain body (the text/plain parts, or the
    HTML rendered as text when there are none); ``visible_text`` is what the customer just wrote
    (``reply.visible_part``); ``html`` is sanitised, with plain parts escaped into it when a mail
    mixes both. ``headers`` keeps the raw values of ``KEPT_HEADERS``, lower-case names.
    """

    message_id: str | None
    in_reply_to: list[str]
    references: list[str]
    from_address: str  # lower case; "" when the mail names no sender
    from_name: str
    reply_to_address: str
    reply_to_name: str
    to: list[tuple[str, str]]  # (name, address)
    cc: list[tuple[str, str]]
    subject: str
    date: dt.datetime | None
    text: str
    html: str
    visible_text: str
    attachments: list[ParsedAttachment]
    headers: dict[str, str]
    is_auto_reply: bool
    bounce: BounceInfo | None
    language: str | None
