"""Turning raw inbound mail into the fields Care stores: pure, no database, no Django models.

``parse_email(raw)`` accepts whatever a mail server hands over, including an mbox ``From `` line,
broken MIME and wrong charsets, and never raises for it: the only error is ``EmailParseError``
for input that is not an email at all (nothing but whitespace). The raw bytes are stored before
parsing (docs/architecture.md, "Store first"), so a field this module gets wrong can be parsed
again later; a mail it refused would be lost.

The stdlib ``email`` package with ``policy.default`` does the MIME work (RFC 2047 encoded words,
RFC 2231 file names, transfer encodings including uuencode). Where real mail breaks the rules we
fall back: ``charset-normalizer`` guesses a missing, wrong or unknown charset, text is decoded with
replacement characters as the very last resort (never lost), ``inscriptis`` renders HTML-only mail
as text, and ``care.tickets.html.sanitise_html`` (nh3) cleans the HTML the agent sees.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email import policy
from email.message import Message
from email.parser import BytesParser

from care.connectors.email.bounces import _bounce, _is_auto_reply
from care.connectors.email.charsets import _charset_hint
from care.connectors.email.headers import (
    _addresses,
    _date,
    _first_address,
    _header_text,
    _kept_headers,
    _message_ids,
    _raw_header,
    _raw_headers,
)
from care.connectors.email.mime import (
    _HEADER_END,
    _attachments,
    _Body,
    _locate_raw,
    _part_text,
    _Segment,
    _Walker,
)
from care.connectors.email.parsed import (
    _PARSER_POLICY,
    BounceInfo,
    EmailParseError,
    ParsedAttachment,
    ParsedEmail,
)
from care.connectors.email.reply import visible_part
from care.core.langdetect import detect_language
from care.tickets.html import sanitise_html

# --- the whole mail ----------------------------------------------------------------------------


_HEADER_LINE = re.compile(rb"^[!-9;-~]+:")
_KNOWN_HEADER = re.compile(
    rb"^(?:from|to|cc|subject|date|received|return-path|message-id|mime-version|content-type):", re.IGNORECASE
)
_MAX_JUNK_LINES = 3


def _without_mbox_line(raw: bytes) -> bytes:
    raw = raw.lstrip(b"\r\n")
    if raw.startswith(b"From ") and b"\n" in raw:
        raw = raw.split(b"\n", 1)[1]
    return raw


def _repair_headers(data: bytes) -> bytes:
    """Mend two breakages the stdlib would turn into "everything is body".

    A stray line before the headers ("---- Original email message ----") is dropped, and a
    continuation line that lost its indentation (a long header wrapped by a broken tool) is
    indented again when more header lines follow it.
    """
    end = _HEADER_END.search(data)
    head, rest = (data[: end.start()], data[end.start() :]) if end else (data, b"")
    lines = head.split(b"\n")
    start = next((i for i, line in enumerate(lines[: _MAX_JUNK_LINES + 1]) if _HEADER_LINE.match(line)), 0)
    known = sum(bool(_KNOWN_HEADER.match(line)) for line in lines[start:])
    lines = lines[start:] if known >= 2 else lines  # junk above real headers, not a bodiless text
    last_header = max((i for i, line in enumerate(lines) if _HEADER_LINE.match(line)), default=0)
    repaired = [
        b" " + line
        if 0 < i < last_header and line.strip() and not _HEADER_LINE.match(line) and line[:1] not in b" \t"
        else line
        for i, line in enumerate(lines)
    ]
    return b"\n".join(repaired) + rest


def parse_email(raw: bytes, *, language_candidates: Sequence[str] | None = None) -> ParsedEmail:
    """Parse one raw message; see the module docstring for what is tolerated.

    ``language_candidates`` (a tenant's languages) narrows the language detection.
    Raises ``EmailParseError`` only when ``raw`` holds nothing but whitespace.
    """
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise EmailParseError(f"expected bytes, got {type(raw).__name__}")
    data = _without_mbox_line(bytes(raw))
    if not data.strip():
        raise EmailParseError("the input is empty: not an email")
    data = _repair_headers(data)
    parser = BytesParser(policy=_PARSER_POLICY)
    try:
        message = parser.parsebytes(data)
        raw_bodies: dict[int, bytes] = {}
        _locate_raw(data, message, raw_bodies)
        body = _Body()
        _Walker(raw_bodies).walk(message, body)
        return _assemble(message, body, language_candidates)
    except RecursionError:
        # Nesting deeper than Python's stack (the stdlib parses MIME and header syntax
        # recursively) is a crafted mail: keep its headers and its body as text, read with the
        # compat32 policy, whose header handling is plain string splitting.
        flat = BytesParser(policy=policy.compat32).parsebytes(data, headersonly=True)
        return _assemble(flat, _Body(segments=[_Segment(plain=_part_text(flat))]), language_candidates)


def _assemble(message: Message, body: _Body, language_candidates: Sequence[str] | None) -> ParsedEmail:
    plain, html, text = body.texts()
    hint = _charset_hint(message)
    reply_to_name, reply_to_address = _first_address(_addresses(message, "reply-to", hint))
    # Without From, the best sender we have is Sender, then Reply-To (never the envelope's
    # Return-Path, which names bounce handlers).
    from_name, from_address = _first_address(
        _addresses(message, "from", hint)
        or _addresses(message, "sender", hint)
        or _addresses(message, "reply-to", hint)
    )
    subject = _header_text(message, "subject", hint)
    visible = visible_part(plain, "" if plain.strip() else html, sender_name=from_name)
    return ParsedEmail(
        message_id=next(iter(_message_ids(_raw_header(message, "message-id"))), None),
        in_reply_to=_message_ids(" ".join(_raw_headers(message, "in-reply-to"))),
        references=_message_ids(" ".join(_raw_headers(message, "references"))),
        from_address=from_address,
        from_name=from_name,
        reply_to_address=reply_to_address,
        reply_to_name=reply_to_name,
        to=_addresses(message, "to", hint),
        cc=_addresses(message, "cc", hint),
        subject=subject,
        date=_date(message),
        text=text,
        html=sanitise_html(html),
        visible_text=visible,
        attachments=_attachments(body.drafts, html),
        headers=_kept_headers(message),
        is_auto_reply=_is_auto_reply(message, subject, body),
        bounce=_bounce(message, body, text, from_address, subject),
        language=detect_language(visible or text, language_candidates),
    )


__all__ = ["BounceInfo", "EmailParseError", "ParsedAttachment", "ParsedEmail", "parse_email"]
