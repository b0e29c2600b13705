"""Polling IMAP mailboxes, against a real IMAP server on loopback (pymap, in-memory backend).

One pymap process serves the whole module; each test works in folders of its own, so tests do not
see each other's mail. pymap keeps only the system flags (its PERMANENTFLAGS has no ``\\*``), so
here the poller sets ``\\Seen`` and leaves out its ``$CareProcessed`` keyword, as it must on such a
server.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from imapclient import IMAPClient

from care.connectors.dispatch import process_stored
from care.connectors.email import imap as imap_module
from care.connectors.email import imap_tasks
from care.connectors.email.imap import PROCESSED_KEYWORD, SEEN, _ack_flags, mailbox_poll
from care.connectors.models import InboundMessage, InboundSource, InboundStatus, Mailbox
from care.tickets.models import Ticket
from tests.factories.tenants import TenantFactory
from tests.helpers import run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)

USER = "care"
PASSWORD = "s3cret-imap"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"pymap exited with {process.returncode}: {process.stderr.read()!r}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing answers on port {port}")


@pytest.fixture(scope="module")
def imap_port():
    """A pymap server (dict backend, no demo data) with one user, for this module."""
    port = _free_port()
    command = [
        sys.executable,
        "-c",
        "from pymap.main import main; main()",
        "--host", "127.0.0.1", "--port", str(port), "--no-tls",
        "--no-service", "admin", "--no-service", "managesieve", "--no-service", "swim",
        "dict", "--demo-user", USER, "--demo-password", PASSWORD,
    ]  # fmt: skip
    process = subprocess.Popen(  # noqa: S603 - a fixed command line: this interpreter running pymap
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _wait_for_port(port, process)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def server(imap_port):
    """A logged-in client for the test itself: it appends mail and looks at what the poller did."""
    client = IMAPClient("127.0.0.1", port=imap_port, ssl=False, timeout=10)
    client.login(USER, PASSWORD)
    yield client
    with contextlib.suppress(Exception):
        client.logout()


@pytest.fixture
def folder(server):
    name = f"Care-{uuid.uuid4().hex[:10]}"
    server.create_folder(name)
    return name


@pytest.fixture
def mailbox(imap_port, folder):
    return make_mailbox(imap_port, folder)


def make_mailbox(port, folder, **fields):
    tenant = fields.pop("tenant", None) or TenantFactory()
    values = {
        "tenant": tenant,
        "name": "Support",
        "address": f"support@{tenant.slug}.test",
        "delivery": Mailbox.Delivery.IMAP,
        "imap_host": "127.0.0.1",
        "imap_port": port,
        "imap_use_ssl": False,
        "imap_username": USER,
        "imap_password": PASSWORD,
        "imap_folder": folder,
    }
    return Mailbox.objects.create(**{**values, **fields})


def mail(number: int, *, sender: str | None = None, subject: str | None = None) -> bytes:
    sender = sender or f"customer{number}@example.org"
    text = (
        f"From: Customer {number} <{sender}>\r\n"
        f"To: support@care.test\r\n"
        f"Subject: {subject or f'Meter reading {number}'}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.org>\r\n"
        f"Date: Mon, 3 Mar 2025 10:{number % 60:02d}:00 +0100\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n"
        f"\r\n"
        f"Hello, my meter reading is {1000 + number} kWh.\r\n"
    )
    return text.encode()


def append(server, folder, *messages: bytes) -> list[int]:
    """Append ``messages`` to ``folder``; return all UIDs now in it, ascending."""
    for raw in messages:
        server.append(folder, raw)
    server.select_folder(folder)
    return sorted(server.search("ALL"))


def flags_in(server, folder) -> dict[int, set[bytes]]:
    server.select_folder(folder)
    return {uid: set(flags) for uid, flags in server.get_flags(server.search("ALL")).items()}


def uidvalidity_of(server, folder) -> int:
    return int(server.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"])


def test_first_poll_stores_every_message_and_processing_opens_tickets(server, folder, mailbox):
    messages = [mail(1), mail(2), mail(3)]
    uids = append(server, folder, *messages)
    uidvalidity = uidvalidity_of(server, folder)

    result = mailbox_poll(mailbox=mailbox, process=False)

    assert (result.error, result.fetched, result.stored, result.duplicates) == ("", 3, 3, 0)
    assert (result.acknowledged, result.more, result.busy) == (3, False, False)
    stored = list(InboundMessage.objects.filter(mailbox=mailbox).order_by("pk"))
    assert [bytes(m.raw) for m in stored] == messages
    assert {m.source for m in stored} == {InboundSource.IMAP}
    assert [m.source_ref for m in stored] == [f"imap:{uidvalidity}:{uid}" for uid in uids]
    assert [m.pk for m in stored] == result.stored_ids
    assert {m.status for m in stored} == {InboundStatus.RECEIVED}
    mailbox.refresh_from_db()
    assert (mailbox.imap_uidvalidity, mailbox.imap_last_uid) == (uidvalidity, uids[-1])
    assert mailbox.last_polled_at is not None
    assert mailbox.last_poll_error == ""

    for inbound_id in result.stored_ids:
        assert process_stored(inbound_id).status == InboundStatus.PROCESSED
    tickets = Ticket.objects.filter(tenant=mailbox.tenant).order_by("subject")
    assert [t.subject for t in tickets] == ["Meter reading 1", "Meter reading 2", "Meter reading 3"]
    assert {m.ticket_id for m in InboundMessage.objects.filter(mailbox=mailbox)} == {t.pk for t in tickets}


def test_fetched_messages_are_flagged_seen_but_stay(server, folder, mailbox):
    uids = append(server, folder, mail(1), mail(2))

    mailbox_poll(mailbox=mailbox, process=False)

    assert flags_in(server, folder) == {uid: {SEEN} for uid in uids}


def test_keyword_is_set_only_where_the_folder_keeps_new_keywords():
    assert _ack_flags(None) == [SEEN, PROCESSED_KEYWORD]  # no PERMANENTFLAGS: every flag is permanent
    assert _ack_flags(frozenset({SEEN, b"\\*"})) == [SEEN, PROCESSED_KEYWORD]
    assert _ack_flags(frozenset({SEEN, PROCESSED_KEYWORD})) == [SEEN, PROCESSED_KEYWORD]
    assert _ack_flags(frozenset({SEEN, b"\\Deleted"})) == [SEEN]  # pymap, for one


def test_second_poll_fetches_nothing_and_a_later_message_alone(server, folder, mailbox):
    append(server, folder, mail(1), mail(2))
    mailbox_poll(mailbox=mailbox, process=False)

    # "UID n:*" matches the newest message even when n is above it: it must not come back.
    again = mailbox_poll(mailbox=mailbox, process=False)
    assert (again.error, again.fetched, again.stored, again.duplicates) == ("", 0, 0, 0)

    later = mail(3)
    uids = append(server, folder, later)
    third = mailbox_poll(mailbox=mailbox, process=False)

    assert (third.fetched, third.stored) == (1, 1)
    assert bytes(InboundMessage.objects.get(pk=third.stored_ids[0]).raw) == later
    mailbox.refresh_from_db()
    assert mailbox.imap_last_uid == uids[-1]
    assert InboundMessage.objects.filter(mailbox=mailbox).count() == 3


def test_processed_folder_receives_the_messages(server, folder, imap_port):
    done = f"{folder}-done"
    server.create_folder(done)
    mailbox = make_mailbox(imap_port, folder, imap_processed_folder=done)
    append(server, folder, mail(1), mail(2))

    result = mailbox_poll(mailbox=mailbox, process=False)

    assert (result.error, result.stored, result.acknowledged) == ("", 2, 2)
    assert flags_in(server, folder) == {}
    moved = flags_in(server, done)
    assert len(moved) == 2
    assert all(SEEN in flags for flags in moved.values())
    server.select_folder(done)
    bodies = server.fetch(server.search("ALL"), ["BODY.PEEK[]"])
    assert {bytes(m.raw) for m in InboundMessage.objects.all()} == {b[b"BODY[]"] for b in bodies.values()}


@pytest.mark.parametrize("uidplus", [True, False])
def test_without_move_the_message_is_copied_deleted_and_expunged(
    server, folder, imap_port, monkeypatch, uidplus
):
    done = f"{folder}-done"
    server.create_folder(done)
    mailbox = make_mailbox(imap_port, folder, imap_processed_folder=done)
    append(server, folder, mail(1), mail(2))
    missing = {"MOVE"} if uidplus else {"MOVE", "UIDPLUS"}
    has_capability = IMAPClient.has_capability
    monkeypatch.setattr(
        IMAPClient, "has_capability", lambda self, name: name not in missing and has_capability(self, name)
    )

    result = mailbox_poll(mailbox=mailbox, process=False)

    assert (result.error, result.stored, result.acknowledged) == ("", 2, 2)
    assert flags_in(server, folder) == {}
    assert len(flags_in(server, done)) == 2


def test_a_missing_processed_folder_stops_the_poll_before_anything_is_fetched(server, folder, imap_port):
    mailbox = make_mailbox(imap_port, folder, imap_processed_folder="Does-Not-Exist")
    append(server, folder, mail(1))

    result = mailbox_poll(mailbox=mailbox, process=False)

    assert "Does-Not-Exist" in result.error
    assert result.fetched == 0
    assert not InboundMessage.objects.exists()
    mailbox.refresh_from_db()
    assert mailbox.last_poll_error == result.error


def test_a_recreated_folder_is_fetched_again_without_new_tickets(server, folder, mailbox):
    messages = [mail(1), mail(2)]
    append(server, folder, *messages)
    for inbound_id in mailbox_poll(mailbox=mailbox, process=False).stored_ids:
        process_stored(inbound_id)
    old_validity = uidvalidity_of(server, folder)
    server.select_folder("INBOX")
    server.delete_folder(folder)
    time.sleep(0.01)  # pymap derives UIDVALIDITY from the clock
    server.create_folder(folder)
    uids = append(server, folder, *messages, mail(3))
    new_validity = uidvalidity_of(server, folder)
    assert new_validity != old_validity

    result = mailbox_poll(mailbox=mailbox, process=False)

    assert (result.error, result.fetched, result.stored, result.duplicates) == ("", 3, 1, 2)
    mailbox.refresh_from_db()
    assert (mailbox.imap_uidvalidity, mailbox.imap_last_uid) == (new_validity, uids[-1])
    for inbound_id in result.stored_ids:
        process_stored(inbound_id)
    assert Ticket.objects.filter(tenant=mailbox.tenant).count() == 3
    assert InboundMessage.objects.filter(mailbox=mailbox).count() == 3


def test_a_wrong_stored_uidvalidity_refetches_without_duplicating(server, folder, mailbox):
    append(server, folder, mail(1), mail(2))
    for inbound_id in mailbox_poll(mailbox=mailbox, process=False).stored_ids:
        process_stored(inbound_id)
    Mailbox.objects.filter(pk=mailbox.pk).update(imap_uidvalidity=1, imap_last_uid=10**6)

    result = mailbox_poll(mailbox=mailbox, process=False)

    assert (result.fetched, result.stored, result.duplicates) == (2, 0, 2)
    mailbox.refresh_from_db()
    assert mailbox.imap_uidvalidity == uidvalidity_of(server, folder)
    assert Ticket.objects.filter(tenant=mailbox.tenant).count() == 2


def test_a_wrong_password_is_recorded_and_fails_the_command(server, folder, mailbox):
    append(server, folder, mail(1))
    Mailbox.objects.filter(pk=mailbox.pk).update(imap_password="wrong")
    mailbox.refresh_from_db()

    result = mailbox_poll(mailbox=mailbox, process=False)

    assert result.error == "IMAP login failed: [AUTHENTICATIONFAILED] Invalid authentication credentials."
    mailbox.refresh_from_db()
    assert mailbox.last_poll_error == result.error
    assert mailbox.last_polled_at is not None
    out = StringIO()
    with pytest.raises(CommandError, match=rf"^{re.escape(mailbox.address)}: IMAP login failed: "):
        call_command("poll_mailboxes", stdout=out)
    assert f"{mailbox.address}: fetched 0, stored 0, duplicates 0, processed 0, errors 1" in out.getvalue()
    assert not InboundMessage.objects.exists()
    assert list(flags_in(server, folder).values()) == [set()]  # not acknowledged

    Mailbox.objects.filter(pk=mailbox.pk).update(imap_password=PASSWORD)
    mailbox.refresh_from_db()
    assert mailbox_poll(mailbox=mailbox, process=False).stored == 1
    mailbox.refresh_from_db()
    assert mailbox.last_poll_error == ""  # cleared by the first successful poll


def test_a_refused_connection_is_recorded(folder):
    mailbox = make_mailbox(_free_port(), folder)

    result = mailbox_poll(mailbox=mailbox)

    assert result.error.startswith(f"IMAP connection to 127.0.0.1:{mailbox.imap_port} failed: ")
    assert "ConnectionRefusedError" in result.error
    mailbox.refresh_from_db()
    assert mailbox.last_poll_error == result.error


def test_a_missing_folder_is_recorded(imap_port):
    mailbox = make_mailbox(imap_port, "No-Such-Folder")

    result = mailbox_poll(mailbox=mailbox)

    assert result.error.startswith("The IMAP folder No-Such-Folder cannot be opened: ")
    assert mailbox.last_poll_error == result.error


def test_a_message_that_cannot_be_stored_is_not_acknowledged_nor_passed(server, folder, mailbox, monkeypatch):
    uids = append(server, folder, mail(1), mail(2), mail(3))
    real_receive = imap_module.email_receive
    calls = []

    def failing_second(**kwargs):
        calls.append(kwargs["source_ref"])
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real_receive(**kwargs)

    monkeypatch.setattr(imap_module, "email_receive", failing_second)
    result = mailbox_poll(mailbox=mailbox, process=False)

    assert result.error == f"Storing the message with IMAP UID {uids[1]} failed: RuntimeError: disk full"
    assert (result.fetched, result.stored, result.acknowledged) == (2, 1, 1)
    mailbox.refresh_from_db()
    assert mailbox.imap_last_uid == uids[0]
    assert mailbox.last_poll_error == result.error
    assert flags_in(server, folder) == {uids[0]: {SEEN}, uids[1]: set(), uids[2]: set()}

    monkeypatch.setattr(imap_module, "email_receive", real_receive)
    retry = mailbox_poll(mailbox=mailbox, process=False)
    assert (retry.error, retry.fetched, retry.stored) == ("", 2, 2)
    assert InboundMessage.objects.count() == 3


def test_a_message_expunged_between_search_and_fetch_is_passed_over(server, folder, mailbox, monkeypatch):
    uids = append(server, folder, mail(1), mail(2), mail(3))
    server.delete_messages([uids[1]])
    server.expunge()
    # As if SEARCH had answered before another client expunged the second message.
    monkeypatch.setattr(imap_module, "_new_uids", lambda client, last_uid: list(uids))

    result = mailbox_poll(mailbox=mailbox, process=False)

    assert (result.error, result.fetched, result.stored, result.acknowledged) == ("", 2, 2, 2)
    mailbox.refresh_from_db()
    assert mailbox.imap_last_uid == uids[2]


def test_a_full_batch_says_more_and_the_next_poll_goes_on(server, folder, mailbox):
    uids = append(server, folder, mail(1), mail(2), mail(3))

    first = mailbox_poll(mailbox=mailbox, batch=2, process=False)
    second = mailbox_poll(mailbox=mailbox, batch=2, process=False)

    assert (first.stored, first.more) == (2, True)
    assert (second.stored, second.more) == (1, False)
    mailbox.refresh_from_db()
    assert mailbox.imap_last_uid == uids[-1]


def test_concurrent_polls_store_each_message_once(server, folder, mailbox):
    append(server, folder, *(mail(n) for n in range(6)))

    results = run_in_threads(
        lambda _: mailbox_poll(mailbox=Mailbox.objects.get(pk=mailbox.pk), process=False), 4
    )

    assert sum(r.stored for r in results) == 6
    assert sum(r.duplicates for r in results) == 0
    assert any(r.busy for r in results)  # the others found the lock taken and returned
    assert all(r.error == "" for r in results)
    assert InboundMessage.objects.filter(mailbox=mailbox).count() == 6
    assert all(SEEN in flags for flags in flags_in(server, folder).values())


def test_without_the_lock_the_compare_and_swap_still_stores_each_message_once(
    server, folder, mailbox, monkeypatch
):
    """If the lock were lost (a dropped database connection), the position's CAS keeps pollers apart."""
    uids = append(server, folder, *(mail(n) for n in range(6)))

    @contextlib.contextmanager
    def no_lock(mailbox_id):
        yield True

    pollers = 4
    together = threading.Barrier(pollers)
    real_new_uids = imap_module._new_uids

    def new_uids_then_wait(client, last_uid):
        uids = real_new_uids(client, last_uid)
        together.wait(timeout=30)  # every poller starts storing from the same position
        return uids

    monkeypatch.setattr(imap_module, "_poll_lock", no_lock)
    monkeypatch.setattr(imap_module, "_new_uids", new_uids_then_wait)
    results = run_in_threads(
        lambda _: mailbox_poll(mailbox=Mailbox.objects.get(pk=mailbox.pk), process=False), pollers
    )

    assert all(r.error == "" for r in results), [r.error for r in results]
    winner, *losers = sorted(results, key=lambda r: r.busy)
    assert (winner.busy, winner.stored, winner.acknowledged) == (False, 6, 6)
    assert [(r.busy, r.fetched, r.stored, r.acknowledged) for r in losers] == [(True, 1, 0, 0)] * 3
    assert InboundMessage.objects.filter(mailbox=mailbox).count() == 6
    mailbox.refresh_from_db()
    assert mailbox.imap_last_uid == uids[-1]
    assert all(SEEN in flags for flags in flags_in(server, folder).values())


