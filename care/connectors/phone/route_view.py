"""``POST /inbound/phone/<token>/route``: the telephone system asks where a ringing call goes.

Body (JSON): ``{"call_id": "...", "caller": "+49...", "dialled": "+49...", "ivr": "1"}``. Authenticated
like the events endpoint: the line's secret token in the URL (unknown or inactive: 404) and, when the
line has a signing secret, ``X-Care-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` (missing:
401, wrong: 403), checked before anything is read or written. The answer is one of

    {"target": "agent", "agent": {"id": 7, "name": "..."}, "address": "sip:...", "language": "de", "call": 12}
    {"target": "queue", "address": "<line.overflow_target or 'queue'>"}  # keep waiting, ask again
    {"target": "voicemail", "address": "<line.voicemail_target>"}        # outside service hours

The decision is ``care.calls.routing.route_ringing_call``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from care.calls.events import normalise_number
from care.calls.models import PhoneLine
from care.calls.routing import RingingCall, route_ringing_call

SIGNATURE_HEADER = "HTTP_X_CARE_SIGNATURE"
MAX_BODY_BYTES = 16 * 1024


def signature_problem(line: PhoneLine, request: HttpRequest, body: bytes) -> JsonResponse | None:
    """401/403 when the line signs its requests and this one is unsigned or wrongly signed."""
    if not line.signing_secret:
        return None
    header = request.META.get(SIGNATURE_HEADER, "")
    if not header.startswith("sha256="):
        return JsonResponse({"error": _("Sign the body: X-Care-Signature: sha256=<hex HMAC>.")}, status=401)
    expected = hmac.new(line.signing_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(header.removeprefix("sha256=").strip().lower(), expected):
        return JsonResponse({"error": _("The signature does not match the body.")}, status=403)
    return None


def _ringing(payload: Any) -> RingingCall | None:
    if not isinstance(payload, dict):
        return None
    call_id = payload.get("call_id")
    if not isinstance(call_id, str) or not call_id.strip() or len(call_id) > 200:
        return None
    fields = {name: payload.get(name, "") for name in ("caller", "dialled", "ivr")}
    if not all(isinstance(value, str | int) for value in fields.values()):
        return None
    return RingingCall(
        call_id=call_id.strip(),
        caller=normalise_number(str(fields["caller"])),
        dialled=normalise_number(str(fields["dialled"])),
        ivr=str(fields["ivr"]).strip(),
    )


@csrf_exempt  # posted by telephone systems, authenticated by the token and the signature
@require_POST
def phone_route(request: HttpRequest, token: str) -> JsonResponse:
    line = PhoneLine.objects.select_related("tenant").filter(inbound_token=token, is_active=True).first()
    if line is None or not line.tenant.is_active:
        return JsonResponse({"error": _("No active phone line has this token.")}, status=404)
    body = request.body
    problem = signature_problem(line, request, body)
    if problem is not None:
        return problem
    if len(body) > MAX_BODY_BYTES:
        return JsonResponse({"error": _("The request is too large.")}, status=413)
    try:
        ringing = _ringing(json.loads(body))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):  # nested arrays: not a call
        ringing = None
    if ringing is None:
        return JsonResponse(
            {"error": _('Send JSON: {"call_id": "...", "caller": "...", "dialled": "...", "ivr": "..."}.')},
            status=400,
        )
    return JsonResponse(route_ringing_call(line=line, ringing=ringing).as_json())
