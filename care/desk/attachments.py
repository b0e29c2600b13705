"""Downloading a ticket's attachments from the desk: ``/desk/attachments/<id>/<file name>``.

Only staff who may see the attachment's tenant get the file (404 for everyone else, so that its
existence is not confirmed; 403 for tenant portal users, as on every desk page). The file is always
a download (``Content-Disposition: attachment`` with a cleaned name), never rendered by the browser
as a page of ours: its type is the stored one only when it is well-formed, ``nosniff`` forbids
guessing, and a sandboxing content security policy covers a browser that shows it anyway. The file
name in the address is for people and browsers saving it; the id decides.
"""

from __future__ import annotations

import re
import unicodedata
from typing import cast

from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_GET

from care.desk.access import desk_user_required
from care.tickets.models import Attachment

MAX_FILENAME_CHARS = 150
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")


def safe_filename(name: str) -> str:
    """A file name that is safe in a URL path segment and a Content-Disposition header: no directory
    parts, control characters, quotes or separators; not hidden; at most 150 characters."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[/\\]", name)[-1]
    cleaned = "".join(
        "_" if unicodedata.category(char)[0] in ("C", "Z") and char != " " else char for char in name
    )
    cleaned = re.sub(r'["<>:|?*;%]', "_", cleaned).strip(" .")
    if len(cleaned) > MAX_FILENAME_CHARS:
        stem, dot, extension = cleaned.rpartition(".")
        if dot and 0 < len(extension) <= 10:
            cleaned = f"{stem[: MAX_FILENAME_CHARS - len(extension) - 1]}.{extension}"
        else:
            cleaned = cleaned[:MAX_FILENAME_CHARS]
    return cleaned or "attachment"


def safe_content_type(value: str) -> str:
    kind = (value or "").split(";", 1)[0].strip().lower()
    return kind if _CONTENT_TYPE.match(kind) else "application/octet-stream"


def attachment_url(attachment: Attachment) -> str:
    return reverse(
        "desk:attachment",
        kwargs={"attachment_id": attachment.pk, "filename": safe_filename(attachment.filename)},
    )


@require_GET
@desk_user_required
def download(request: HttpRequest, attachment_id: int, filename: str) -> HttpResponse:
    attachment = get_object_or_404(Attachment.objects.visible_to(request.user), pk=attachment_id)
    try:
        handle = attachment.file.open("rb")
    except (FileNotFoundError, ValueError, OSError):
        raise Http404("The file is missing.") from None
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=safe_filename(attachment.filename),
        content_type=safe_content_type(attachment.content_type),
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    # A streamed response (desk_user_required is typed for plain ones; both are responses to Django).
    return cast(HttpResponse, response)
