"""Walking the MIME tree: text and HTML bodies, attachments, inline images, attached messages."""

from __future__ import annotations

import base64
import binascii
import html as html_lib
import mimetypes
import re
import unicodedata
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from email.parser import HeaderParser
from urllib.parse import unquote

from care.connectors.email.charsets import _clean_text, _decode_bytes, _unescape_8bit
from care.connectors.email.headers import _decode_words, _header_text, _message_ids, _raw_header
from care.connectors.email.parsed import _MAX_DEPTH, _PARSER_POLICY, _SERIALISE_POLICY, ParsedAttachment
from care.connectors.email.reply import html_to_text

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


def _literal_param(part: Message, header: str, key: str) -> str | None:
    """A parameter as written, only its double quotes removed: the stdlib's unquoting also strips
    angle brackets, so a file called "<>" would lose its whole name (and "<a>" its brackets)."""
    value = part.get_param(key, None, header=header, unquote=False)
    if value is None or isinstance(value, tuple):  # RFC 2231 values are never angle-quoted
        return None
    text = str(value)
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return text


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
        if name is not None:
            literal = _literal_param(part, "content-disposition", "filename")
            if literal is None and part.get_param("filename", None, header="content-disposition") is None:
                literal = _literal_param(part, "content-type", "name")
            if literal and literal.startswith("<") and literal.endswith(">"):
                name = literal
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
