"""``manage.py poll_mailboxes``: fetch new mail from the IMAP mailboxes now, in the foreground.

What Celery beat does every minute (``care.connectors.email.imap_tasks``), for use without a
worker or to check a mailbox's settings: each mailbox is polled until nothing new is waiting, and
what was stored is processed in this process (``--no-process`` leaves that to the workers). One line
per mailbox; the exit code is non-zero when a mailbox could not be polled or a message failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import QuerySet

from care.connectors.dispatch import process_stored
from care.connectors.email.imap import mailbox_poll
from care.connectors.models import InboundStatus, Mailbox


@dataclass
class _Totals:
    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    processed: int = 0
    busy: bool = False
    errors: list[str] = field(default_factory=list)


class Command(BaseCommand):
    help = "Fetch new mail from the active IMAP mailboxes now and process it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--mailbox", metavar="ADDRESS", help="Poll only the mailbox with this address.")
        parser.add_argument(
            "--no-process",
            action="store_true",
            help="Only fetch and store; processing is enqueued for the Celery workers.",
        )
        parser.add_argument(
            "--batch", type=int, default=200, help="Messages fetched per round (default 200)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch"] < 1:
            raise CommandError("--batch must be at least 1.")
        mailboxes = list(self._mailboxes(options["mailbox"]))
        if not mailboxes:
            self.stdout.write("No active IMAP mailboxes.")
            return
        failures: list[str] = []
        for mailbox in mailboxes:
            totals = self._poll(mailbox, batch=options["batch"], process_here=not options["no_process"])
            self.stdout.write(self._line(mailbox, totals, processed=not options["no_process"]))
            failures += [f"{mailbox.address}: {error}" for error in totals.errors]
        if failures:
            raise CommandError("\n".join(failures))

    def _mailboxes(self, address: str | None) -> QuerySet[Mailbox]:
        imap = (
            Mailbox.objects.select_related("tenant")
            .filter(delivery=Mailbox.Delivery.IMAP)
            .order_by("address")
        )
        if address is None:
            return imap.filter(is_active=True)
        mailbox = Mailbox.objects.filter(address=address.lower()).first()
        if mailbox is None:
            raise CommandError(f"No mailbox with the address {address}.")
        if mailbox.delivery != Mailbox.Delivery.IMAP:
            raise CommandError(f"{mailbox.address} does not receive its mail by IMAP.")
        return imap.filter(pk=mailbox.pk)  # named explicitly: polled even when inactive

    def _poll(self, mailbox: Mailbox, *, batch: int, process_here: bool) -> _Totals:
        """Poll until nothing new is waiting (or an error); process what was stored if asked to."""
        totals = _Totals()
        while True:
            # Processed here, or else enqueued for the workers by the poll itself.
            result = mailbox_poll(mailbox=mailbox, batch=batch, process=not process_here)
            totals.fetched += result.fetched
            totals.stored += result.stored
            totals.duplicates += result.duplicates
            totals.busy = totals.busy or result.busy
            if process_here:
                for inbound_id in result.stored_ids:
                    message = process_stored(inbound_id)
                    if message is not None and message.status != InboundStatus.FAILED:
                        totals.processed += 1
                    else:
                        error = message.error.splitlines()[0] if message and message.error else "unknown"
                        totals.errors.append(f"message {inbound_id} failed: {error}")
            if result.error:
                totals.errors.append(result.error)
            if result.error or result.busy or not result.more:
                return totals

    def _line(self, mailbox: Mailbox, totals: _Totals, *, processed: bool) -> str:
        parts = [
            f"fetched {totals.fetched}",
            f"stored {totals.stored}",
            f"duplicates {totals.duplicates}",
            *([f"processed {totals.processed}"] if processed else []),
            f"errors {len(totals.errors)}",
        ]
        line = f"{mailbox.address}: {', '.join(parts)}"
        if totals.busy:
            line += " (another poll of this mailbox was running; it fetches the rest)"
        return line
