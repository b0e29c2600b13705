"""The shared email corpus (../shared/corpus/email): its cases, and how Care's parser scores on them.

Each source's SOURCE.md says what its expectations mean; this module turns them into checks, one
per (source, file, field), so that the tests can run each check and the table below can count
them. ``DELIBERATE_DIFFERENCES`` lists the few places where Care parts ways with a source on
purpose; the tests mark those as strict xfails.

Run ``DJANGO_SECRET_KEY=x .venv/bin/python -m tests.email_corpus`` for the per-source table.
"""

from __future__ import annotations

import difflib
import hashlib
import html
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses
from functools import cache
from pathlib import Path
from typing import Any

from care.connectors.email.parse import EmailParseError, ParsedEmail, parse_email
from care.connectors.email.reply import html_to_text, visible_part

CORPUS_ENV = "CARE_CORPUS_DIR"
SOURCES = ("zammad", "chatwoot", "django-helpdesk", "email-reply-parser", "talon", "flanker")
COLUMNS = ("from", "name", "subject", "body", "attachments", "other")
# Where a source's raw messages are (email-reply-parser has bodies only, no messages).
MESSAGE_GLOBS = {
    "zammad": ("*.box",),
    "chatwoot": ("*.eml",),
    "django-helpdesk": ("*.eml",),
    "email-reply-parser": (),
    "talon": ("standard_replies/*.eml", "*.eml"),
    "flanker": ("messages/**/*.eml",),
}

# (source, file, field) -> why Care differs on purpose. Kept few and honest.
DELIBERATE_DIFFERENCES: dict[tuple[str, str, str], str] = {
    ("zammad", "mail018.box", "subject"): (
        "Care decodes the UTF-7 encoded word folded across lines; Zammad leaves '+ANw-bermittlungsstatus'"
    ),
    ("zammad", "mail046.box", "from_display_name"): (
        "Care reads the raw From name in the GB2312 the mail declares ('武兰成'); Zammad as Windows-1250"
    ),
    ("zammad", "mail046.box", "attachments"): (
        "Care gives every 7bit/8bit part \\n line ends; Zammad converts 7bit but keeps CRLF in this 8bit .eml"
    ),
    ("zammad", "mail054.box", "body"): (
        "Care mends the unindented boundary= line of Content-Type and finds 'some text'; Zammad finds none"
    ),
    ("zammad", "mail060.box", "body"): (
        "Care reads this mixed UTF-8/Latin-1 part run by run; Zammad's expectation is mojibake"
    ),
    ("zammad", "mail076.box", "from_email"): (
        "the From header is broken ('\"…\"@example.com>'); Zammad keeps the stray '>', Care does not"
    ),
    ("zammad", "mail076.box", "from_display_name"): (
        "the From header has no display name; Zammad builds one from the broken address"
    ),
    ("django-helpdesk", "utf-nondecodable.eml", "description_contains"): (
        "the phrase is only in the HTML alternative; Care's text is the text/plain alternative"
    ),
    ("talon", "standard_replies/iphone.eml", "reply"): (
        "talon keeps 'Sent from my iPhone'; Care strips it like email_reply_parser does"
    ),
    ("talon", "standard_replies/sparrow.eml", "reply"): (
        "talon keeps the '-- ' signature block; Care strips everything after the delimiter"
    ),
    ("talon", "reply-separated-by-hr.html", "reply"): (
        "talon drops the whole block around the <hr>, with the sender's 'Bob'; Care keeps text above it"
    ),
    ("chatwoot", "reply_mail_without_uuid.eml", "in_reply_to"): (
        "Chatwoot reports the path of its own Message-ID without the domain; Care keeps ids whole"
    ),
}
# Checks Care fails and knows it: xfailed too (strictly, so that a fix is noticed), listed apart.
KNOWN_LIMITATIONS: dict[tuple[str, str, str], str] = {
    ("talon", "signature/emails/stripped/johndoeexamplecom_body", "signature"): (
        "limitation: the sender is only an address and the signature has no delimiter; talon uses ML here"
    ),
}


