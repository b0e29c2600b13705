"""Reading raw messages from files: single messages (.eml, .box), mbox files, maildir folders, stdin."""

from __future__ import annotations

import mailbox
import sys
from collections.abc import Iterator
from pathlib import Path

FORMATS = ("auto", "eml", "mbox", "maildir")


class SourceError(Exception):
    """A path that cannot be read as mail; the message says why."""


def read_messages(path: str, fmt: str = "auto") -> Iterator[tuple[str, bytes]]:
    """Yield (label, raw bytes) for every message at ``path`` ("-" is standard input).

    ``auto``: a folder with cur/ and new/ is a maildir, a ``.mbox`` file an mbox, anything else
    one message (a leading mbox "From " line is fine: the parser skips it).
    """
    if path == "-":
        yield "-", sys.stdin.buffer.read()
        return
    location = Path(path)
    if not location.exists():
        raise SourceError(f"{path}: no such file or folder")
    kind = fmt if fmt != "auto" else _guess(location)
    if kind == "maildir":
        if not (location / "cur").is_dir() or not (location / "new").is_dir():
            raise SourceError(f"{path}: not a maildir (it needs cur/ and new/ folders)")
        folder = mailbox.Maildir(location, factory=None, create=False)
        for key in sorted(folder.keys()):
            yield f"{path}#{key}", folder.get_bytes(key)
    elif kind == "mbox":
        if not location.is_file():
            raise SourceError(f"{path}: not a file")
        box = mailbox.mbox(location, factory=None, create=False)
        for index, key in enumerate(box.keys(), start=1):
            yield f"{path}#{index}", box.get_bytes(key)
    else:
        if not location.is_file():
            raise SourceError(f"{path}: a folder that is not a maildir")
        yield path, location.read_bytes()


def _guess(location: Path) -> str:
    if location.is_dir():
        return "maildir"
    if location.suffix.lower() == ".mbox":
        return "mbox"
    return "eml"
