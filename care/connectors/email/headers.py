"""Reading headers of real mail: encoded words, broken addresses, Message-IDs, dates."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from care.connectors.email.charsets import _ENCODED_WORD, _clean_text, _decode_bytes, _unescape_8bit
from care.connectors.email.parsed import _MAX_HEADER_CHARS, KEPT_HEADERS

# --- headers -----------------------------------------------------------------------------------

_FOLD = re.compile(r"\r?\n(?=[ \t])")


def _decode_word_bytes(encoding: str, payload: str) -> bytes | None:
    data = payload.encode("utf-8", "surrogateescape")
    try:
        if encoding in "bB":
            data = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
            return base64.b64decode(data + b"=" * (-len(data) % 4))
        return binascii.a2b_qp(data, header=True)
    except (binascii.Error, ValueError):
        return None


def _decode_words(value: str) -> str:
    """RFC 2047 encoded words, leniently: inside words too, and with unknown charsets.

    Adjacent words in one charset are joined before decoding, because senders split multi-byte
    characters across them.
    """
    if "=?" not in value:
        return value
    out: list[str] = []
    pending: tuple[str | None, bytes] | None = None
    position = 0

    def flush() -> None:
        nonlocal pending
        if pending is not None:
            out.append(_decode_bytes(pending[1], pending[0]))
            pending = None

    for match in _ENCODED_WORD.finditer(value):
        between = value[position : match.start()]
        if between and not (pending is not None and between.isspace()):
            flush()
            out.append(between)
        charset = match.group(1).split("*", 1)[0]
        decoded = _decode_word_bytes(match.group(2), match.group(3))
        if decoded is None:
            flush()
            out.append(match.group(0))
        elif pending is not None and pending[0] == charset.lower():
            pending = (pending[0], pending[1] + decoded)
        else:
            flush()
            pending = (charset.lower(), decoded)
        position = match.end()
    flush()
    out.append(value[position:])
    return "".join(out)


def _raw_headers(message: Message, name: str) -> list[str]:
    values: list[str] = []
    for key, value in message.raw_items():
        if key.lower() == name:
            values.append(_FOLD.sub("", str(value)).strip())
    return values


def _raw_header(message: Message, name: str) -> str | None:
    values = _raw_headers(message, name)
    return values[0] if values else None


def _header_text(message: Message, name: str, hint: str | None = None) -> str:
    raw = _raw_header(message, name)
    if raw is None:
        return ""
    return " ".join(_clean_text(_decode_words(_unescape_8bit(raw, hint))).split())


_COMMENT = re.compile(r"\s*\([^()]*\)")


def _clean_name(name: str, raw: str, hint: str | None) -> str:
    # "MAILER-DAEMON (Mail Delivery System) <x@y>": the phrase is the name, the comment is not
    # (unless the whole name was quoted, "Smith (Sales)").
    if "(" in name and f'"{name}"' not in raw:
        name = _COMMENT.sub("", name).strip() or name
    name = " ".join(_clean_text(_decode_words(_unescape_8bit(name, hint))).split())
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "\"'":
        name = name[1:-1].strip()
    return name


def _clean_address(address: str, hint: str | None = None) -> str:
    address = _clean_text(_decode_words(_unescape_8bit(address, hint)))
    return address.strip().strip("<>").strip().lower()


def _addresses(message: Message, name: str, hint: str | None = None) -> list[tuple[str, str]]:
    """(display name, lower-case address) pairs of an address header, however broken.

    ``getaddresses`` on the raw value comes first: it keeps a name given as a comment
    ("MAILER-DAEMON@x (Mail Delivery System)"), accepts dots in unquoted names and lets us join
    encoded words as RFC 2047 says, where the header registry gives up on all three. The registry
    is the second opinion when that finds no address.
    """
    raws = _raw_headers(message, name)
    if not raws:
        return []
    joined = " ".join(raws)
    try:
        found = getaddresses(raws)
    except RecursionError:  # comments nested thousands deep: take what looks like an address
        found = [("", address) for address in _BARE_ADDRESS.findall(joined)]
    pairs = [
        (_clean_name(display, joined, hint), _clean_address(address, hint)) for display, address in found
    ]
    pairs = [(display, address) for display, address in pairs if display or address]
    if any("@" in address for _, address in pairs):
        return pairs
    structured: list[tuple[str, str]] = []
    try:
        for header in message.get_all(name) or []:
            structured += [
                (_clean_name(address.display_name, joined, hint), _clean_address(address.addr_spec, hint))
                for address in getattr(header, "addresses", ())
            ]
    except Exception:  # the registry chokes on some real headers; the plain parse stands
        structured = []
    if any("@" in address for _, address in structured):
        return structured
    return pairs or structured


_BARE_ADDRESS = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")


def _first_address(pairs: list[tuple[str, str]]) -> tuple[str, str]:
    for pair in pairs:
        if "@" in pair[1]:
            return pair
    return pairs[0] if pairs else ("", "")


_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")


def _message_ids(value: str | None) -> list[str]:
    if not value:
        return []
    found = _MESSAGE_ID.findall(value) or [
        token.strip("<>,;\"'") for token in value.split() if token.strip("<>,;\"'")
    ]
    return list(dict.fromkeys(_clean_text(_unescape_8bit(found_id)) for found_id in found))


def _date(message: Message) -> dt.datetime | None:
    raw = _raw_header(message, "date")
    if not raw:
        return None
    try:
        parsed = parsedate_to_datetime(_unescape_8bit(raw))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:  # "-0000": the sender did not know its zone; RFC 5322 says UTC
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def _kept_headers(message: Message) -> dict[str, str]:
    kept: dict[str, str] = {}
    for name in KEPT_HEADERS:
        raw = _raw_header(message, name)
        if raw is not None:
            kept[name] = _clean_text(_unescape_8bit(raw))[:_MAX_HEADER_CHARS]
    return kept
