"""Fetching mail from IMAP accounts: mailboxes whose mail arrives by ``delivery == "imap"``.

One poll of one mailbox connects, selects its folder and takes the messages whose UID is above the
last one stored, in UID order. For each message, in this order:

1. store it (``email_receive``, idempotent on the bytes' SHA-256) and advance the mailbox's
   ``imap_last_uid`` with a compare-and-swap ``update()``, both in one transaction;
2. only once that has committed, tell the server: flag it ``\\Seen`` (and ``$CareProcessed`` where
   the folder takes keywords), then move it to the processed folder if the mailbox names one.

So nothing is lost at any step: a message whose storing fails is neither acknowledged nor passed
(the poll stops there and records the error), and a crash between storing and acknowledging only
means the message is fetched again later, which storing recognises by its bytes.

Two polls of one mailbox never interleave: each holds a PostgreSQL advisory lock on the mailbox
for its whole run (``pg_try_advisory_lock``, not waiting: the second poll returns at once with
``busy``). We chose it over a cache key with a timeout because PostgreSQL releases it by itself when
the holder's connection ends (a killed worker blocks nothing), and no timeout has to outlast the
slowest poll; over ``select_for_update`` on the mailbox row because that holds a transaction open
across network reads, and each message must commit on its own before the server is told. The
compare-and-swap on ``imap_last_uid`` stays as the guard of correctness if the lock is ever lost
(a database connection that drops mid-poll).
"""

from __future__ import annotations

import imaplib
import logging
import re
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from care.connectors.email.ingest import email_receive
from care.connectors.models import InboundMessage, InboundSource, Mailbox

logger = logging.getLogger(__name__)

# Seconds to wait for the connection and for each answer of the server: a hung server ends the
# poll with an error instead of holding a worker.
TIMEOUT = 30.0
# Messages per FETCH: few round trips, yet a bounded amount of mail in memory at once.
FETCH_CHUNK = 20
SEEN = b"\\Seen"
DELETED = b"\\Deleted"
PROCESSED_KEYWORD = b"$CareProcessed"
_BYTES_REPR = re.compile(r"b(['\"])(.*)\1", re.DOTALL)
# First key of the two-part advisory lock ("CARE" in ASCII); the second is the mailbox id.
_LOCK_CLASS = 0x43415245


class PollError(Exception):
    """Ends one poll; its text is what ``Mailbox.last_poll_error`` shows."""


class _LostRace(Exception):  # noqa: N818 - control flow, not an error
    """Another poll changed the mailbox's position first: it goes on, this one stops."""