def corpus_dir() -> Path | None:
    """The corpus folder: $CARE_CORPUS_DIR, else ../shared/corpus/email beside the repository."""
    configured = os.environ.get(CORPUS_ENV)
    path = (
        Path(configured)
        if configured
        else Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "email"
    )
    return path if path.is_dir() else None


@dataclass(frozen=True)
class Check:
    source: str
    name: str  # the file, relative to the source folder
    field: str
    column: str  # which column of the summary table it counts in
    expected: Any


@dataclass(frozen=True)
class Outcome:
    check: Check
    ok: bool
    detail: str = ""


def norm(text: str | None) -> str:
    return re.sub(r"\s+", " ", (text or "").replace("\xa0", " ")).strip()


def text_of_markup(markup: str) -> str:
    """Text of Zammad's HTML rendering, the same way ../shared/tools/score_email_corpus.py reads it."""
    markup = re.sub(r"(?is)<(script|style).*?</\1>", " ", markup)
    markup = re.sub(r"(?i)<br\s*/?>|</p>|</div>", "\n", markup)
    markup = re.sub(r"<[^>]+>", " ", markup)
    return norm(html.unescape(markup))


def similarity(want: str, have: str) -> float:
    if not want and not have:
        return 1.0
    return difflib.SequenceMatcher(None, want[:4000], have[:4000], autojunk=False).ratio()


def message_files(root: Path, source: str) -> list[Path]:
    files: set[Path] = set()
    for pattern in MESSAGE_GLOBS[source]:
        files.update(path for path in (root / source).glob(pattern) if path.is_file())
    return sorted(files)


@cache
def parsed(path: Path) -> ParsedEmail:
    return parse_email(path.read_bytes())


def _load(root: Path, source: str, name: str = "expected.json") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / source / name).read_text(encoding="utf-8"))
    return data


def _file_parts(message: Message) -> Iterator[Message]:
    """Leaf parts the stdlib sees as files, not looking inside enclosed messages."""
    payload = message.get_payload()
    if message.get_content_maintype() == "message":
        return
    if isinstance(payload, list):
        for child in payload:
            if isinstance(child, Message):
                yield from _file_parts(child)
        return
    try:
        if message.get_content_disposition() == "attachment" or message.get_filename():
            yield message
    except Exception:  # noqa: S110 - a header the stdlib cannot read: nothing to compare
        pass


def bytes_kept(raw: bytes, result: ParsedEmail) -> str:
    """ "" when every part the stdlib sees as a file is among the attachments, byte for byte.

    The reference is the stdlib's own decoding, with Care's one rule on top: content sent as
    lines (7bit, 8bit) gets "\n" line ends. Parts the stdlib could not decode (it returns them
    still encoded: base64 with a dangling character, uuencode without its "begin" line) are
    skipped; Care decodes what is there.
    """
    message = BytesParser(policy=policy.default).parsebytes(raw)
    ours = {attachment.sha256 for attachment in result.attachments}
    for part in _file_parts(message):
        payload = part.get_payload(decode=True)
        encoded = str(part.get_payload()).encode("utf-8", "surrogateescape")
        encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
        if not isinstance(payload, bytes) or (encoding not in ("", "7bit", "8bit") and payload == encoded):
            continue
        if encoding in ("", "7bit", "8bit"):
            payload = payload.replace(b"\r\n", b"\n")
        if hashlib.sha256(payload).hexdigest() not in ours:
            return f"lost the bytes of {part.get_filename()!r} ({part.get_content_type()})"
    return ""


# --- the checks of each source -----------------------------------------------------------------