def test_a_poll_of_a_mailbox_being_polled_returns_at_once(server, folder, mailbox, monkeypatch):
    append(server, folder, mail(1))
    entered, release = threading.Event(), threading.Event()
    real_open = imap_module._open_folder

    def slow_open(client, box):  # only the poll holding the lock gets this far
        entered.set()
        release.wait(timeout=30)
        return real_open(client, box)

    monkeypatch.setattr(imap_module, "_open_folder", slow_open)

    def work(index):
        if index == 0:
            return mailbox_poll(mailbox=Mailbox.objects.get(pk=mailbox.pk), process=False)
        assert entered.wait(timeout=30)
        try:
            return mailbox_poll(mailbox=Mailbox.objects.get(pk=mailbox.pk), process=False)
        finally:
            release.set()

    holder, other = run_in_threads(work, 2)

    assert (other.busy, other.fetched, other.error) == (True, 0, "")
    assert (holder.busy, holder.stored) == (False, 1)
    mailbox.refresh_from_db()
    assert mailbox.last_poll_error == ""


def test_command_polls_and_processes(server, folder, mailbox, imap_port):
    other_folder = f"{folder}-other"
    server.create_folder(other_folder)
    other = make_mailbox(imap_port, other_folder, address="sales@example.test", tenant=mailbox.tenant)
    Mailbox.objects.create(tenant=mailbox.tenant, name="Pushed", address="push@example.test")
    append(server, folder, mail(1), mail(2))
    append(server, other_folder, mail(3))

    out = StringIO()
    call_command("poll_mailboxes", "--batch", "1", stdout=out)

    assert out.getvalue().splitlines() == [
        f"{other.address}: fetched 1, stored 1, duplicates 0, processed 1, errors 0",
        f"{mailbox.address}: fetched 2, stored 2, duplicates 0, processed 2, errors 0",
    ]
    assert Ticket.objects.filter(tenant=mailbox.tenant).count() == 3
    assert set(InboundMessage.objects.values_list("status", flat=True)) == {InboundStatus.PROCESSED}


