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

import base64
import binascii
import codecs
import datetime as dt
import hashlib
import html as html_lib
import mimetypes
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.utils import getaddresses, parsedate_to_datetime
from urllib.parse import unquote

import charset_normalizer

from care.connectors.email.reply import html_to_text, visible_part
from care.core.langdetect import detect_language
from care.tickets.html import sanitise_html

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


# --- bytes and charsets ------------------------------------------------------------------------

# Labels mail clients write that Python does not know, or knows as a narrower charset than the
# sender used (browsers make the same substitutions, see the WHATWG Encoding Standard).
_CHARSET_ALIASES = {
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "iso8859-1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "iso-8859-8-i": "iso-8859-8",
    "windows-874": "cp874",
    "tis-620": "cp874",
    "x-mac-roman": "mac-roman",
    "unicode-1-1-utf-7": "utf-7",
    "utf8": "utf-8",
}
# Declared as one of these but valid UTF-8 with non-ASCII bytes: the declaration is the mistake.
_WESTERN_SINGLE_BYTE = frozenset({"cp1252", "iso8859-15", "ascii", "iso8859-1"})
_SHORT = 200
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE)


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    label = _CHARSET_ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except (LookupError, ValueError):
        return None


def _single_bytes(error: UnicodeError) -> tuple[str, int]:
    # The odd Windows-1252 byte inside otherwise valid UTF-8: the sender pasted text from two
    # sources. Each run is read in its own charset instead of guessing one for the whole part.
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    return "".join(
        chr(byte) if byte in _CP1252_GAPS else bytes([byte]).decode("cp1252") for byte in bad
    ), error.end


_CP1252_GAPS = frozenset({0x81, 0x8D, 0x8F, 0x90, 0x9D})
codecs.register_error("care-utf8-or-cp1252", _single_bytes)


def _decode_bytes(data: bytes, charset: str | None, *, html: bool = False, hint: str | None = None) -> str:
    """Text from bytes whatever the declared charset says; never raises, never drops text.

    Order: the declared charset (or an HTML meta charset), UTF-8, ``hint`` (a charset the same
    mail declares elsewhere), UTF-8 with stray Windows-1252 bytes (short or mostly UTF-8 data),
    charset-normalizer's guess, and last the declared charset with replacement characters.
    """
    if not data:
        return ""
    codec = _codec(charset)
    if codec is None and html:
        match = _META_CHARSET.search(data[:4096])
        codec = _codec(match.group(1).decode("ascii")) if match else None
    if codec in _WESTERN_SINGLE_BYTE and not data.isascii():
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    for candidate in dict.fromkeys(c for c in (codec, "utf-8", _codec(hint)) if c):
        try:
            return data.decode(candidate)
        except UnicodeDecodeError:
            pass
    lenient = data.decode("utf-8", errors="replace")
    broken = lenient.count("\ufffd")
    # charset-normalizer needs a few hundred bytes to tell charsets apart (it reads a 4-byte
    # "J\xf6rg" as UTF-16); a short run, a name or a subject, is read as UTF-8 with Windows-1252,
    # the commonest legacy charset in mail, for the bytes that are not UTF-8.
    if len(data) < _SHORT or sum(char > "\x7f" for char in lenient) - broken >= broken:
        return data.decode("utf-8", errors="care-utf8-or-cp1252")
    best = charset_normalizer.from_bytes(data).best()
    if best is not None:
        return str(best)
    return data.decode(codec or "utf-8", errors="replace")