def _zammad(root: Path) -> Iterator[Check]:
    for path in sorted((root / "zammad" / "expected-json").glob("*.json")):
        exp = json.loads(path.read_text(encoding="utf-8"))
        name = f"{path.stem}.box"
        yield Check("zammad", name, "from_email", "from", exp.get("from_email", ""))
        yield Check("zammad", name, "from_display_name", "name", exp.get("from_display_name", ""))
        yield Check("zammad", name, "subject", "subject", exp.get("subject", ""))
        body = exp.get("body", "")
        if body == "no visible content":  # Zammad's placeholder for a mail without text
            body = ""
        is_html = exp.get("content_type") == "text/html"
        want = text_of_markup(body) if is_html else norm(body)
        yield Check("zammad", name, "body", "body", {"text": want, "from_html": is_html})
        wanted = [
            attachment
            for attachment in exp.get("attachments", [])
            if attachment.get("filename") != "message.html"
            and not (attachment.get("preferences") or {}).get("content-alternative")
        ]
        yield Check("zammad", name, "attachments", "attachments", wanted)
        for header in ("to", "cc", "reply-to"):
            if exp.get(header):
                yield Check("zammad", name, header, "other", exp[header])


_CHATWOOT_FIELDS = {
    "subject": "subject",
    "text_full": "body",
    "content": "body",
    "reply_text_starts_with": "body",
    "html_reply_includes": "body",
    "attachments_count": "attachments",
    "from_is_downcased": "from",
    "contact_email": "from",
    "contact_name": "name",
    "reply_to": "other",
    "date": "other",
    "in_reply_to": "other",
    "in_reply_to_first": "other",
    "auto_reply": "other",
    "contact_email_from_header": "other",
}
_CHATWOOT_BOUNCES = ("bounced_gmail.eml", "bounced_with_no_from.eml")
_CHATWOOT_THREADS = ("in_reply_to.eml", "references.eml", "mail_with_references.eml", "reply.eml")
_CHATWOOT_UPPERCASE = ("mail_with_uppercase_from.eml", "support_uppercase.eml")


def _chatwoot(root: Path) -> Iterator[Check]:
    expected = _load(root, "chatwoot")

    def present(name: str) -> bool:  # the labels name a few files the snapshot lacks
        return (root / "chatwoot" / name).is_file()

    for name, facts in expected.items():
        if name.startswith("_") or name == "labels" or not present(name):
            continue
        for key, value in facts.items():
            if key in _CHATWOOT_FIELDS:
                yield Check("chatwoot", name, key, _CHATWOOT_FIELDS[key], value)
    for name in filter(present, _CHATWOOT_BOUNCES):
        yield Check("chatwoot", name, "bounce", "other", True)
    for name in filter(present, _CHATWOOT_THREADS):
        yield Check("chatwoot", name, "threaded", "other", True)
    for name in filter(present, _CHATWOOT_UPPERCASE):
        yield Check("chatwoot", name, "from_is_downcased", "from", None)


_HELPDESK_FIELDS = {
    "title_equals": "subject",
    "description_equals": "body",
    "description_stripped_equals": "body",
    "description_contains": "body",
    "html_attachment_contains": "body",
    "attachment_contains": "body",
    "has_attachment": "attachments",
    "forwarded_part": "body",
}


def _helpdesk(root: Path) -> Iterator[Check]:
    for name, facts in _load(root, "django-helpdesk").items():
        if name.startswith("_"):
            continue
        for key, value in facts.items():
            if key in _HELPDESK_FIELDS:
                yield Check("django-helpdesk", name, key, _HELPDESK_FIELDS[key], value)


def _reply_parser(root: Path) -> Iterator[Check]:
    for name, facts in _load(root, "email-reply-parser").items():
        if name.startswith("_"):
            continue
        yield Check("email-reply-parser", f"emails/{name}", "reply", "body", facts)


def _talon(root: Path) -> Iterator[Check]:
    expected = _load(root, "talon")
    for name, reply in expected["standard_replies"]["expected_reply"].items():
        yield Check("talon", f"standard_replies/{name}", "reply", "body", reply)
    for name, reply in expected["html_replies"]["expected_reply_text"].items():
        yield Check("talon", f"html_replies/{name}", "reply", "body", reply)
    for name, facts in expected["other"].items():
        yield Check("talon", name, "reply", "body", facts)
    for files in expected["signature_stripped"]["cases"].values():
        yield Check("talon", files["body"], "signature", "body", files)


