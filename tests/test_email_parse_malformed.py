"""Whatever arrives, parsing never crashes and never loses an attachment's bytes.

Property-based (hypothesis): arbitrary bytes, real messages mutated, broken MIME boundaries,
unknown and wrong charsets, huge headers. The only error allowed is ``EmailParseError``, and only
for input that is blank. ``database=None``: no example database in the working tree (hypothesis
still keeps a small cache in .hypothesis/, which ignores itself in git).
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import unicodedata
from email.message import EmailMessage
from email.policy import SMTP

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from care.connectors.email.parse import EmailParseError, ParsedEmail, parse_email

FAST = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def _sample_message() -> bytes:
    message = EmailMessage()
    message["From"] = "Jörg Müller <JOERG@example.com>"
    message["To"] = "support@care.test, Anna <anna@example.com>"
    message["Subject"] = "Rechnung 4711 – Grüße"
    message["Message-ID"] = "<abc.123@example.com>"
    message["Date"] = "Mon, 03 Mar 2025 10:15:00 +0100"
    message.set_content("Hallo,\ndie Rechnung ist falsch.\n\nGrüße\nJörg\n")
    message.add_alternative(
        "<p>Hallo,</p><p>die Rechnung ist <b>falsch</b>.</p><img src='cid:logo'>", subtype="html"
    )
    message.add_attachment(
        b"%PDF-1.4 binary \x00\xff\xfe data", maintype="application", subtype="pdf", filename="rechnung.pdf"
    )
    message.add_attachment(b"\x89PNG\r\n\x1a\nimage", maintype="image", subtype="png", cid="<logo>")
    return message.as_bytes(policy=SMTP)


SAMPLE = _sample_message()


def _assert_sane(result: ParsedEmail) -> None:
    texts = [
        result.subject,
        result.text,
        result.html,
        result.visible_text,
        result.from_name,
        result.from_address,
    ]
    texts += [name for name, _ in result.to + result.cc] + [address for _, address in result.to + result.cc]
    texts += [attachment.filename for attachment in result.attachments] + list(result.headers.values())
    for text in texts:
        assert isinstance(text, str)
        assert "\x00" not in text  # PostgreSQL text cannot hold NUL
        text.encode("utf-8")  # no lone surrogates left over from 8-bit headers
    assert result.from_address == result.from_address.lower()
    assert result.date is None or result.date.tzinfo is not None
    for attachment in result.attachments:
        assert attachment.filename
        assert isinstance(attachment.content, bytes)
        assert "/" not in attachment.filename
        assert "\\" not in attachment.filename
    if result.text.strip():
        assert result.visible_text.strip()


def _parse_or_blank(raw: bytes) -> ParsedEmail | None:
    try:
        result = parse_email(raw)
    except EmailParseError:
        assert not raw.strip() or raw.lstrip(b"\r\n").startswith(b"From ")
        return None
    _assert_sane(result)
    return result


@pytest.mark.parametrize(
    "raw", [b"", b"   ", b"\r\n\r\n", b"From someone@example.com Mon Jan  1 00:00:00 2024\n"]
)
def test_blank_input_is_not_an_email(raw):
    with pytest.raises(EmailParseError):
        parse_email(raw)


def test_a_string_is_refused_with_the_same_error():
    with pytest.raises(EmailParseError):
        parse_email("Subject: hi\n\nbody")  # type: ignore[arg-type]


def test_the_sample_keeps_everything():
    result = parse_email(SAMPLE)
    assert result.from_address == "joerg@example.com"
    assert result.from_name == "Jörg Müller"
    assert result.subject == "Rechnung 4711 – Grüße"
    assert result.date == dt.datetime(2025, 3, 3, 9, 15, tzinfo=dt.UTC)
    by_name = {attachment.filename: attachment for attachment in result.attachments}
    assert by_name["rechnung.pdf"].content == b"%PDF-1.4 binary \x00\xff\xfe data"
    logo = next(attachment for attachment in result.attachments if attachment.content_id == "logo")
    assert logo.is_inline
    assert logo.filename == "image-1.png"


@FAST
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_crash(raw):
    _parse_or_blank(raw)


@FAST
@given(st.text(max_size=2000))
def test_arbitrary_text_never_crashes(text):
    _parse_or_blank(text.encode("utf-8", "surrogatepass"))


@st.composite
def mutated(draw: st.DrawFn, original: bytes = SAMPLE) -> bytes:
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 8))):
        operation = draw(st.sampled_from(["flip", "cut", "insert", "delete", "duplicate"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if operation == "flip" and data:
            data[position] = draw(st.integers(0, 255))
        elif operation == "cut":
            del data[position:]
        elif operation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=40))
        elif operation == "delete":
            del data[position : position + draw(st.integers(1, 200))]
        else:
            end = position + draw(st.integers(1, 300))
            data[position:position] = data[position:end]
    return bytes(data)


@FAST
@given(mutated())
def test_mutated_real_messages_never_crash(raw):
    _parse_or_blank(raw)


@st.composite
def broken_multipart(draw: st.DrawFn) -> bytes:
    boundary = draw(st.sampled_from(["b1", "==x==", "----=_Part_0", "a b", ""]))
    declared = draw(st.sampled_from([boundary, boundary + "X", "", '"unterminated']))
    parts = []
    for index in range(draw(st.integers(0, 4))):
        content_type = draw(
            st.sampled_from(
                ["text/plain", "text/html", "application/pdf", "multipart/mixed", "message/rfc822"]
            )
        )
        encoding = draw(st.sampled_from(["base64", "quoted-printable", "7bit", "x-uuencode", "bogus"]))
        body = draw(st.binary(max_size=200))
        parts.append(
            f"--{boundary}\r\nContent-Type: {content_type}; name=f{index}.bin\r\n"
            f"Content-Transfer-Encoding: {encoding}\r\n\r\n".encode()
            + body
            + b"\r\n"
        )
    closing = draw(st.sampled_from([f"--{boundary}--\r\n", "", f"--{boundary}\r\n", "--\r\n"]))
    head = f"From: a@example.com\r\nContent-Type: multipart/mixed; boundary={declared}\r\n\r\n".encode()
    preamble: bytes = draw(st.binary(max_size=50))
    return head + preamble + b"".join(parts) + closing.encode()


@FAST
@given(broken_multipart())
def test_broken_boundaries_never_crash(raw):
    _parse_or_blank(raw)


CHARSETS = [
    "utf-8",
    "UTF8",
    "iso-8859-1",
    "windows-1252",
    "x-unknown",
    "unknown-8bit",
    "gb2312",
    "koi8-r",
    "utf-16",
    "utf-7",
    "iso-2022-jp",
    "",
    '"',
    "shift_jis",
    "ks_c_5601-1987",
    "iso-8859-8-i",
    "bogus;;",
]


@FAST
@given(
    charset=st.sampled_from(CHARSETS),
    body=st.binary(max_size=500),
    subject=st.binary(max_size=80),
    encoding=st.sampled_from(["8bit", "base64", "quoted-printable"]),
    subtype=st.sampled_from(["plain", "html"]),
)
def test_bad_charsets_still_give_text(charset, body, subject, encoding, subtype):
    payload = base64.encodebytes(body) if encoding == "base64" else body
    raw = (
        b"From: =?" + charset.encode() + b"?B?" + base64.b64encode(subject) + b"?= <x@example.com>\r\n"
        b"Subject: " + subject.replace(b"\n", b" ").replace(b"\r", b" ") + b"\r\n"
        b"Content-Type: text/" + subtype.encode() + b"; charset=" + charset.encode() + b"\r\n"
        b"Content-Transfer-Encoding: " + encoding.encode() + b"\r\n\r\n" + payload
    )
    result = _parse_or_blank(raw)
    assert result is not None
    if encoding == "base64" and subtype == "plain" and re.search(rb"[A-Za-z0-9]", body):
        assert result.text.strip()  # never lose text: decoded somehow, with replacements at worst


@FAST
@given(
    content=st.binary(max_size=2000),
    # Any printable name (the stdlib refuses control characters when building the message).
    filename=st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40).filter(
        lambda name: name.strip(" .") and "/" not in name and "\\" not in name
    ),
    maintype=st.sampled_from(["application", "image", "text", "audio"]),
)
# Found by hypothesis: the stdlib's unquoting strips angle brackets, and "<>" lost its whole name.
@example(content=b"", filename="<>", maintype="application")
@example(content=b"x", filename="<report>", maintype="application")
def test_attachment_bytes_are_preserved(content, filename, maintype):
    message = EmailMessage()
    message["From"] = "a@example.com"
    message["Subject"] = "attachment"
    message.set_content("see attached")
    message.add_attachment(content, maintype=maintype, subtype="octet-stream", filename=filename)
    result = parse_email(message.as_bytes(policy=SMTP))
    _assert_sane(result)
    assert [attachment.content for attachment in result.attachments] == [content]
    # The name survives RFC 2231 encoding, NFC-normalised, without leading or trailing dots and spaces.
    name = re.sub(r"^[\s.]+|[\s.]+$", "", unicodedata.normalize("NFC", filename))
    assert result.attachments[0].filename == name or (
        not name and result.attachments[0].filename.endswith("-1.bin")
    )


def test_huge_headers_are_survived_quickly():
    raw = (
        b"From: a@example.com\r\nX-Long: "
        + b"x" * 300_000
        + b"\r\n"
        + b"".join(b"X-Many-%d: value\r\n" % index for index in range(20_000))
        + b"Subject: "
        + b"=?utf-8?q?a?= " * 5_000
        + b"\r\n\r\nbody"
    )
    result = parse_email(raw)
    assert result.text == "body"
    assert len(result.subject) == 5_000


@pytest.mark.parametrize("depth", [30, 300, 1500])
def test_deep_multipart_nesting_is_survived(depth):
    head = b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1) for i in range(depth)
    )
    raw = (
        b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
        + head
        + b"--b%d\r\n\r\ndeep\r\n" % depth
    )
    result = parse_email(raw)
    _assert_sane(result)
    assert "deep" in result.text  # past the stack depth the body is kept as text


@pytest.mark.parametrize(
    "raw",
    [
        b"From: a@example.com\r\nContent-Type: message/rfc822\r\n\r\n" * 1500 + b"Subject: x\r\n\r\nbody",
        b"From: " + b"(" * 5000 + b"x" + b")" * 5000 + b" <a@example.com>\r\n\r\nbody",
        b"From: a@example.com\r\nContent-Type: text/plain; charset=" + b"(" * 5000 + b"\r\n\r\nbody",
        b"From: a@example.com\r\nTo: " + b"group:" * 5000 + b"\r\n\r\nbody",
    ],
    ids=["enclosed-1500-deep", "nested-comments", "nested-content-type", "nested-groups"],
)
def test_recursion_bombs_are_survived(raw):
    result = parse_email(raw)
    _assert_sane(result)
    assert result.from_address == "a@example.com"


def test_headers_with_raw_8bit_and_no_body_separator():
    raw = 'From: Jörg <j@example.com>\nSubject: Grüße\nTo: broken <<a@b>, , "unclosed\n'.encode("latin-1")
    result = parse_email(raw)
    assert result.from_name == "Jörg"
    assert result.subject == "Grüße"


# --- fields of messages built here (what the corpus does not show) -----------------------------


def _mail(headers: str, body: str = "Hello") -> bytes:
    return (headers.strip() + "\n\n" + body).encode("utf-8")


@pytest.mark.parametrize(
    "subject",
    [
        "Out of Office: Re: Order 4711",
        "Automatic reply: Invoice",
        "Abwesenheitsnotiz: Ihre Anfrage",
        "Automatische Antwort: Rechnung",
        "Respuesta automática: Pedido",
        "Fuera de la oficina",
        "Réponse automatique : Commande",
        "Absence : Commande",
        "Afwezigheidsbericht: Bestelling",
        "Automatisch antwoord: Factuur",
        "[Ticket#1] Re: Out of the office",
    ],
)
def test_out_of_office_subjects_are_auto_replies(subject):
    assert parse_email(_mail(f"From: a@example.com\nSubject: {subject}")).is_auto_reply


@pytest.mark.parametrize(
    "headers",
    [
        "Auto-Submitted: auto-replied",
        "Auto-Submitted: auto-generated",
        "X-Autoreply: yes",
        "X-Autorespond: Out of office",
        "Precedence: bulk",
        "Precedence: list",
        "X-Auto-Response-Suppress: OOF",
        "X-Auto-Response-Suppress: DR, All",
    ],
)
def test_auto_reply_headers(headers):
    assert parse_email(_mail(f"From: a@example.com\nSubject: Hi\n{headers}")).is_auto_reply


@pytest.mark.parametrize(
    ("subject", "headers"),
    [
        ("Question about automatic replies", ""),
        ("Absence of my refund", ""),
        ("Hi", "Auto-Submitted: no"),
        ("Hi", "X-Auto-Response-Suppress: DR, RN, NRN"),
        ("Hi", "Precedence: first-class"),
    ],
)
def test_customer_mail_is_not_an_auto_reply(subject, headers):
    assert not parse_email(_mail(f"From: a@example.com\nSubject: {subject}\n{headers}")).is_auto_reply


def test_a_plain_text_bounce_from_the_mailer_daemon():
    body = (
        "This is the mail system.\n\n<john@example.com>: host mx.example.com said: 550 5.1.1 "
        "User unknown\n\n--- Original message ---\nMessage-ID: <abc.1@care.test>\nSubject: Your ticket\n"
    )
    result = parse_email(
        _mail("From: MAILER-DAEMON@mx.example.com\nSubject: Undelivered Mail Returned to Sender", body)
    )
    assert result.bounce is not None
    assert (result.bounce.original_message_id, result.bounce.status) == ("abc.1@care.test", "5.1.1")
    assert result.bounce.permanent


def test_a_customer_forwarding_a_bounce_is_not_a_bounce():
    result = parse_email(_mail("From: anna@example.com\nSubject: Fwd: Undelivered Mail Returned to Sender"))
    assert result.bounce is None


def test_a_success_notice_is_not_a_bounce():
    raw = (
        b"From: MAILER-DAEMON@mx.example.com\nSubject: Successful Mail Delivery Report\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\n\n'
        b"--r\nContent-Type: text/plain\n\nDelivered.\n"
        b"--r\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx\n\n"
        b"Final-Recipient: rfc822; anna@example.com\nAction: delivered\nStatus: 2.0.0\n--r--\n"
    )
    assert parse_email(raw).bounce is None


def test_threading_headers():
    result = parse_email(
        _mail(
            "From: a@example.com\nMessage-ID: plain-id@example.com\n"
            "In-Reply-To: <one@care.test> (Care's message of Monday) <two@care.test>\n"
            "References: <zero@care.test>\n <one@care.test>"
        )
    )
    assert result.message_id == "plain-id@example.com"
    assert result.in_reply_to == ["one@care.test", "two@care.test"]
    assert result.references == ["zero@care.test", "one@care.test"]


def test_mbox_from_line_and_dates():
    raw = b"From anna@example.com Mon Mar  3 10:15:00 2025\n" + _mail(
        "From: anna@example.com\nDate: Mon, 3 Mar 2025 10:15:00 -0000"
    )
    result = parse_email(raw)
    assert result.from_address == "anna@example.com"
    assert result.date == dt.datetime(2025, 3, 3, 10, 15, tzinfo=dt.UTC)
    assert parse_email(_mail("From: a@example.com\nDate: yesterday")).date is None


def test_encoded_words_split_inside_a_character_and_rfc2231_names():
    raw = (
        b"From: =?utf-8?B?SsM=?= =?utf-8?B?tnJn?= <j@example.com>\n"
        b"Subject: =?utf-8?q?Gr=C3?= =?utf-8?q?=BC=C3=9Fe?=\n"
        b'Content-Type: multipart/mixed; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain\n\nsee attachment\n"
        b"--b\nContent-Type: application/pdf\n"
        b"Content-Disposition: attachment; filename*=utf-8''%E2%82%AC%20rates.pdf\n"
        b"Content-Transfer-Encoding: base64\n\nJVBERi0=\n--b--\n"
    )
    result = parse_email(raw)
    assert result.subject == "Grüße"
    assert result.from_name == "Jörg"
    assert [(a.filename, a.content) for a in result.attachments] == [("€ rates.pdf", b"%PDF-")]


def test_a_forwarded_message_becomes_an_eml_named_after_its_subject():
    enclosed = b"From: b@example.com\nSubject: Old: order/4711\n\nOriginal text\n"
    raw = (
        b'From: a@example.com\nContent-Type: multipart/mixed; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain\n\nSee below\n"
        b"--b\nContent-Type: message/rfc822\n\n" + enclosed + b"--b--\n"
    )
    result = parse_email(raw)
    assert [(a.filename, a.content) for a in result.attachments] == [
        ("Old: order-4711.eml", enclosed.rstrip(b"\n"))
    ]
    assert result.text == "See below"