def test_command_fails_when_a_fetched_message_cannot_be_processed(server, folder, mailbox):
    append(server, folder, b"Subject: nobody sent this\r\n\r\nNo From header at all.\r\n", mail(2))

    out = StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("poll_mailboxes", stdout=out)

    assert out.getvalue() == f"{mailbox.address}: fetched 2, stored 2, duplicates 0, processed 1, errors 1\n"
    broken = InboundMessage.objects.get(status=InboundStatus.FAILED)
    assert str(failed.value).startswith(f"{mailbox.address}: message {broken.pk} failed: ")
    assert Ticket.objects.count() == 1


def test_command_polls_one_mailbox_and_can_leave_processing_to_the_workers(
    server, folder, mailbox, imap_port, monkeypatch
):
    from care.connectors.tasks import process_inbound

    enqueued = []
    monkeypatch.setattr(process_inbound, "delay", enqueued.append)
    other_folder = f"{folder}-other"
    server.create_folder(other_folder)
    make_mailbox(imap_port, other_folder, address="sales@example.test", tenant=mailbox.tenant)
    append(server, folder, mail(1))
    append(server, other_folder, mail(2))

    out = StringIO()
    call_command("poll_mailboxes", "--mailbox", mailbox.address.upper(), "--no-process", stdout=out)

    assert out.getvalue() == f"{mailbox.address}: fetched 1, stored 1, duplicates 0, errors 0\n"
    stored = InboundMessage.objects.get()
    assert (stored.mailbox_id, stored.status) == (mailbox.pk, InboundStatus.RECEIVED)
    assert enqueued == [stored.pk]
    assert not Ticket.objects.exists()
    with pytest.raises(CommandError, match=re.escape("No mailbox with the address nobody@example.test")):
        call_command("poll_mailboxes", "--mailbox", "nobody@example.test")