def _flanker(root: Path) -> Iterator[Check]:
    expected = _load(root, "flanker")
    listed = expected["bounce_detection"]
    for name, facts in listed.items():
        yield Check("flanker", name, "bounce", "other", facts)
    for path in sorted((root / "flanker" / "messages" / "bounce").glob("*.eml")):
        name = path.relative_to(root / "flanker").as_posix()
        if name not in listed:
            yield Check("flanker", name, "bounce", "other", {"is_bounce": True})
    for path in sorted((root / "flanker" / "messages" / "complaints").glob("*.eml")):
        name = path.relative_to(root / "flanker").as_posix()
        yield Check("flanker", name, "complaint", "other", {"is_bounce": False, "auto_reply": True})


_CHECKS: dict[str, Callable[[Path], Iterator[Check]]] = {
    "zammad": _zammad,
    "chatwoot": _chatwoot,
    "django-helpdesk": _helpdesk,
    "email-reply-parser": _reply_parser,
    "talon": _talon,
    "flanker": _flanker,
}


def checks(root: Path, source: str | None = None) -> list[Check]:
    return [check for name in SOURCES if source in (None, name) for check in _CHECKS[name](root)]


# --- running one check -------------------------------------------------------------------------


def _addresses_of(value: str) -> list[str]:
    return [address.lower() for _, address in getaddresses([value]) if address]


def _zammad_outcome(check: Check, result: ParsedEmail) -> tuple[bool, str]:
    got: Any
    if check.field == "from_email":
        got = result.from_address
        return norm(got).lower() == norm(check.expected).lower(), f"got {got!r}"
    if check.field == "from_display_name":
        return norm(result.from_name) == norm(check.expected), f"got {result.from_name!r}"
    if check.field == "subject":
        return norm(result.subject) == norm(check.expected), f"got {result.subject!r}"
    if check.field == "body":
        # Zammad's body is its rendering of the HTML alternative when there is one: compare that
        # with the text of Care's HTML, and a plain body with Care's text (the plain alternative).
        have = norm(html_to_text(result.html) if check.expected["from_html"] and result.html else result.text)
        ratio = similarity(check.expected["text"], have)
        return ratio >= 0.85, f"similarity {ratio:.2f}: got {have[:160]!r}"
    if check.field == "attachments":
        ours = {hashlib.md5(a.content).hexdigest() for a in result.attachments}  # noqa: S324 - fixture ids
        missing = [a["filename"] for a in check.expected if a.get("md5") not in ours]
        names = [(a.filename, a.size) for a in result.attachments]
        return not missing, f"missing {missing}; got {names}"
    pairs = {"to": result.to, "cc": result.cc, "reply-to": [(result.reply_to_name, result.reply_to_address)]}
    got = [address for _, address in pairs[check.field] if address]
    return got == _addresses_of(check.expected), f"got {got}"


def _chatwoot_outcome(check: Check, result: ParsedEmail) -> tuple[bool, str]:
    field, want = check.field, check.expected
    html_text = html_to_text(result.html)
    results: dict[str, Callable[[], tuple[bool, Any]]] = {
        "subject": lambda: (result.subject == want.strip(), result.subject),
        "text_full": lambda: (norm(result.text) == norm(want), result.text[:120]),
        "content": lambda: ((result.visible_text.strip() or None) == want, result.visible_text[:160]),
        "reply_text_starts_with": lambda: (result.visible_text.startswith(want), result.visible_text[:100]),
        "html_reply_includes": lambda: (norm(want) in norm(html_text), html_text[:100]),
        "attachments_count": lambda: (
            len(result.attachments) == want,
            [a.filename for a in result.attachments],
        ),
        "from_is_downcased": lambda: (
            result.from_address == (want or result.from_address.lower()),
            result.from_address,
        ),
        "contact_email": lambda: (
            (result.reply_to_address or result.from_address) == want,
            (result.reply_to_address, result.from_address),
        ),
        "contact_name": lambda: (result.from_name == want, result.from_name),
        "reply_to": lambda: (
            [(result.reply_to_name, result.reply_to_address)] == getaddresses([want]),
            (result.reply_to_name, result.reply_to_address),
        ),
        "date": lambda: (result.date is not None and result.date.isoformat() == want, result.date),
        "in_reply_to": lambda: (next(iter(result.in_reply_to), None) == want, result.in_reply_to),
        "in_reply_to_first": lambda: (next(iter(result.in_reply_to), None) == want, result.in_reply_to),
        "auto_reply": lambda: (result.is_auto_reply == want, result.is_auto_reply),
        "contact_email_from_header": lambda: ("x-original-sender" in result.headers, result.headers),
        "bounce": lambda: (result.bounce is not None, result.bounce),
        "threaded": lambda: (bool(result.in_reply_to or result.references), result.in_reply_to),
    }
    ok, got = results[field]()
    return ok, f"got {got!r}"


