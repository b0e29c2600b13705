"""What every adapter does the same way with a platform's HTTP answers: read a download without
holding more than a limit in memory, read ``Retry-After``, and turn an error answer into a
``SendError`` that says whether trying again can help.

Error texts never carry the request URL: Telegram's contains the bot token.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math

import requests
from django.utils import timezone
from django.utils.translation import gettext as _

from care.connectors.social.base import SendError

CHUNK_BYTES = 64 * 1024


def read_capped(response: requests.Response, limit: int, *, too_large: str = "") -> bytes:
    """The body, refused (not retryable) as soon as it is known to exceed ``limit`` bytes; a
    transfer that breaks off is retryable. ``too_large``: the refusal's text (a default says the
    limit in MB)."""
    refusal = SendError(
        too_large or _("The file is larger than %(limit)d MB.") % {"limit": limit // (1024 * 1024)},
        retryable=False,
    )
    declared = response.headers.get("Content-Length", "").strip()
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise refusal
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(chunk_size=CHUNK_BYTES):
            size += len(chunk)
            if size > limit:
                raise refusal
            chunks.append(chunk)
    except requests.RequestException as error:
        raise SendError(
            _("The download broke off (%(error)s).") % {"error": type(error).__name__}, retryable=True
        ) from None
    return b"".join(chunks)


def retry_after(response: requests.Response) -> float | None:
    """The ``Retry-After`` header in seconds (a number or an HTTP date), or None."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return max(0.0, (moment - timezone.now()).total_seconds())


def error_text(response: requests.Response) -> str:
    """The platform's own error message: ``{"error": "…"}``, ``{"error": {"message": "…"}}``,
    ``{"message": "…"}``, ``{"description": "…"}``, else the start of the body."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if isinstance(answer, dict):
        error = answer.get("error")
        if isinstance(error, dict):
            error = error.get("message") or error.get("error_user_msg")
        error = error or answer.get("message") or answer.get("description")
        if isinstance(error, str) and error.strip():
            return error.strip()[:500]
    return (response.text or "").strip()[:300] or str(response.reason or "")


def raise_for_response(response: requests.Response) -> None:
    """SendError unless 2xx: 429 and 5xx are worth retrying, other 4xx are not."""
    status = response.status_code
    if status < 300:
        return
    message = _("The platform answered %(status)d: %(error)s") % {
        "status": status,
        "error": error_text(response) or _("no details"),
    }
    if status == 429 or status >= 500:
        raise SendError(message, retryable=True, retry_after=retry_after(response))
    raise SendError(message, retryable=False)
