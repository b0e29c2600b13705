"""``manage.py import_cdr``: the real Asterisk corpus imported into a line, idempotently."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from care.calls.models import Call, CallOutcome, PhoneLine
from care.connectors.models import InboundMessage, InboundStatus
from care.connectors.phone.asterisk_cdr import collapse_parallel_calls, parse_rows
from tests.phone.corpus import corpus_file

pytestmark = pytest.mark.django_db

LINE = "+4940777000"
OUTCOMES = {
    "ANSWERED": CallOutcome.ANSWERED,
    "NO ANSWER": CallOutcome.ABANDONED,
    "BUSY": CallOutcome.REJECTED,
}


@pytest.fixture
def demo_line(tenant_a):
    return PhoneLine.objects.create(
        tenant=tenant_a, number=LINE, name="ENN demo", provider="asterisk", default_language="de"
    )


def run(*args: str) -> dict[str, object]:
    out = io.StringIO()
    call_command("import_cdr", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_corpus_cdr_imports_one_call_per_collapsed_record_with_matching_outcomes(demo_line):
    path = corpus_file("asterisk-cdr-csv/cdr.csv")
    records = collapse_parallel_calls(parse_rows(path.read_text(), tz="America/New_York"))
    # No --region: the corpus's pseudonymised US numbers (e.g. 190-590-0260) are possible but not
    # valid numbers, which the customer records refuse (see test_invalid_numbers_are_row_errors).
    result = run("--format", "asterisk", str(path), "--line", LINE, "--time-zone", "America/New_York")
    assert result["status"] == "imported"
    assert result["errors"] == []
    assert result["calls"] == len(records) == Call.objects.count()
    assert result["rows"] == len(parse_rows(path.read_text(), tz="America/New_York"))
    calls = {call.external_id: call for call in Call.objects.all()}
    for record in records:
        call = calls[record.uniqueid]
        assert call.outcome == OUTCOMES[record.disposition], record
        assert (call.tenant_id, call.line_id, call.provider) == (
            demo_line.tenant_id,
            demo_line.pk,
            "asterisk",
        )
        if record.disposition == "ANSWERED":
            assert call.talk_seconds == record.billsec
    stored = InboundMessage.objects.get()
    assert (stored.source, stored.source_ref, stored.provider, stored.status) == (
        "cli",
        "cdr.csv",
        "asterisk-cdr",
        InboundStatus.PROCESSED,
    )
    assert bytes(stored.raw) == path.read_bytes()


def test_importing_twice_changes_nothing_forced_or_not(demo_line):
    path = str(corpus_file("asterisk-cdr-csv/smallcdr.csv"))
    first = run("--format", "asterisk", path, "--line", LINE)
    snapshot = list(Call.objects.order_by("pk").values())
    again = run("--format", "asterisk", path, "--line", LINE)
    assert again["status"] == "already imported"
    forced = run("--format", "asterisk", path, "--line", LINE, "--force")
    assert (forced["applied"], forced["duplicates"]) == (0, first["applied"])
    assert forced["calls"] == first["calls"]
    assert list(Call.objects.order_by("pk").values()) == snapshot
    assert InboundMessage.objects.count() == 1


def test_human_summary_says_already_imported(demo_line):
    path = str(corpus_file("asterisk-cdr-csv/smallcdr_wo_parallelcalls.csv"))
    out = io.StringIO()
    call_command("import_cdr", "--format", "asterisk", path, "--line", LINE, stdout=out)
    assert "imported:" in out.getvalue()
    assert "events applied" in out.getvalue()
    out = io.StringIO()
    call_command("import_cdr", "--format", "asterisk", path, "--line", LINE, stdout=out)
    assert "already imported" in out.getvalue()


def test_bad_rows_are_reported_with_line_numbers_and_the_rest_imported(demo_line, tmp_path):
    lines = corpus_file("asterisk-cdr-csv/smallcdr_wo_parallelcalls.csv").read_text().splitlines()
    good = lines[:2]
    bad = (
        '"","1","2","x","","","","Dial","","not a time","","2017-06-20 09:49:32",10,0,"ANSWERED","","9.9",""'
    )
    unknown = lines[2].replace('"NO ANSWER"', '"EXPLODED"')
    path = tmp_path / "mixed.csv"
    path.write_text("\n".join([good[0], bad, unknown, good[1]]) + "\n")
    out = io.StringIO()
    with pytest.raises(CommandError, match="2 row"):
        call_command("import_cdr", "--format", "asterisk", str(path), "--line", LINE, stdout=out)
    text = out.getvalue()
    assert "Line 2" in text
    assert "Line 3" in text
    assert Call.objects.count() == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "asterisk", "/no/such/file.csv", "--line", LINE], "No such file"),
        (["--format", "asterisk", "FILE", "--line", "+4940000000"], "No active phone line"),
        (["--format", "cisco", "FILE", "--line", LINE], "Unknown format"),
        (
            ["--format", "asterisk", "FILE", "--line", LINE, "--time-zone", "Mars/Olympus"],
            "Unknown time zone",
        ),
        (["--format", "asterisk", "FILE", "--line", LINE, "--region", "XX"], "Unknown region"),
    ],
)
def test_cli_errors_are_clear_and_store_nothing(demo_line, args, message):
    path = str(corpus_file("asterisk-cdr-csv/smallcdr.csv"))
    with pytest.raises(CommandError, match=message):
        call_command("import_cdr", *[path if arg == "FILE" else arg for arg in args], stdout=io.StringIO())
    assert InboundMessage.objects.count() == 0


def test_a_file_that_is_not_a_cdr_is_stored_failed(demo_line, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("\n\n")
    with pytest.raises(CommandError, match="no rows"):
        call_command("import_cdr", "--format", "asterisk", str(path), "--line", LINE, stdout=io.StringIO())
    assert InboundMessage.objects.get().status == InboundStatus.FAILED


def test_invalid_numbers_are_row_errors_and_the_rest_is_imported(demo_line):
    path = corpus_file("asterisk-cdr-csv/cdr.csv")
    out = io.StringIO()
    with pytest.raises(CommandError, match="could not be imported"):
        call_command(
            "import_cdr",
            "--format",
            "asterisk",
            str(path),
            "--line",
            LINE,
            "--region",
            "US",
            "--json",
            stdout=out,
        )
    result = json.loads(out.getvalue())
    assert result["errors"]
    assert all(error.startswith("Line ") for error in result["errors"])
    assert result["calls"] == Call.objects.count() > 0