def _helpdesk_outcome(check: Check, result: ParsedEmail) -> tuple[bool, str]:
    field, want = check.field, check.expected
    if field == "title_equals":
        # django-helpdesk cuts titles to 200 characters with "..."; Care keeps the whole subject.
        ok = result.subject.startswith(want[:-3]) if want.endswith("...") else result.subject == want
        return ok, f"got {result.subject!r}"
    if field == "description_equals":
        return result.text.strip() == want, f"got {result.text[:160]!r}"
    if field == "description_stripped_equals":
        return result.text.strip() == want, f"got {result.text[:160]!r}"
    if field == "description_contains":
        return want in result.text, f"got {result.text[:160]!r}"
    if field in ("html_attachment_contains", "attachment_contains"):
        want_text = text_of_markup(want)
        return want_text in norm(html_to_text(result.html)), f"got {result.html[:160]!r}"
    if field == "has_attachment":
        return bool(result.attachments) == want, f"got {[a.filename for a in result.attachments]}"
    # The forwarded part is inline ("-----Original Message-----"): in the full text, not in the
    # visible reply, which is django-helpdesk's second mode.
    ok = "Hello there!" in result.text and "Hello there!" not in result.visible_text
    ok = ok and result.visible_text.startswith("This is email body")
    return ok, f"got visible {result.visible_text[:80]!r}"


def _reply_outcome(check: Check, text: str, seconds: float) -> tuple[bool, str]:
    facts = check.expected
    reply = visible_part(text)
    problems = []
    if "reply_equals" in facts and reply.strip() != facts["reply_equals"]:
        problems.append("differs")
    problems += [f"lacks {c!r}" for c in facts.get("reply_contains", []) if c not in reply]
    problems += [f"has {c!r}" for c in facts.get("reply_not_contains", []) if c in reply]
    if "reply_starts_with" in facts and not reply.startswith(facts["reply_starts_with"]):
        problems.append("starts differently")
    if (facts.get("fragments") or {}).get("count") == 1 and norm(reply) != norm(text):
        problems.append("a one-fragment body must stay whole")
    if "max_seconds" in facts and seconds > facts["max_seconds"]:
        problems.append(f"took {seconds:.2f} s")
    return not problems, f"{problems}: got {reply[:200]!r}"


def _talon_outcome(root: Path, check: Check) -> tuple[bool, str]:
    path = root / "talon" / check.name
    if check.field == "signature":
        files = {
            key: (root / "talon" / path).read_text(encoding="utf-8") for key, path in check.expected.items()
        }
        signature = files["signature"].strip()
        want = files["body"].strip()
        if signature and want.endswith(signature):
            want = want[: -len(signature)].strip()
        got = visible_part(files["body"], sender_name=files["sender"].strip())
        return norm(got) == norm(want), f"got {got[-160:]!r}"
    if path.suffix == ".eml":
        got = parsed(path).visible_text
        if isinstance(check.expected, dict):  # reply-quotations-share-block.eml
            return bool(got.strip()) and "From" not in got, f"got {got[:200]!r}"
        return got.strip() == check.expected, f"got {got!r}"
    got = visible_part("", path.read_text(encoding="utf-8", errors="replace"))
    want = check.expected
    if isinstance(want, dict):
        want = text_of_markup(want["expected_html"])
    return re.sub(r"\s", "", got) == re.sub(r"\s", "", want), f"got {got!r}"