_SURROGATES = re.compile("[\udc80-\udcff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _clean_text(text: str) -> str:
    """Printable text: no NUL (PostgreSQL refuses it) or other control characters, \\n newlines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if _SURROGATES.search(text):
        text = _unescape_8bit(text)
    return _CONTROL.sub("", text)


def _unescape_8bit(value: str, hint: str | None = None) -> str:
    """Header text the parser kept as surrogate escapes (raw 8-bit bytes), decoded properly.

    ``hint`` is a charset the mail declares elsewhere: a few raw bytes of a name are too little
    for charset-normalizer, and a Chinese mail's raw From is most likely in its body's GB2312.
    """
    if not _SURROGATES.search(value):
        return value
    return _decode_bytes(value.encode("utf-8", "surrogateescape"), None, hint=hint)


def _charset_hint(message: Message) -> str | None:
    for part in message.walk():
        try:
            charset = part.get_content_charset()
        except Exception:  # an unreadable Content-Type says nothing about charsets
            charset = None
        if _codec(charset) not in (None, "utf-8", "ascii", "cp1252"):
            return charset
    for _, value in message.raw_items():
        match = _ENCODED_WORD.search(str(value))
        if match and _codec(match.group(1)) not in (None, "utf-8", "ascii"):
            return match.group(1)
    return None


# --- headers -----------------------------------------------------------------------------------

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*?)\?=")
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


# --- body and attachments ----------------------------------------------------------------------


@dataclass
class _Segment:
    """One body part as the sender meant it: plain text, HTML, or both (an alternative)."""

    plain: str = ""
    html: str = ""


@dataclass
class _Draft:
    filename: str | None
    content_type: str
    content: bytes
    content_id: str | None
    kind: str  # "image", "attachment", "message", "report": what a generated name starts with


@dataclass
class _Body:
    segments: list[_Segment] = field(default_factory=list)
    drafts: list[_Draft] = field(default_factory=list)
    reports: list[Message] = field(default_factory=list)  # message/delivery-status parts
    returned: list[Message] = field(default_factory=list)  # enclosed or returned headers
    machine_report: bool = False  # a read receipt or spam complaint (RFC 8098, RFC 5965)

    def absorb(self, other: _Body) -> None:
        self.drafts.extend(other.drafts)
        self.reports.extend(other.reports)
        self.returned.extend(other.returned)
        self.machine_report = self.machine_report or other.machine_report

    def texts(self) -> tuple[str, str, str]:
        """The plain parts, the HTML (plain segments escaped into it when the mail has any HTML),
        and the full text (each segment's plain form, or its HTML rendered as text)."""
        segments = [segment for segment in self.segments if segment.plain.strip() or segment.html.strip()]
        plain = "\n".join(segment.plain for segment in segments if segment.plain.strip())
        html = ""
        if any(segment.html.strip() for segment in segments):
            html = "\n".join(
                segment.html if segment.html.strip() else _plain_to_html(segment.plain)
                for segment in segments
            )
        text = "\n".join(
            segment.plain if segment.plain.strip() else html_to_text(segment.html) for segment in segments
        )
        return plain, html, text.strip("\n")


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:  # a Content-Type the header parser chokes on
        return "application/octet-stream"


def _to_lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


def _base64(data: bytes) -> bytes:
    # Lenient like mail clients: ignore stray characters, stop at padding, and drop a dangling
    # sixth of a byte rather than refusing the part (the stdlib then returns it undecoded).
    data = re.sub(rb"[^A-Za-z0-9+/=]", b"", data).split(b"=", 1)[0]
    if len(data) % 4 == 1:
        data = data[:-1]
    return base64.b64decode(data + b"=" * (-len(data) % 4))


def _uudecode(data: bytes) -> bytes:
    # Some senders leave out the "begin 644 name" line, which the stdlib requires.
    out = bytearray()
    for line in data.splitlines():
        stripped = line.strip()
        if stripped.startswith(b"begin ") or not stripped:
            continue
        if stripped in (b"end", b"`"):
            break
        try:
            out += binascii.a2b_uu(stripped)
        except binascii.Error:
            length = (((stripped[0] - 32) & 63) * 4 + 5) // 3
            out += binascii.a2b_uu(stripped[:length])
    return bytes(out)


def _transfer_encoding(part: Message) -> str:
    return (_raw_header(part, "content-transfer-encoding") or "").strip().lower()


def _payload_bytes(part: Message) -> bytes:
    """The part's content, transfer encoding undone.

    7bit, 8bit and unencoded content is lines of text by definition (RFC 2045, 2.7 and 2.8): its
    line break is CRLF on the wire and whatever the mailbox used on disk, so it gets "\n", and an
    attachment has the same bytes (and SHA-256) however the mail reached us. Quoted-printable,
    base64, uuencode and binary spell out their bytes and are kept exactly.
    """
    payload = part.get_payload()
    if not isinstance(payload, str):
        return b""
    data = payload.encode("utf-8", "surrogateescape")
    encoding = _transfer_encoding(part)
    try:
        if encoding == "base64":
            return _base64(data)
        if encoding in ("x-uuencode", "uuencode", "x-uue", "uue"):
            return _uudecode(data)
        if encoding == "quoted-printable":
            return binascii.a2b_qp(data)
    except (binascii.Error, ValueError, IndexError):
        return data  # undecodable: the transfer-encoded form is better than nothing
    return data if encoding == "binary" else _to_lf(data)


def _part_text(part: Message, *, html: bool = False) -> str:
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return _clean_text(_decode_bytes(_payload_bytes(part), charset, html=html))


_HEADER_END = re.compile(rb"\r?\n\r?\n")


def _locate_raw(data: bytes, message: Message, found: dict[int, bytes], depth: int = 0) -> None:
    """Map each part (by id) to its raw body bytes, following the tree the stdlib built.

    The stdlib keeps no offsets; re-serialising an enclosed message would change its bytes (and
    break its signatures), so we split the raw bytes on the same boundaries. A subtree where our
    split and the stdlib disagree (broken MIME) is left out and serialised instead.
    """
    end = _HEADER_END.search(data)
    body = data[end.end() :] if end else b""
    found[id(message)] = body
    if depth >= _MAX_DEPTH:
        return
    payload = message.get_payload()
    if not isinstance(payload, list):
        return
    if _content_type(message).startswith("message/"):
        if len(payload) == 1 and isinstance(payload[0], Message):
            _locate_raw(body, payload[0], found, depth + 1)
        return
    boundary = message.get_boundary()
    if not boundary:
        return
    delimiter = b"--" + boundary.encode("utf-8", "surrogateescape")
    chunks: list[list[bytes]] = []
    current: list[bytes] | None = None
    for line in body.splitlines(keepends=True):
        bare = line.rstrip(b"\r\n \t")
        if bare == delimiter + b"--":
            if current is not None:
                chunks.append(current)
            current = None
            break
        if bare == delimiter:
            if current is not None:
                chunks.append(current)
            current = []
        elif current is not None:
            current.append(line)
    if current:
        chunks.append(current)
    if len(chunks) != len(payload):
        return
    for lines, child in zip(chunks, payload, strict=True):
        if lines:  # the line break before a delimiter belongs to the delimiter (RFC 2046)
            lines[-1] = lines[-1].rstrip(b"\r\n")
        if isinstance(child, Message):
            _locate_raw(b"".join(lines), child, found, depth + 1)


def _message_bytes(message: Message) -> bytes:
    try:
        return message.as_bytes(policy=_SERIALISE_POLICY)
    except Exception:  # an unserialisable enclosure: fall back to the lenient form
        return message.as_bytes(policy=policy.compat32)


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:  # a parameter the header parser chokes on
        name = None
        for header in ("content-disposition", "content-type"):
            raw = _raw_header(part, header) or ""
            match = re.search(r"(?:file)?name\*?=\s*\"?([^\";]+)", raw, re.IGNORECASE)
            if match:
                name = unquote(match.group(1).split("''", 1)[-1])
                break
    if not name:
        return None
    # A path from the sender's disk is not ours to keep (and "..\\..\\x" must not reach storage).
    return _safe_name(re.split(r"[\\/]", _clean_text(_decode_words(_unescape_8bit(str(name)))))[-1])


def _safe_name(name: str, extension: str = "") -> str | None:
    """A file name from text: one line, no path separators, NFC, at most 255 characters."""
    name = re.sub(r"[\r\n\t]+", " ", name).replace("/", "-").replace("\\", "-")
    name = re.sub(r"^[\s.]+|[\s.]+$", "", unicodedata.normalize("NFC", name))
    return f"{name[: 255 - len(extension)]}{extension}" if name else None


def _content_id(part: Message) -> str | None:
    raw = _raw_header(part, "content-id")
    if not raw:
        return None
    ids = _message_ids(raw)
    return ids[0] if ids else None


def _is_attachment(part: Message, content_type: str) -> bool:
    try:
        disposition = part.get_content_disposition()
    except Exception:
        disposition = None
    if disposition == "attachment":
        return True
    if content_type not in ("text/plain", "text/html"):
        return True
    return _filename(part) is not None


def _kind(content_type: str) -> str:
    return "image" if content_type.startswith("image/") else "attachment"


def _description(part: Message, extension: str) -> str | None:
    return _safe_name(_header_text(part, "content-description"), extension)


@dataclass
class _Walker:
    """Sorts the MIME tree into body segments and attachment drafts."""

    raw: dict[int, bytes]

    def enclosed_bytes(self, part: Message, enclosed: Message | None) -> bytes:
        raw = self.raw.get(id(part))
        if raw is not None:
            encoding = _transfer_encoding(part)
            if encoding == "base64":
                return _base64(raw)
            if encoding == "quoted-printable":
                return binascii.a2b_qp(raw)
            return raw if encoding == "binary" else _to_lf(raw)
        if enclosed is None or not (enclosed.keys() or enclosed.get_payload()):
            return b""
        return _to_lf(_message_bytes(enclosed))

    def walk(self, part: Message, body: _Body, depth: int = 0) -> None:
        content_type = _content_type(part)
        if content_type in ("message/disposition-notification", "message/feedback-report"):
            body.machine_report = True
        if content_type in ("message/delivery-status", "message/global-delivery-status"):
            body.reports.append(part)
            name = _filename(part) or _description(part, ".txt") or "delivery-status.txt"
            raw = self.raw.get(id(part))
            blocks = part.get_payload()
            if raw is None and isinstance(blocks, list):
                raw = b"\n".join(_message_bytes(block) for block in blocks if isinstance(block, Message))
            content = _to_lf(raw) if raw is not None else _payload_bytes(part)
            body.drafts.append(_Draft(name, content_type, content, None, "report"))
        elif content_type.startswith("message/") and part.is_multipart():
            self.enclose(part, content_type, body)
        elif part.is_multipart() and depth < _MAX_DEPTH:
            self.walk_multipart(part, content_type, body, depth)
        elif part.is_multipart():
            self.walk_flat(part, body)
        elif content_type.startswith("multipart/"):
            # A multipart without a usable boundary: what is there is the sender's text.
            body.segments.append(_Segment(plain=_part_text(part)))
        elif _is_attachment(part, content_type):
            self.attach(part, content_type, body)
        elif content_type == "text/html":
            body.segments.append(_Segment(html=_part_text(part, html=True)))
        else:
            body.segments.append(_Segment(plain=_part_text(part)))

    def walk_flat(self, part: Message, body: _Body) -> None:
        """Deeper than any real mail: no alternatives or related sets, just every leaf in order."""
        stack = [part]
        while stack:
            current = stack.pop()
            payload = current.get_payload()
            if isinstance(payload, list) and not _content_type(current).startswith("message/"):
                stack.extend(reversed([child for child in payload if isinstance(child, Message)]))
            else:
                self.walk(current, body, _MAX_DEPTH)

    def enclose(self, part: Message, content_type: str, body: _Body) -> None:
        """A forwarded or returned message becomes an .eml named after its subject."""
        enclosed = part.get_payload(0)
        enclosed = enclosed if isinstance(enclosed, Message) else None
        content = self.enclosed_bytes(part, enclosed)
        if content_type not in ("message/rfc822", "message/global"):
            # A read receipt's or complaint's fields, message/partial, external bodies: data.
            name = _filename(part) or _description(part, ".txt")
            body.drafts.append(_Draft(name, content_type, content, _content_id(part), "attachment"))
            return
        if enclosed is not None:
            body.returned.append(enclosed)
        subject = _header_text(enclosed, "subject") if enclosed is not None else ""
        name = _filename(part) or _safe_name(subject, ".eml") or _description(part, ".eml")
        body.drafts.append(_Draft(name, content_type, content, _content_id(part), "message"))

    def attach(self, part: Message, content_type: str, body: _Body) -> None:
        if content_type == "text/rfc822-headers":
            body.returned.append(HeaderParser(policy=_PARSER_POLICY).parsestr(_part_text(part)))
        content = _payload_bytes(part)
        body.drafts.append(
            _Draft(_filename(part), content_type, content, _content_id(part), _kind(content_type))
        )

    def walk_multipart(self, part: Message, content_type: str, body: _Body, depth: int) -> None:
        payload = part.get_payload()
        children = (
            [child for child in payload if isinstance(child, Message)] if isinstance(payload, list) else []
        )
        if content_type == "multipart/alternative":
            # Each alternative says the same thing; take the richest plain and HTML forms (the
            # last, RFC 2046) and keep every attachment any of them carries.
            chosen = _Segment()
            for child in children:
                sub = _Body()
                self.walk(child, sub, depth + 1)
                body.absorb(sub)
                plain = "\n".join(segment.plain for segment in sub.segments if segment.plain.strip())
                html = "\n".join(segment.html for segment in sub.segments if segment.html.strip())
                chosen.plain = plain or chosen.plain
                chosen.html = html or chosen.html
            body.segments.append(chosen)
            return
        for index, child in enumerate(children):
            child_type = _content_type(child)
            if (
                content_type == "multipart/related"
                and index > 0
                and child_type in ("text/plain", "text/html")
            ):
                # Only the root of a related set is the body (RFC 2387); the rest are resources.
                self.attach(child, child_type, body)
            else:
                self.walk(child, body, depth + 1)


_CID_REFERENCE = re.compile(r"""cid:([^"'\s>)]+)""", re.IGNORECASE)


def _attachments(drafts: list[_Draft], html: str) -> list[ParsedAttachment]:
    referenced = {unquote(cid).lower() for cid in _CID_REFERENCE.findall(html)}
    counters: dict[str, int] = {}
    attachments: list[ParsedAttachment] = []
    for draft in drafts:
        name = draft.filename
        if not name:
            counters[draft.kind] = counters.get(draft.kind, 0) + 1
            name = f"{'attachment' if draft.kind == 'report' else draft.kind}-{counters[draft.kind]}"
            textual = draft.content_type.startswith(("text/", "message/"))
            name += mimetypes.guess_extension(draft.content_type) or (".txt" if textual else ".bin")
        attachments.append(
            ParsedAttachment(
                filename=name,
                content_type=draft.content_type,
                content=draft.content,
                content_id=draft.content_id,
                is_inline=bool(draft.content_id and draft.content_id.lower() in referenced),
            )
        )
    return attachments


def _plain_to_html(text: str) -> str:
    return "<p>" + html_lib.escape(text).replace("\n", "<br>") + "</p>"


# --- auto-replies and bounces ------------------------------------------------------------------

# Subjects of out-of-office and other automatic replies in en, de, es, fr and nl, at the start of
# the subject (after reply prefixes) so that a customer asking about "automatic replies" is not one.
_AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(?:\[[^\]]*\]\s*)?(?:(?:re|aw|antw|sv|rv|fw|fwd|wg|tr)\s*:\s*)*"
    r"(?:out of (?:the )?office|automatic reply|auto[- ]?reply|auto[- ]?response|autoresponder"
    r"|abwesenheitsnotiz|automatische antwort|abwesend|nicht im büro"
    r"|respuesta autom[aá]tica|fuera de (?:la )?oficina"
    r"|r[ée]ponse automatique|absent(?:e)? du bureau|absence\b(?=\s*(?::|$|\())"
    r"|afwezigheidsbericht|automatisch antwoord|niet aanwezig|afwezig\b)",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"^\s*(?:undelivered mail returned to sender|undeliverable|undelivered|delivery status notification"
    r"|delivery (?:status )?failure|delivery has failed|mail delivery fail|failure notice|returned mail"
    r"|mail system error|non[- ]?delivery|warning: message .* delayed|message delivery delayed"
    r"|unzustellbar|nicht zustellbar|übermittlungsstatus|benachrichtig\w* zum übermittlungsstatus"
    r"|no se puede entregar|no entregado|non remis|non distribuable|onbestelbaar|niet afgeleverd)",
    re.IGNORECASE,
)
_DELAY = re.compile(r"\(delay\)|delayed|verzögert|retrasado|retardé|vertraagd", re.IGNORECASE)
_DAEMON = re.compile(r"^(?:mailer-daemon|postmaster|mail-daemon|mailerdaemon|bounces?)@", re.IGNORECASE)
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_SMTP_CODE = re.compile(r"\b([45])\d\d[ -]")
_BODY_MESSAGE_ID = re.compile(r"^\s*(?:>\s*)?message-id:\s*<([^<>\s]+)>", re.IGNORECASE | re.MULTILINE)


