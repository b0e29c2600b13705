"""Recognising auto-replies and delivery-status reports (bounces)."""

from __future__ import annotations

import re
from email.message import Message

from care.connectors.email.headers import _clean_address, _header_text, _message_ids, _raw_header
from care.connectors.email.mime import _Body, _content_type
from care.connectors.email.parsed import BounceInfo

# --- auto-replies and bounces ------------------------------------------------------------------

# Subjects of out-of-office and other automatic replies in en, de, es, fr and nl, at the start of
# the subject (after reply prefixes) so that a customer asking about "automatic replies" is not one.
_AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(?:\[[^\]]*\]\s*)?(?:(?:re|aw|antw|sv|rv|fw|fwd|wg|tr)\s*:\s*)*"
    r"(?:out of (?:the )?office|automatic reply|auto[- ]?reply|auto[- ]?response|autoresponder"
    r"|abwesenheitsnotiz|automatische antwort|abwesend|nicht im büro"
    r"|respuesta autom[aá]tica|fuera de (?:la )?oficina"
    r"|r[ée]ponse automatique|absent(?:e)? du bureau|absence\b(?=\s*(?::|$|\())"
    r"|afwezigheidsbericht|automatisch antwoord|niet aanwezig|afwezig\b)",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"^\s*(?:undelivered mail returned to sender|undeliverable|undelivered|delivery status notification"
    r"|delivery (?:status )?failure|delivery has failed|mail delivery fail|failure notice|returned mail"
    r"|mail system error|non[- ]?delivery|warning: message .* delayed|message delivery delayed"
    r"|unzustellbar|nicht zustellbar|übermittlungsstatus|benachrichtig\w* zum übermittlungsstatus"
    r"|no se puede entregar|no entregado|non remis|non distribuable|onbestelbaar|niet afgeleverd)",
    re.IGNORECASE,
)
_DELAY = re.compile(r"\(delay\)|delayed|verzögert|retrasado|retardé|vertraagd", re.IGNORECASE)
_DAEMON = re.compile(r"^(?:mailer-daemon|postmaster|mail-daemon|mailerdaemon|bounces?)@", re.IGNORECASE)
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_SMTP_CODE = re.compile(r"\b([45])\d\d[ -]")
_BODY_MESSAGE_ID = re.compile(r"^\s*(?:>\s*)?message-id:\s*<([^<>\s]+)>", re.IGNORECASE | re.MULTILINE)


def _is_auto_reply(message: Message, subject: str, body: _Body) -> bool:
    if body.machine_report:
        return True
    auto_submitted = (_raw_header(message, "auto-submitted") or "").strip().lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return True
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder"):
        value = _raw_header(message, name)
        if value is not None and value.strip().lower() not in ("no", "false", "0"):
            return True
    if (_raw_header(message, "precedence") or "").strip().lower() in ("bulk", "junk", "list", "auto_reply"):
        return True
    suppress = {
        token.strip().lower() for token in (_raw_header(message, "x-auto-response-suppress") or "").split(",")
    }
    if suppress & {"oof", "all"}:
        return True
    return bool(_AUTO_REPLY_SUBJECT.match(subject))


def _report_fields(
    reports: list[Message],
) -> tuple[str | None, str | None, str | None, str | None, str | None]:
    """Status, action, recipient, diagnostic and original message id from message/delivery-status."""
    status = action = recipient = diagnostic = original_id = None
    for report in reports:
        blocks = report.get_payload()
        for block in blocks if isinstance(blocks, list) else []:
            if not isinstance(block, Message):
                continue
            original_id = original_id or next(
                iter(
                    _message_ids(
                        _raw_header(block, "original-message-id")
                        or _raw_header(block, "x-original-message-id")
                    )
                ),
                None,
            )
            block_status = _raw_header(block, "status")
            if block_status and status is None:
                found = _STATUS.search(block_status)
                status = found.group(1) if found else block_status.split()[0]
                action = (_raw_header(block, "action") or "").strip().lower() or None
                recipient_raw = _raw_header(block, "final-recipient") or _raw_header(
                    block, "original-recipient"
                )
                recipient = _clean_address(recipient_raw.split(";", 1)[-1]) if recipient_raw else None
                diagnostic = _header_text(block, "diagnostic-code") or None
    return status, action, recipient, diagnostic, original_id


def _bounce(message: Message, body: _Body, text: str, from_address: str, subject: str) -> BounceInfo | None:
    content_type = _content_type(message)
    try:
        report_type = str(message.get_param("report-type", "") or "").lower()
    except Exception:
        report_type = ""
    standard = bool(body.reports) or (content_type == "multipart/report" and report_type == "delivery-status")
    subject_says = bool(_BOUNCE_SUBJECT.match(subject))
    automatic = (_raw_header(message, "return-path") or "").strip() == "<>" or bool(
        _raw_header(message, "auto-submitted")
    )
    if not standard and not (subject_says and (_DAEMON.match(from_address) or not from_address or automatic)):
        return None
    status, action, recipient, diagnostic, original_id = _report_fields(body.reports)
    for returned in body.returned:
        original_id = original_id or next(iter(_message_ids(_raw_header(returned, "message-id"))), None)
    if original_id is None:
        found_id = _BODY_MESSAGE_ID.search(text)
        # Else the report's own In-Reply-To, which Gmail and others point at the returned mail.
        original_id = (
            found_id.group(1)
            if found_id
            else next(iter(_message_ids(_raw_header(message, "in-reply-to"))), None)
        )
    if status is None:
        found_status = _STATUS.search(text)
        status = found_status.group(1) if found_status else None
    if status is not None and status.startswith("2"):
        return None  # a success notice (NOTIFY=SUCCESS), not a bounce
    if status is not None:
        permanent = status.startswith("5")
    elif action is not None:
        permanent = action == "failed"
    else:
        code = _SMTP_CODE.search(text)
        permanent = code.group(1) == "5" if code else not _DELAY.search(subject)
    if recipient is None:
        failed = _raw_header(message, "x-failed-recipients")
        recipient = _clean_address(failed.split(",")[0]) if failed else None
    return BounceInfo(
        original_message_id=original_id,
        status=status,
        permanent=permanent,
        recipient=recipient,
        diagnostic=diagnostic,
    )
