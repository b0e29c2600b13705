"""The @mention syntax, kept in one place (docs/composer.md, "Mentions").

A handle is ``@`` followed by the local part of a colleague's email address (``@alice`` for
alice@care.test), case-insensitive. Where two colleagues who may see the ticket's tenant share the
local part (alice@provider.test and alice@client.test), the local part names nobody and the full
address is needed (``@alice@client.test``); the suggestions insert that form then. A handle must not
follow a letter, digit or ``.@+-``, so an email address written in a note (greta@example.com) is not a
mention; a dot right after a handle ends the sentence, not the handle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HANDLE = re.compile(
    r"(?<![\w.@+\-])@(?P<local>[A-Za-z0-9_%+\-](?:[A-Za-z0-9._%+\-]*[A-Za-z0-9_%+\-])?)"
    r"(?:@(?P<domain>[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+))?"
)
# A note naming more colleagues than this is a broadcast; the rest are not notified.
MAX_HANDLES = 20


@dataclass(frozen=True)
class Handles:
    locals: frozenset[str]  # lower-case local parts: @alice
    addresses: frozenset[str]  # lower-case full addresses: @alice@client.test


def parse(text: str) -> Handles:
    """The handles written in ``text`` (at most MAX_HANDLES, in order of appearance)."""
    local_parts: list[str] = []
    addresses: list[str] = []
    seen: set[str] = set()
    for match in HANDLE.finditer(text):
        local = match["local"].lower()
        key = f"{local}@{match['domain'].lower()}" if match["domain"] else local
        if key in seen:
            continue
        if len(seen) >= MAX_HANDLES:
            break
        seen.add(key)
        (addresses if match["domain"] else local_parts).append(key)
    return Handles(frozenset(local_parts), frozenset(addresses))


def local_part(email: str) -> str:
    return email.rsplit("@", 1)[0].lower()
