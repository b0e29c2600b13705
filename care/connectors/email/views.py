"""``POST /inbound/email/<token>/``: a mail server (or anyone holding the mailbox's secret token)
posts one raw RFC 822 message; Care stores it and answers 202 before parsing anything."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from care.connectors.email.ingest import email_receive
from care.connectors.models import InboundSource, Mailbox

ACCEPTED_TYPES = ("message/rfc822", "application/octet-stream", "text/plain")


@csrf_exempt  # authenticated by the secret token in the URL, posted by machines, not browsers
@require_POST
def inbound_email(request: HttpRequest, token: str) -> JsonResponse:
    mailbox = Mailbox.objects.select_related("tenant").filter(inbound_token=token, is_active=True).first()
    if mailbox is None:
        return JsonResponse({"error": _("No active mailbox has this token.")}, status=404)
    limit: int = settings.CARE_MAX_EMAIL_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return JsonResponse(
            {"error": _("The message is larger than %(limit)d bytes.") % {"limit": limit}}, status=413
        )
    # Read the stream ourselves: request.body stops at DATA_UPLOAD_MAX_MEMORY_SIZE, far below mail sizes.
    raw = request.read(limit + 1)
    if len(raw) > limit:
        return JsonResponse(
            {"error": _("The message is larger than %(limit)d bytes.") % {"limit": limit}}, status=413
        )
    if not raw.strip():
        return JsonResponse({"error": _("The body is empty: post the raw RFC 822 message.")}, status=400)
    content_type = request.content_type or ""
    if content_type not in ACCEPTED_TYPES:
        return JsonResponse(
            {
                "error": _("Send the raw message with Content-Type: message/rfc822 (got %(type)s).")
                % {"type": content_type or _("none")}
            },
            status=415,
        )
    message, created = email_receive(
        mailbox=mailbox, raw=raw, source=InboundSource.HTTP, source_ref=request.META.get("REMOTE_ADDR", "")
    )
    return JsonResponse({"id": message.pk, "status": "stored" if created else "duplicate"}, status=202)