def test_poll_mailboxes_task_enqueues_every_active_imap_mailbox(folder, imap_port, monkeypatch):
    enqueued = []
    monkeypatch.setattr(imap_tasks.poll_mailbox, "apply_async", lambda args, **kw: enqueued.append(args[0]))
    active = make_mailbox(imap_port, folder)
    make_mailbox(imap_port, folder, address="off@example.test", is_active=False)
    make_mailbox(imap_port, folder, address="nohost@example.test", imap_host="")
    Mailbox.objects.create(tenant=active.tenant, name="Pushed", address="push@example.test")

    assert imap_tasks.poll_mailboxes() == 1
    assert enqueued == [active.pk]


def test_poll_mailbox_task_enqueues_processing_after_commit_and_goes_on_when_the_batch_was_full(
    server, folder, mailbox, monkeypatch
):
    from care.connectors.tasks import process_inbound

    enqueued, again = [], []
    monkeypatch.setattr(process_inbound, "delay", enqueued.append)
    monkeypatch.setattr(imap_tasks.poll_mailbox, "apply_async", lambda args, **kw: again.append(args[0]))
    monkeypatch.setattr(imap_tasks, "mailbox_poll", lambda *, mailbox: mailbox_poll(mailbox=mailbox, batch=2))
    append(server, folder, mail(1), mail(2), mail(3))

    assert imap_tasks.poll_mailbox(mailbox.pk) == 2
    assert again == [mailbox.pk]
    assert imap_tasks.poll_mailbox(mailbox.pk) == 1
    assert again == [mailbox.pk]  # the second batch was not full
    assert enqueued == list(InboundMessage.objects.order_by("pk").values_list("pk", flat=True))
    assert imap_tasks.poll_mailbox(mailbox.pk) == 0  # safe to run again
    assert imap_tasks.poll_mailbox(10**9) == 0  # a deleted mailbox is no error


