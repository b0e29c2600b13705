"""``manage.py ingest_email``: feed raw email into Care from files, mbox, maildir or a mail-server pipe.

Each message is stored raw first, then processed in this process so that the result can be printed.
With ``--json`` each message gives one JSON line (the contract in docs/email.md). The exit code is
non-zero only when a message failed (it stays stored, listed as failed in the admin).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from care.connectors.dispatch import process_stored
from care.connectors.email.ingest import email_receive, mailbox_for, summary_of
from care.connectors.email.parse import EmailParseError, parse_email
from care.connectors.email.sources import FORMATS, SourceError, read_messages
from care.connectors.models import InboundMessage, InboundSource, InboundStatus, Mailbox


class Command(BaseCommand):
    help = "Ingest raw email messages (.eml files, mbox files, maildir folders, or - for standard input)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "paths", nargs="+", help="Files or folders to read; - reads one message from stdin."
        )
        parser.add_argument(
            "--mailbox",
            help="Address of the mailbox the mail was sent to. Default: found by the message's recipients, "
            "else the oldest active mailbox.",
        )
        parser.add_argument("--format", choices=FORMATS, default="auto", help="How to read the paths.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object per message.")

    def handle(self, *args: Any, **options: Any) -> None:
        fixed = self._mailbox(options["mailbox"])
        failed = 0
        for path in options["paths"]:
            try:
                for label, raw in read_messages(path, options["format"]):
                    failed += self._ingest(label, raw, fixed, as_json=options["json"])
            except SourceError as exc:
                raise CommandError(str(exc)) from exc
        if failed:
            raise CommandError(
                f"{failed} message(s) failed; they are stored and listed as failed in the admin."
            )

    def _mailbox(self, address: str | None) -> Mailbox | None:
        if address is None:
            if not Mailbox.objects.filter(is_active=True).exists():
                raise CommandError(
                    "No active mailbox exists: create one in the admin (Connectors > Mailboxes)."
                )
            return None
        mailbox = Mailbox.objects.select_related("tenant").filter(address=address.lower()).first()
        if mailbox is None:
            raise CommandError(f"No mailbox with the address {address}.")
        return mailbox

    def _ingest(self, label: str, raw: bytes, fixed: Mailbox | None, *, as_json: bool) -> int:
        mailbox = fixed or mailbox_for(raw)
        message, created = email_receive(
            mailbox=mailbox, raw=raw, source=InboundSource.CLI, source_ref=label, process=False
        )
        retry = (
            not created and message.status == InboundStatus.FAILED
        )  # feeding a failed message again retries it
        if created or retry:
            message = process_stored(message.pk) or message
        row = _result(label, message, duplicate=not (created or retry))
        if as_json:
            self.stdout.write(json.dumps(row, ensure_ascii=False))
        else:
            detail = row["error"] or row["ticket"] or ""
            self.stdout.write(f"{label}: {row['status']} {detail} {row.get('subject') or ''}".rstrip())
        return 1 if row["status"] == "failed" else 0


def _result(label: str, message: InboundMessage, *, duplicate: bool) -> dict[str, Any]:
    row: dict[str, Any] = {
        "file": label,
        "status": "",
        "ticket": None,
        "message_id": message.external_id or None,
        "from": {"address": None, "name": None},
        "subject": None,
        "body_text": None,
        "full_text": None,
        "attachments": [],
        "language": None,
        "auto_reply": None,
        "error": None,
    }
    row.update({key: value for key, value in (message.summary or {}).items() if key in row})
    if message.status == InboundStatus.FAILED:
        row["status"], row["error"] = "failed", message.error
        row.update(_parsed_fields(bytes(message.raw)))
    elif duplicate:
        row["status"] = "duplicate"
    row["file"] = label
    return row


def _parsed_fields(raw: bytes) -> dict[str, Any]:
    """What the parser reads from a message whose processing failed, so the line still says what it was."""
    try:
        return summary_of(parse_email(raw))
    except EmailParseError:
        return {}