@dataclass
class PollResult:
    """What one poll of one mailbox did. ``error`` is empty when the poll succeeded."""

    mailbox_id: int
    address: str
    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    acknowledged: int = 0
    stored_ids: list[int] = field(default_factory=list)
    more: bool = False  # the batch was full: more messages are waiting on the server
    busy: bool = False  # another poll of this mailbox was running (or went ahead): this one stopped
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def mailbox_poll(*, mailbox: Mailbox, batch: int = 200, process: bool = True) -> PollResult:
    """Fetch up to ``batch`` new messages of ``mailbox`` from its IMAP folder and store them.

    Precondition: called outside a transaction, so that each message is committed before the
    server is told it was processed. IMAP, network and storing errors never escape: they end the
    poll and are returned in ``PollResult.error`` and recorded in ``mailbox.last_poll_error``
    (cleared by the next successful poll). Stored messages are enqueued for processing, unless
    ``process`` is False: then the caller processes ``PollResult.stored_ids`` itself.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    result = PollResult(mailbox_id=mailbox.pk, address=mailbox.address)
    with _poll_lock(mailbox.pk) as acquired:
        if not acquired:
            result.busy = True
            return result
        try:
            _poll(mailbox, batch=batch, process=process, result=result)
        except PollError as exc:
            result.error = str(exc)
        except _LostRace:
            result.busy = True
        except Exception as exc:  # never let one mailbox's surprise fail the task or the command
            logger.exception("Polling IMAP mailbox %s failed", mailbox.address)
            result.error = _("Polling failed: %(error)s") % {"error": _describe(exc)}
        Mailbox.objects.filter(pk=mailbox.pk).update(
            last_polled_at=timezone.now(), last_poll_error=result.error[:5000]
        )
    mailbox.refresh_from_db(fields=["imap_uidvalidity", "imap_last_uid", "last_polled_at", "last_poll_error"])
    if result.error:
        logger.warning("IMAP mailbox %s: %s", mailbox.address, result.error)
    return result


@contextmanager
def _poll_lock(mailbox_id: int) -> Iterator[bool]:
    """Hold the mailbox's advisory lock if it is free; yield whether this session got it."""
    key = (_LOCK_CLASS, mailbox_id & 0x7FFFFFFF)  # the key's parts are int4; a collision only serialises
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", key)
        row = cursor.fetchone()
    acquired = bool(row and row[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)


def _poll(mailbox: Mailbox, *, batch: int, process: bool, result: PollResult) -> None:
    if mailbox.delivery != Mailbox.Delivery.IMAP:
        raise PollError(_("The mailbox does not receive its mail by IMAP."))
    if not mailbox.imap_host:
        raise PollError(_("No IMAP host is configured."))
    with _connect(mailbox) as client:
        try:
            uidvalidity, permanent_flags = _open_folder(client, mailbox)
            last_uid = _position(mailbox, uidvalidity)
            uids = _new_uids(client, last_uid)
        except (imaplib.IMAP4.error, OSError) as exc:
            raise PollError(_("IMAP error: %(error)s") % {"error": _describe(exc)}) from exc
        result.more = len(uids) > batch
        _store_all(
            client,
            mailbox,
            uids[:batch],
            uidvalidity=uidvalidity,
            last_uid=last_uid,
            flags=_ack_flags(permanent_flags),
            process=process,
            result=result,
        )


@contextmanager
def _connect(mailbox: Mailbox) -> Iterator[Any]:
    """A logged-in ``IMAPClient``; logged out afterwards, whatever happened."""
    server = f"{mailbox.imap_host}:{mailbox.imap_port}"
    try:
        client = IMAPClient(
            mailbox.imap_host,
            port=mailbox.imap_port,
            ssl=mailbox.imap_use_ssl,
            ssl_context=_ssl_context() if mailbox.imap_use_ssl else None,
            timeout=TIMEOUT,
        )
    except (OSError, imaplib.IMAP4.error) as exc:
        raise PollError(
            _("IMAP connection to %(server)s failed: %(error)s") % {"server": server, "error": _describe(exc)}
        ) from exc
    try:
        try:
            client.login(mailbox.imap_username, mailbox.imap_password)
        except LoginError as exc:
            raise PollError(_("IMAP login failed: %(error)s") % {"error": _describe(exc)}) from exc
        except (OSError, imaplib.IMAP4.error) as exc:
            raise PollError(
                _("IMAP login to %(server)s failed: %(error)s") % {"server": server, "error": _describe(exc)}
            ) from exc
        yield client
    finally:
        _disconnect(client)


def _ssl_context() -> ssl.SSLContext:
    """Certificates and host names are verified against the system's trust store."""
    return ssl.create_default_context()


def _disconnect(client: Any) -> None:
    try:
        client.logout()
    except Exception:  # a broken connection cannot log out; closing the socket is all that is left
        with suppress(Exception):
            client.shutdown()


def _open_folder(client: Any, mailbox: Mailbox) -> tuple[int, frozenset[bytes] | None]:
    """Select the mailbox's folder; return its UIDVALIDITY and PERMANENTFLAGS (None if not sent)."""
    folder = mailbox.imap_folder or "INBOX"
    processed = mailbox.imap_processed_folder
    if processed:
        # Checked before anything is fetched: a message acknowledged into nowhere would stay unmarked.
        if processed == folder:
            raise PollError(_("The folder for processed mail must differ from the folder polled."))
        if not client.folder_exists(processed):
            raise PollError(
                _("The IMAP folder %(folder)s for processed mail does not exist.") % {"folder": processed}
            )
    try:
        info = client.select_folder(folder)
    except imaplib.IMAP4.error as exc:
        raise PollError(
            _("The IMAP folder %(folder)s cannot be opened: %(error)s")
            % {"folder": folder, "error": _describe(exc)}
        ) from exc
    uidvalidity = info.get(b"UIDVALIDITY")
    if uidvalidity is None:
        raise PollError(_("The IMAP server sent no UIDVALIDITY for %(folder)s.") % {"folder": folder})
    flags = info.get(b"PERMANENTFLAGS")
    return int(uidvalidity), (frozenset(flags) if flags is not None else None)


def _position(mailbox: Mailbox, uidvalidity: int) -> int:
    """The last UID stored for this UIDVALIDITY, read fresh from the database.

    When the UIDVALIDITY changed (the folder was recreated, or the server renumbered it), its UIDs
    now name other messages: start again from 0. Fetching everything again is harmless, since the
    messages stored already are recognised by their bytes.
    """
    old_validity, old_uid = (
        Mailbox.objects.filter(pk=mailbox.pk).values_list("imap_uidvalidity", "imap_last_uid").get()
    )
    if old_validity == uidvalidity:
        return old_uid
    unchanged = Q(imap_uidvalidity__isnull=True) if old_validity is None else Q(imap_uidvalidity=old_validity)
    reset = Mailbox.objects.filter(unchanged, pk=mailbox.pk, imap_last_uid=old_uid)
    if reset.update(imap_uidvalidity=uidvalidity, imap_last_uid=0) != 1:
        raise _LostRace
    if old_validity is not None:
        logger.info(
            "IMAP mailbox %s: UIDVALIDITY %s → %s, fetching all again", mailbox, old_validity, uidvalidity
        )
    return 0


def _new_uids(client: Any, last_uid: int) -> list[int]:
    found = client.search(["UID", f"{last_uid + 1}:*"])
    # "n:*" always matches the highest UID of the folder, even when that is below n (RFC 3501 6.4.8):
    # without this filter the newest message would come back on every poll.
    return sorted(int(uid) for uid in found if int(uid) > last_uid)


def _ack_flags(permanent_flags: frozenset[bytes] | None) -> list[bytes]:
    """\\Seen, and our keyword where the folder keeps new keywords (``\\*``) or knows ours.

    A missing PERMANENTFLAGS means every flag can be set (RFC 3501 7.1); elsewhere a STORE of an
    unknown keyword is refused or silently dropped, depending on the server.
    """
    if permanent_flags is None or b"\\*" in permanent_flags or PROCESSED_KEYWORD in permanent_flags:
        return [SEEN, PROCESSED_KEYWORD]
    return [SEEN]


def _store_all(
    client: Any,
    mailbox: Mailbox,
    uids: Sequence[int],
    *,
    uidvalidity: int,
    last_uid: int,
    flags: list[bytes],
    process: bool,
    result: PollResult,
) -> None:
    """Store, advance and acknowledge each message in UID order; stop at the first failure."""
    for start in range(0, len(uids), FETCH_CHUNK):
        chunk = list(uids[start : start + FETCH_CHUNK])
        try:
            bodies = client.fetch(chunk, ["BODY.PEEK[]"])
        except (imaplib.IMAP4.error, OSError) as exc:
            raise PollError(_("IMAP FETCH failed: %(error)s") % {"error": _describe(exc)}) from exc
        for uid in chunk:
            raw = bodies.get(uid, {}).get(b"BODY[]")
            if raw is None:
                if not client.search(["UID", str(uid)]):
                    continue  # expunged by another client since the search: nothing is left to store
                raise PollError(_("The IMAP server sent no content for UID %(uid)s.") % {"uid": uid})
            result.fetched += 1
            try:
                message, created = _store_and_advance(
                    mailbox, bytes(raw), uid=uid, uidvalidity=uidvalidity, last_uid=last_uid
                )
            except _LostRace:
                raise
            except Exception as exc:
                logger.exception("Storing IMAP message %s of %s failed", uid, mailbox.address)
                raise PollError(
                    _("Storing the message with IMAP UID %(uid)s failed: %(error)s")
                    % {"uid": uid, "error": _describe(exc)}
                ) from exc
            last_uid = uid
            if created:
                result.stored += 1
                result.stored_ids.append(message.pk)
                if process:
                    _enqueue_processing(message.pk)
            else:
                result.duplicates += 1
            _acknowledge(client, uid, flags=flags, processed_folder=mailbox.imap_processed_folder)
            result.acknowledged += 1


def _store_and_advance(
    mailbox: Mailbox, raw: bytes, *, uid: int, uidvalidity: int, last_uid: int
) -> tuple[InboundMessage, bool]:
    """Store ``raw`` and move the position from ``last_uid`` to ``uid``, together or not at all.

    Raises ``_LostRace`` (and stores nothing) when the position is no longer ``last_uid``: another
    poll went ahead, and it stored this message before advancing.
    """
    with transaction.atomic():
        message, created = email_receive(
            mailbox=mailbox,
            raw=raw,
            source=InboundSource.IMAP,
            source_ref=f"imap:{uidvalidity}:{uid}",
            process=False,  # enqueued below, once committed, so that a broker outage cannot undo it
        )
        advanced = Mailbox.objects.filter(
            pk=mailbox.pk, imap_uidvalidity=uidvalidity, imap_last_uid=last_uid
        ).update(imap_last_uid=uid)
        if advanced != 1:
            raise _LostRace
    return message, created


def _enqueue_processing(inbound_id: int) -> None:
    """Enqueue processing of a committed message; if the broker is down, the sweep enqueues it later."""
    from care.connectors.tasks import process_inbound  # that module imports this one, through imap_tasks

    try:
        process_inbound.delay(inbound_id)
    except Exception:
        logger.exception("Could not enqueue inbound message %s; sweep_inbound will retry", inbound_id)


def _acknowledge(client: Any, uid: int, *, flags: list[bytes], processed_folder: str) -> None:
    """Mark a stored message processed on the server: flags, then the processed folder if any.

    The message is stored and passed already, so a failure here loses nothing: it only stays
    unmarked on the server. It ends the poll, since the connection is likely broken.
    """
    try:
        client.add_flags([uid], flags, silent=True)
        if not processed_folder:
            return
        if client.has_capability("MOVE"):
            client.move([uid], processed_folder)
            return
        client.copy([uid], processed_folder)
        client.add_flags([uid], [DELETED], silent=True)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge([uid])
        else:
            client.expunge()  # without UIDPLUS only all \Deleted messages can go; ours is among them
    except (imaplib.IMAP4.error, OSError) as exc:
        raise PollError(
            _("Stored the message with IMAP UID %(uid)s but could not mark it processed: %(error)s")
            % {"uid": uid, "error": _describe(exc)}
        ) from exc


def _describe(exc: BaseException) -> str:
    """An exception as one readable line.

    imaplib puts the server's answer in its arguments as bytes, and imapclient's ``LoginError``
    wraps that as the text ``"b'...'"``: both come out as the server's words.
    """
    if exc.args and all(isinstance(arg, bytes) for arg in exc.args):
        text = " ".join(arg.decode("utf-8", "replace") for arg in exc.args)
    else:
        text = str(exc)
    if quoted := _BYTES_REPR.fullmatch(text):
        text = quoted.group(2)
    if isinstance(exc, imaplib.IMAP4.error) and text:
        return text
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__
