"""Phone inbound endpoints (docs/phone.md): ``/inbound/phone/<token>/events`` for Care's JSON events,
``/inbound/phone/<token>/twilio`` for Twilio Voice status callbacks.

Order, as for every inbound endpoint: authenticate (nothing is stored when that fails), store the raw
bytes, then parse and apply them through ``inbound_process`` so that a message that fails is kept,
marked failed with its error, and can be replayed once its cause is fixed.
"""

from __future__ import annotations

import hashlib
import hmac

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from care.calls.models import PhoneLine, Provider
from care.connectors.models import InboundMessage, InboundSource, InboundStatus
from care.connectors.phone import twilio
from care.connectors.phone.ingest import (
    PROVIDER_GENERIC,
    PROVIDER_TWILIO,
    PhoneInputError,
    phone_apply,
    phone_receive,
)
from care.connectors.services import inbound_process

SIGNATURE_HEADER = "X-Care-Signature"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def _line(token: str) -> PhoneLine | None:
    # As the route endpoint: a client whose contract ended (inactive tenant) takes no more calls.
    return (
        PhoneLine.objects.select_related("tenant")
        .filter(inbound_token=token, is_active=True, tenant__is_active=True)
        .first()
    )


def _no_line() -> JsonResponse:
    return JsonResponse({"error": _("No active phone line has this token.")}, status=404)


def care_signature(secret: str, body: bytes) -> str:
    """The ``X-Care-Signature`` value of ``body`` signed with ``secret``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _process(message: InboundMessage, *, created: bool) -> JsonResponse:
    """Apply a stored message now and answer with what it did (or why it could not)."""
    if not created and message.status == InboundStatus.PROCESSED:
        # The same bytes again (a retried delivery): every event in it was applied the first time.
        summary = message.summary or {}
        seen = int(summary.get("applied", 0)) + int(summary.get("duplicates", 0))
        return JsonResponse(
            {"call": summary.get("call"), "calls": summary.get("calls", []), "applied": 0, "duplicates": seen}
        )
    refused: list[PhoneInputError] = []

    def handler(stored: InboundMessage) -> None:
        try:
            phone_apply(stored)
        except PhoneInputError as error:
            refused.append(error)
            raise

    result = inbound_process(inbound_id=message.pk, handler=handler)
    if refused:
        return JsonResponse({"error": str(refused[0]), "id": message.pk}, status=refused[0].status)
    if result is None or result.status == InboundStatus.RECEIVED:
        # Another request is processing the same bytes right now; it will answer for them.
        return JsonResponse({"id": message.pk, "status": "processing"}, status=202)
    if result.status != InboundStatus.PROCESSED:
        return JsonResponse(
            {
                "error": _("The events were stored but could not be applied; they will be retried."),
                "id": message.pk,
            },
            status=503,
        )
    summary = result.summary or {}
    return JsonResponse(
        {
            "call": summary.get("call"),
            "calls": summary.get("calls", []),
            "applied": summary.get("applied", 0),
            "duplicates": summary.get("duplicates", 0),
        }
    )


@csrf_exempt  # authenticated by the token in the URL and, when the line has a secret, an HMAC
@require_POST
def phone_events(request: HttpRequest, token: str) -> JsonResponse:
    line = _line(token)
    if line is None:
        return _no_line()
    raw = request.body
    if line.signing_secret:
        signature = request.headers.get(SIGNATURE_HEADER, "").strip()
        if not signature:
            return JsonResponse(
                {
                    "error": _(
                        "This line signs its events: send X-Care-Signature: sha256=<hex HMAC of the body>."
                    )
                },
                status=401,
            )
        expected = care_signature(line.signing_secret, raw)
        if not hmac.compare_digest(signature.lower().encode("utf-8"), expected.encode("ascii")):
            return JsonResponse({"error": _("The X-Care-Signature does not match the body.")}, status=403)
    if not raw.strip():
        return JsonResponse(
            {"error": _("The body is empty: post one JSON event or a list of them.")}, status=400
        )
    message, created = phone_receive(
        line=line,
        provider=PROVIDER_GENERIC,
        raw=raw,
        source=InboundSource.WEBHOOK,
        source_ref=request.META.get("REMOTE_ADDR", ""),
    )
    return _process(message, created=created)


@csrf_exempt  # authenticated by X-Twilio-Signature, keyed with the line's Twilio auth token
@require_POST
def phone_twilio(request: HttpRequest, token: str) -> HttpResponse:
    line = _line(token)
    if line is None or line.provider != Provider.TWILIO:
        return JsonResponse({"error": _("No active Twilio phone line has this token.")}, status=404)
    if not line.signing_secret:
        return JsonResponse(
            {"error": _("This line has no Twilio auth token, so Twilio's requests cannot be verified.")},
            status=403,
        )
    raw = request.body  # read before request.POST so that the exact bytes are kept
    # The URL Twilio requested: behind a proxy this needs SECURE_PROXY_SSL_HEADER (DJANGO_BEHIND_PROXY)
    # and the original Host header (docs/phone.md).
    valid = twilio.verify_signature(
        auth_token=line.signing_secret,
        url=request.build_absolute_uri(),
        params=request.POST,
        signature=request.headers.get("X-Twilio-Signature", ""),
    )
    if not valid:
        return JsonResponse({"error": _("The X-Twilio-Signature is missing or wrong.")}, status=403)
    message, created = phone_receive(
        line=line,
        provider=PROVIDER_TWILIO,
        raw=raw,
        source=InboundSource.WEBHOOK,
        source_ref=request.POST.get("CallSid", "")[:300],
    )
    answer = _process(message, created=created)
    if answer.status_code != 200:
        return answer
    return HttpResponse(EMPTY_TWIML, content_type="text/xml")