def _is_auto_reply(message: Message, subject: str, body: _Body) -> bool:
    if body.machine_report:
        return True
    auto_submitted = (_raw_header(message, "auto-submitted") or "").strip().lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return True
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder"):
        value = _raw_header(message, name)
        if value is not None and value.strip().lower() not in ("no", "false", "0"):
            return True
    if (_raw_header(message, "precedence") or "").strip().lower() in ("bulk", "junk", "list", "auto_reply"):
        return True
    suppress = {
        token.strip().lower() for token in (_raw_header(message, "x-auto-response-suppress") or "").split(",")
    }
    if suppress & {"oof", "all"}:
        return True
    return bool(_AUTO_REPLY_SUBJECT.match(subject))


def _report_fields(
    reports: list[Message],
) -> tuple[str | None, str | None, str | None, str | None, str | None]:
    """Status, action, recipient, diagnostic and original message id from message/delivery-status."""
    status = action = recipient = diagnostic = original_id = None
    for report in reports:
        blocks = report.get_payload()
        for block in blocks if isinstance(blocks, list) else []:
            if not isinstance(block, Message):
                continue
            original_id = original_id or next(
                iter(
                    _message_ids(
                        _raw_header(block, "original-message-id")
                        or _raw_header(block, "x-original-message-id")
                    )
                ),
                None,
            )
            block_status = _raw_header(block, "status")
            if block_status and status is None:
                found = _STATUS.search(block_status)
                status = found.group(1) if found else block_status.split()[0]
                action = (_raw_header(block, "action") or "").strip().lower() or None
                recipient_raw = _raw_header(block, "final-recipient") or _raw_header(
                    block, "original-recipient"
                )
                recipient = _clean_address(recipient_raw.split(";", 1)[-1]) if recipient_raw else None
                diagnostic = _header_text(block, "diagnostic-code") or None
    return status, action, recipient, diagnostic, original_id


