"""Care's email parser on the shared corpus (../shared/corpus/email), read in place.

Every message of every source parses and keeps its attachments' bytes; then each expectation a
source states (see its SOURCE.md, and tests/email_corpus.py for how each is read) is one test.
Where Care differs on purpose the test is a strict xfail with the reason. The corpus lives outside
the repository: set CARE_CORPUS_DIR to use another copy; without one these tests are skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from care.connectors.email.parse import parse_email
from tests import email_corpus as corpus

ROOT = corpus.corpus_dir()
pytestmark = pytest.mark.skipif(
    ROOT is None,
    reason=f"email corpus not found: set {corpus.CORPUS_ENV} or check out ../shared/corpus/email (CI has it)",
)


def _messages() -> list[Any]:
    if ROOT is None:
        return []
    return [
        pytest.param(path, id=f"{source}/{path.relative_to(ROOT / source).as_posix()}")
        for source in corpus.SOURCES
        for path in corpus.message_files(ROOT, source)
    ]


def _checks() -> list[Any]:
    if ROOT is None:
        return []
    params = []
    for check in corpus.checks(ROOT):
        key = (check.source, check.name, check.field)
        reason = corpus.DELIBERATE_DIFFERENCES.get(key) or corpus.KNOWN_LIMITATIONS.get(key)
        marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
        params.append(pytest.param(check, id=f"{check.source}/{check.name}/{check.field}", marks=marks))
    return params


@pytest.mark.parametrize("path", _messages())
def test_message_parses_and_keeps_its_bytes(path: Path) -> None:
    raw = path.read_bytes()
    result = parse_email(raw)
    assert corpus.bytes_kept(raw, result) == ""
    assert "\x00" not in result.text + result.subject + result.visible_text
    assert result.date is None or result.date.tzinfo is not None
    if result.text.strip():
        assert result.visible_text.strip()


@pytest.mark.parametrize("check", _checks())
def test_expectation(check: corpus.Check) -> None:
    assert ROOT is not None
    outcome = corpus.run(ROOT, check)
    assert outcome.ok, outcome.detail


def test_every_source_is_read() -> None:
    assert ROOT is not None
    checks = {source: len(corpus.checks(ROOT, source)) for source in corpus.SOURCES}
    assert all(checks.values()), checks
    messages = {source: len(corpus.message_files(ROOT, source)) for source in corpus.SOURCES}
    assert all(messages[source] for source in corpus.SOURCES if corpus.MESSAGE_GLOBS[source]), messages


def test_bounce_fields_of_a_standard_report() -> None:
    assert ROOT is not None
    bounce = parse_email((ROOT / "flanker" / "messages" / "bounce" / "zed.eml").read_bytes()).bounce
    assert bounce is not None
    assert (bounce.status, bounce.permanent) == ("5.1.1", True)
    assert bounce.original_message_id == "20090708054735.GC7578@example.com"
    assert bounce.recipient == "asdfasdfasdfasdfasdfasdfewrqertrtyrthsfgdfgadfqeadvxzvz@gmail.com"


def test_a_delay_is_not_permanent() -> None:
    assert ROOT is not None
    bounce = parse_email((ROOT / "flanker" / "messages" / "bounce" / "delayed.eml").read_bytes()).bounce
    assert bounce is not None
    assert bounce.permanent is False
    assert bounce.status is not None
    assert bounce.status.startswith("4.")


def test_a_non_standard_bounce_from_the_mailer_daemon() -> None:
    assert ROOT is not None
    result = parse_email((ROOT / "zammad" / "mail052.box").read_bytes())
    assert result.bounce is not None
    assert result.bounce.permanent


def test_ordinary_mail_is_neither_bounce_nor_auto_reply() -> None:
    assert ROOT is not None
    result = parse_email((ROOT / "chatwoot" / "support.eml").read_bytes())
    assert result.bounce is None
    assert not result.is_auto_reply


def test_cid_images_are_inline_and_named() -> None:
    assert ROOT is not None
    result = parse_email((ROOT / "zammad" / "mail010.box").read_bytes())
    inline = [attachment for attachment in result.attachments if attachment.is_inline]
    assert inline
    assert all(attachment.content_id and attachment.filename for attachment in inline)


def test_enclosed_messages_are_eml_attachments_with_their_original_bytes() -> None:
    assert ROOT is not None
    result = parse_email((ROOT / "zammad" / "mail014.box").read_bytes())
    names = [attachment.filename for attachment in result.attachments]
    assert names == ["Neue Anfrage erstellt - 33284.eml", "Call: HW-Anforderung; Best-nr.47524152.eml"]
    assert all(attachment.content_type == "message/rfc822" for attachment in result.attachments)
