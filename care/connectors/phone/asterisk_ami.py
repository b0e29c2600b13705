"""Asterisk Manager Interface (AMI) text streams as ``AmiMessage`` values.

AMI speaks in messages of ``Key: Value`` lines separated by a blank line (CRLF on the wire, LF in
saved captures; both are read). The first line of a message says what it is: ``Event: <name>``,
``Response: <status>`` or, in a capture that includes the client's side, ``Action: <name>``. A
connection opens with a banner line ("Asterisk Call Manager/1.3"), which is skipped.

This module only parses; it maps nothing to ``CallEvent`` yet, because AMI events carry no time of
their own (except CEL's EventTime) and a call is spread over several channels (Newchannel, Dial,
Bridge, Hangup), so turning them into call events needs per-call state that belongs to the phone
pipeline. Command output of old ``Response: Follows`` replies (lines without a colon) is refused.
A capture gap marker ("[218 bytes missing in capture file]", as Wireshark writes) ends the message
it interrupts and is recorded on the next one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from django.utils.translation import gettext as _

from care.calls.events import ParseError

MessageKind = Literal["event", "response", "action"]
_KINDS: dict[str, MessageKind] = {"event": "event", "response": "response", "action": "action"}
_BANNER = re.compile(r"Asterisk Call Manager/\S+")
# Network captures (Wireshark's "follow stream") mark lost TCP segments with this prefix; the
# message after it is whole, the bytes before it are gone.
_GAP = re.compile(r"\[([0-9]+) bytes missing in capture file\]")


@dataclass(frozen=True)
class AmiMessage:
    """One AMI message. ``headers`` holds the first value of each key; ``fields`` every line in order.

    ``line`` is the line number of its first line in the stream; ``missing_bytes_before`` is the
    size of a capture gap marked just before it (0 if none).
    """

    kind: MessageKind
    name: str
    headers: dict[str, str]
    fields: tuple[tuple[str, str], ...]
    line: int
    missing_bytes_before: int = 0

    def get(self, key: str, default: str = "") -> str:
        """The value of ``key``, matched without regard to case (AMI spells CommandID/CommandId)."""
        if key in self.headers:
            return self.headers[key]
        folded = key.casefold()
        return next((value for name, value in self.fields if name.casefold() == folded), default)


def _message(lines: list[tuple[int, str]], missing: int) -> AmiMessage:
    fields: list[tuple[str, str]] = []
    for number, text in lines:
        key, colon, value = text.partition(":")
        if not colon or not key.strip():
            raise ParseError(
                _("Line %(line)d is not an AMI 'Key: Value' line: %(text)r") % {"line": number, "text": text}
            )
        fields.append((key.strip(), value.strip()))
    first_key, name = fields[0]
    kind = _KINDS.get(first_key.casefold())
    if kind is None:
        raise ParseError(
            _("Line %(line)d: an AMI message must begin with Event, Response or Action, not %(key)r.")
            % {"line": lines[0][0], "key": first_key}
        )
    headers: dict[str, str] = {}
    for key, value in fields:
        headers.setdefault(key, value)
    return AmiMessage(
        kind=kind,
        name=name,
        headers=headers,
        fields=tuple(fields),
        line=lines[0][0],
        missing_bytes_before=missing,
    )


def parse_stream(text: str) -> list[AmiMessage]:
    """Every message in a captured AMI stream, in order. ``ParseError`` names the first bad line."""
    messages: list[AmiMessage] = []
    block: list[tuple[int, str]] = []
    missing = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            if block:
                messages.append(_message(block, missing))
                block, missing = [], 0
            continue
        if not block and not messages and _BANNER.fullmatch(line.strip()):
            continue
        gap = _GAP.match(line)
        if gap:
            if block:  # the rest of this message was lost: keep what arrived
                messages.append(_message(block, missing))
                block = []
            missing = int(gap.group(1))
            line = line[gap.end() :]
            if not line.strip():
                continue
        block.append((number, line))
    if block:
        messages.append(_message(block, missing))
    return messages


def events(messages: Iterable[AmiMessage], name: str | None = None) -> list[AmiMessage]:
    """The ``Event`` messages, optionally only those called ``name`` (case-insensitive)."""
    wanted = name.casefold() if name is not None else None
    return [
        message
        for message in messages
        if message.kind == "event" and (wanted is None or message.name.casefold() == wanted)
    ]