def _bounce(message: Message, body: _Body, text: str, from_address: str, subject: str) -> BounceInfo | None:
    content_type = _content_type(message)
    try:
        report_type = str(message.get_param("report-type", "") or "").lower()
    except Exception:
        report_type = ""
    standard = bool(body.reports) or (content_type == "multipart/report" and report_type == "delivery-status")
    subject_says = bool(_BOUNCE_SUBJECT.match(subject))
    automatic = (_raw_header(message, "return-path") or "").strip() == "<>" or bool(
        _raw_header(message, "auto-submitted")
    )
    if not standard and not (subject_says and (_DAEMON.match(from_address) or not from_address or automatic)):
        return None
    status, action, recipient, diagnostic, original_id = _report_fields(body.reports)
    for returned in body.returned:
        original_id = original_id or next(iter(_message_ids(_raw_header(returned, "message-id"))), None)
    if original_id is None:
        found_id = _BODY_MESSAGE_ID.search(text)
        # Else the report's own In-Reply-To, which Gmail and others point at the returned mail.
        original_id = (
            found_id.group(1)
            if found_id
            else next(iter(_message_ids(_raw_header(message, "in-reply-to"))), None)
        )
    if status is None:
        found_status = _STATUS.search(text)
        status = found_status.group(1) if found_status else None
    if status is not None and status.startswith("2"):
        return None  # a success notice (NOTIFY=SUCCESS), not a bounce
    if status is not None:
        permanent = status.startswith("5")
    elif action is not None:
        permanent = action == "failed"
    else:
        code = _SMTP_CODE.search(text)
        permanent = code.group(1) == "5" if code else not _DELAY.search(subject)
    if recipient is None:
        failed = _raw_header(message, "x-failed-recipients")
        recipient = _clean_address(failed.split(",")[0]) if failed else None
    return BounceInfo(
        original_message_id=original_id,
        status=status,
        permanent=permanent,
        recipient=recipient,
        diagnostic=diagnostic,
    )


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
