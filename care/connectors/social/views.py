"""``/inbound/social/<slug>/<token>/``: the webhook of every social platform (docs/social.md).

Order, as for every inbound endpoint: find the account by its token (404), let the adapter
authenticate the request (403, nothing stored), store the raw bytes, then parse and apply them at
once through ``inbound_process``, so that a body that fails is kept, marked failed with its error,
and can be replayed once its cause is fixed. A ``GET`` is the platform's verification handshake.
The request path stays lean (attachments are downloaded by a task): Telegram and Meta want a quick
200.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from care.connectors.models import InboundMessage, InboundSource, InboundStatus, SocialAccount
from care.connectors.services import inbound_process
from care.connectors.social.base import ParseError, SignatureError, SocialError, WebhookRequest
from care.connectors.social.ingest import SocialInputError, social_apply, social_receive
from care.connectors.social.registry import adapter_for

# Webhook bodies are small (a few messages or statuses); attachments come by URL or media id.
MAX_BODY_BYTES: int = getattr(settings, "CARE_MAX_SOCIAL_BYTES", 1024 * 1024)
_COUNTS = ("created", "appended", "duplicates", "echoes", "statuses", "ignored")


def _error(message: str, status: int, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def _webhook_request(request: HttpRequest, body: bytes) -> WebhookRequest:
    return WebhookRequest(
        method=request.method or "",
        body=body,
        headers={name.lower(): value for name, value in request.headers.items()},
        query={key: request.GET.get(key, "") for key in request.GET},
        url=request.build_absolute_uri(),
    )


def _read_body(request: HttpRequest) -> bytes | JsonResponse:
    too_large = _error(_("The body is larger than %(limit)d bytes.") % {"limit": MAX_BODY_BYTES}, status=413)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY_BYTES:
        return too_large
    # Read the stream ourselves: request.body would stop at DATA_UPLOAD_MAX_MEMORY_SIZE with a 400.
    raw = request.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        return too_large
    return raw


def _counts(summary: dict[str, Any]) -> dict[str, Any]:
    return {name: summary.get(name, 0) for name in _COUNTS}


def _process(message: InboundMessage, *, created: bool) -> JsonResponse:
    """Apply a stored body now and answer with what it did (or why it could not)."""
    if not created and message.status in (InboundStatus.PROCESSED, InboundStatus.IGNORED):
        # The same bytes again (the platform retried): every message in them was applied before.
        summary = message.summary or {}
        seen = sum(int(summary.get(name, 0)) for name in ("created", "appended", "duplicates", "echoes"))
        return JsonResponse({"ok": True, "id": message.pk, "replay": True, **_counts({}), "duplicates": seen})
    refused: list[ParseError] = []

    def handler(stored: InboundMessage) -> None:
        try:
            social_apply(stored)
        except ParseError as error:
            refused.append(error)
            raise

    result = inbound_process(inbound_id=message.pk, handler=handler)
    if refused:
        return _error(str(refused[0]), refused[0].status, id=message.pk)
    if result is None or result.status == InboundStatus.RECEIVED:
        # Another request is processing the same bytes right now; it answers for them.
        return JsonResponse({"ok": True, "id": message.pk, "status": "processing"}, status=202)
    if result.status == InboundStatus.FAILED:
        return _error(
            _("The body was stored but could not be applied; it will be retried."), 503, id=message.pk
        )
    return JsonResponse({"ok": True, "id": message.pk, **_counts(result.summary or {})})


@csrf_exempt  # authenticated by the token in the URL and the platform's signature, posted by machines
def social_webhook(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    if request.method not in ("GET", "POST"):
        response = _error(_("Only GET (verification) and POST (events) are answered here."), 405)
        response["Allow"] = "GET, POST"
        return response
    adapter = adapter_for(slug)
    if adapter is None:
        return _error(_("No social platform %(slug)s is served here.") % {"slug": slug}, 404)
    account = (
        SocialAccount.objects.select_related("tenant")
        .filter(inbound_token=token, is_active=True, platform=adapter.platform)
        .first()
    )
    if account is None:
        return _error(_("No active %(slug)s account has this token.") % {"slug": slug}, 404)
    credentials = account.credentials()

    if request.method == "GET":
        try:
            answer = adapter.handshake(_webhook_request(request, b""), credentials)
        except SocialError as error:
            return _error(str(error), error.status)
        return HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)

    raw = _read_body(request)
    if isinstance(raw, JsonResponse):
        return raw
    try:
        adapter.verify(_webhook_request(request, raw), credentials)
    except SignatureError as error:
        return _error(str(error), 403)
    except SocialError as error:
        return _error(str(error), error.status)
    if not raw.strip():
        return _error(_("The body is empty."), 400)
    try:
        message, created = social_receive(
            account=account,
            raw=raw,
            slug=slug,
            source=InboundSource.WEBHOOK,
            source_ref=request.META.get("REMOTE_ADDR", ""),
        )
    except SocialInputError as error:
        return _error(str(error), error.status)
    return _process(message, created=created)