def _flanker_outcome(check: Check, result: ParsedEmail) -> tuple[bool, str]:
    facts = check.expected
    ok = (result.bounce is not None) == facts["is_bounce"]
    if ok and facts.get("status"):
        ok = result.bounce is not None and result.bounce.status == facts["status"]
    if ok and "auto_reply" in facts:
        ok = result.is_auto_reply == facts["auto_reply"]
    return ok, f"got bounce={result.bounce}, auto_reply={result.is_auto_reply}"


def run(root: Path, check: Check) -> Outcome:
    """Run one check; an exception while parsing is a failed check, not an error."""
    try:
        if check.source == "email-reply-parser":
            text = (root / check.source / check.name).read_text(encoding="utf-8", errors="replace")
            started = time.perf_counter()
            visible_part(text)
            ok, detail = _reply_outcome(check, text, time.perf_counter() - started)
        elif check.source == "talon":
            ok, detail = _talon_outcome(root, check)
        else:
            result = parsed(root / check.source / check.name)
            judge = {"zammad": _zammad_outcome, "chatwoot": _chatwoot_outcome}.get(check.source)
            if judge is not None:
                ok, detail = judge(check, result)
            elif check.source == "django-helpdesk":
                ok, detail = _helpdesk_outcome(check, result)
            else:
                ok, detail = _flanker_outcome(check, result)
    except (EmailParseError, OSError, ValueError, KeyError, TypeError) as exc:
        return Outcome(check, False, f"{type(exc).__name__}: {exc}")
    return Outcome(check, ok, detail)


def parse_outcome(path: Path) -> str:
    """ "" when the file parses and keeps its attachments' bytes, else what went wrong."""
    try:
        return bytes_kept(path.read_bytes(), parsed(path))
    except Exception as exc:  # reported, not raised: this is a survey
        return f"{type(exc).__name__}: {exc}"


# --- the summary -------------------------------------------------------------------------------


def summary(root: Path) -> list[dict[str, str]]:
    rows = []
    for source in SOURCES:
        files = message_files(root, source)
        ok_files = sum(not parse_outcome(path) for path in files)
        outcomes = [run(root, check) for check in checks(root, source)]
        row = {"source": source, "messages": str(len(files)), "parsed": f"{ok_files}/{len(files)}"}
        if not MESSAGE_GLOBS[source]:  # bodies only: nothing to parse as a message
            row.update(messages=f"{len(outcomes)} bodies", parsed="–")
        for column in COLUMNS:
            counted = [outcome for outcome in outcomes if outcome.check.column == column]
            hits = sum(outcome.ok for outcome in counted)
            row[column] = f"{hits}/{len(counted)} {100 * hits / len(counted):.0f}%" if counted else "–"
        row["misses"] = ", ".join(
            f"{o.check.name}:{o.check.field}"
            + ("*" if (o.check.source, o.check.name, o.check.field) in DELIBERATE_DIFFERENCES else "")
            + ("!" if (o.check.source, o.check.name, o.check.field) in KNOWN_LIMITATIONS else "")
            for o in outcomes
            if not o.ok
        )
        rows.append(row)
    return rows


def main() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    root = corpus_dir()
    if root is None:
        print(f"No corpus: set {CORPUS_ENV} or put it at ../shared/corpus/email", file=sys.stderr)  # noqa: T201
        return 1
    headings = ("source", "messages", "parsed", *COLUMNS)
    rows = summary(root)
    widths = {h: max(len(h), *(len(row[h]) for row in rows)) for h in headings}
    print("  ".join(h.ljust(widths[h]) for h in headings))  # noqa: T201
    for row in rows:
        print("  ".join(row[h].ljust(widths[h]) for h in headings))  # noqa: T201
    print("\nmisses (* deliberate difference, ! known limitation; see the dicts above):")  # noqa: T201
    for row in rows:
        if row["misses"]:
            print(f"  {row['source']}: {row['misses']}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