# --- TLS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_port(imap_port, tmp_path_factory):
    """Implicit TLS in front of pymap (which offers only STARTTLS): a small proxy with its own CA."""
    cert_file = _self_signed_certificate(tmp_path_factory.mktemp("tls"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def pump(source, target):
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def serve():
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                client.settimeout(None)
                secure = context.wrap_socket(client, server_side=True)
            except (OSError, ssl.SSLError):
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", imap_port))
            threading.Thread(target=pump, args=(secure, upstream), daemon=True).start()
            threading.Thread(target=pump, args=(upstream, secure), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], cert_file
    stop.set()
    thread.join(timeout=5)
    listener.close()


def _self_signed_certificate(directory):
    pytest.importorskip("cryptography")
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = directory / "imap.pem"
    path.write_bytes(
        certificate.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(path)


def test_tls_mailbox_is_polled_over_a_verified_connection(server, folder, tls_port, monkeypatch):
    port, cert_file = tls_port
    mailbox = make_mailbox(port, folder, imap_use_ssl=True)
    append(server, folder, mail(1))

    untrusted = mailbox_poll(mailbox=mailbox, process=False)
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.error  # the system trust store does not know our CA
    assert not InboundMessage.objects.exists()

    monkeypatch.setattr(imap_module, "_ssl_context", lambda: ssl.create_default_context(cafile=cert_file))
    trusted = mailbox_poll(mailbox=mailbox, process=False)
    assert (trusted.error, trusted.stored) == ("", 1)
