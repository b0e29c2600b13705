"""Decoding bytes whose charset is missing, wrong or unknown, without ever losing text."""

from __future__ import annotations

import codecs
import re
from email.message import Message

import charset_normalizer

# An RFC 2047 encoded word: =?charset?B|Q?payload?=
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*?)\?=")


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
