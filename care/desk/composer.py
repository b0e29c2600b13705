"""The reply composer of the ticket page: in whose voice and on which channel a reply goes out, the
tenant's macros (pre-rendered for this ticket and agent), email attachments, and @mentions in
internal notes (suggestions, and marking one's mentions read on My work).

The composer adds a fixed number of queries to the ticket page: the macros (one), and the sending
mailbox of an email ticket or the conversation of a social ticket (one, or two when the ticket has
none of its own and the tenant's default is looked up). A phone ticket adds none besides the macros.
"""

from __future__ import annotations

from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from care.accounts.models import User
from care.connectors.email.outbound import reply_mailbox
from care.connectors.social.outbound import reply_conversation
from care.core.channels import Channel
from care.core.errors import BusinessRuleViolation
from care.desk.access import actor, desk_user_required, wants_json
from care.macros.placeholders import Values, render
from care.macros.selectors import macro_for_ticket, macro_text, macros_for_ticket
from care.mentions.selectors import mention_suggestions
from care.mentions.services import mentions_mark_read
from care.tickets.models import Ticket
from care.tickets.selectors import access_ticket

# Email attachments: what SMTP servers commonly accept (many refuse messages over 25 MB, and base64
# makes a file a third larger), and what an agent sensibly attaches to one answer.
MAX_ATTACHMENTS = 10
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_ATTACHMENTS_TOTAL_BYTES = 25 * 1024 * 1024
# The macro list shows the start of each text under its title.
MACRO_PREVIEW_CHARS = 120
# A suggestion query longer than any name or address is not a query.
MAX_QUERY_CHARS = 100


def _megabytes(size: int) -> str:
    return f"{size // (1024 * 1024)} MB"


def _voice(ticket: Ticket) -> dict[str, Any]:
    """How a reply leaves: the channel, and for email the mailbox (sender, address, signature), for
    social the platform and account; ``error`` says why a reply cannot go out now."""
    if ticket.channel == Channel.EMAIL:
        try:
            mailbox = reply_mailbox(ticket)
        except BusinessRuleViolation as exc:
            return {"kind": "email", "error": " ".join(exc.messages)}
        return {
            "kind": "email",
            "sender": mailbox.sender_name or ticket.tenant.name,
            "address": mailbox.address,
            "signature": bool(mailbox.signature.strip()),
        }
    if ticket.channel == Channel.SOCIAL:
        try:
            conversation = reply_conversation(ticket)
        except BusinessRuleViolation as exc:
            return {"kind": "social", "error": " ".join(exc.messages)}
        account = conversation.account
        return {"kind": "social", "platform": account.get_platform_display(), "account": account.name}
    return {"kind": "phone"}


def composer_context(*, ticket: Ticket, user: User) -> dict[str, Any]:
    """The template context this part adds to the ticket page (``ticket`` has tenant and customer)."""
    values = Values(ticket=ticket, agent=user)
    macros = []
    texts = {}
    for macro in macros_for_ticket(ticket=ticket):
        text = render(macro.body, values)
        texts[str(macro.pk)] = text
        macros.append(
            {
                "id": macro.pk,
                "title": macro.title,
                "shortcut": macro.shortcut,
                "preview": " ".join(text.split())[:MACRO_PREVIEW_CHARS],
            }
        )
    is_email = ticket.channel == Channel.EMAIL
    return {
        "composer": {
            "voice": _voice(ticket),
            "macros": macros,
            "attachments": is_email,
            "limits": {
                "count": MAX_ATTACHMENTS,
                "each": _megabytes(MAX_ATTACHMENT_BYTES),
                "total": _megabytes(MAX_ATTACHMENTS_TOTAL_BYTES),
            },
            "config": {
                "macros": texts,
                "limits": {
                    "count": MAX_ATTACHMENTS,
                    "each": MAX_ATTACHMENT_BYTES,
                    "total": MAX_ATTACHMENTS_TOTAL_BYTES,
                },
                "urls": {
                    "mentions": reverse("desk:mention_suggestions", kwargs={"reference": ticket.reference})
                },
                "text": {
                    "no_macros": _("No macro matches."),
                    "no_people": _("Nobody of that name may see this client."),
                    "too_many": _("Attach at most %(count)d files.") % {"count": MAX_ATTACHMENTS},
                    "too_big": _("%(name)s is larger than %(size)s.")
                    % {"name": "%(name)s", "size": _megabytes(MAX_ATTACHMENT_BYTES)},
                    "too_big_total": _("The attachments are larger than %(size)s together.")
                    % {"size": _megabytes(MAX_ATTACHMENTS_TOTAL_BYTES)},
                    "note_mode": _("Internal note: only colleagues see it. Type @ to mention one."),
                },
            },
        }
    }


# --- attachments ------------------------------------------------------------------------------------


def posted_attachments(request: HttpRequest, ticket: Ticket) -> list[tuple[str, bytes, str]]:
    """The files of a reply's form as ``(filename, content, content type)``, checked against the
    limits and the channel; BusinessRuleViolation with the reason otherwise."""
    files: list[UploadedFile] = request.FILES.getlist("attachments")
    files = [upload for upload in files if upload.name or upload.size]
    if not files:
        return []
    if ticket.channel != Channel.EMAIL:
        raise BusinessRuleViolation(
            _("Only email replies carry attachments; remove the files to reply on %(channel)s.")
            % {"channel": ticket.get_channel_display()}
        )
    if len(files) > MAX_ATTACHMENTS:
        raise BusinessRuleViolation(_("Attach at most %(count)d files.") % {"count": MAX_ATTACHMENTS})
    total = 0
    for upload in files:
        size = upload.size or 0
        if size > MAX_ATTACHMENT_BYTES:
            raise BusinessRuleViolation(
                _("%(name)s is larger than %(size)s.")
                % {"name": upload.name, "size": _megabytes(MAX_ATTACHMENT_BYTES)}
            )
        total += size
    if total > MAX_ATTACHMENTS_TOTAL_BYTES:
        raise BusinessRuleViolation(
            _("The attachments are larger than %(size)s together.")
            % {"size": _megabytes(MAX_ATTACHMENTS_TOTAL_BYTES)}
        )
    return [
        (upload.name or "attachment", upload.read(), upload.content_type or "application/octet-stream")
        for upload in files
    ]


def refuse_attachments_on_notes(request: HttpRequest) -> None:
    if any(upload.name or upload.size for upload in request.FILES.getlist("attachments")):
        raise BusinessRuleViolation(
            _("Internal notes carry no attachments; remove the files or send them with a reply.")
        )


# --- views ------------------------------------------------------------------------------------------


@require_GET
@desk_user_required
def macro_render(request: HttpRequest, reference: str, macro_id: int) -> JsonResponse:
    """One macro's text for this ticket and agent: 404 for a macro of another tenant, an inactive
    one or one in another language, as for a ticket the user may not see."""
    ticket = access_ticket(request.user, reference)
    macro = macro_for_ticket(ticket=ticket, macro_id=macro_id)
    if macro is None:
        raise Http404("No such macro.")
    return JsonResponse(
        {
            "id": macro.pk,
            "title": macro.title,
            "text": macro_text(macro=macro, ticket=ticket, agent=actor(request)),
        }
    )


@require_GET
@desk_user_required
def mention_people(request: HttpRequest, reference: str) -> JsonResponse:
    """Colleagues to mention in a note on this ticket (``?q=`` the start of an address or part of a
    name): only staff who may see the ticket's tenant."""
    ticket = access_ticket(request.user, reference)
    query = request.GET.get("q", "")[:MAX_QUERY_CHARS]
    people = mention_suggestions(tenant_id=ticket.tenant_id, query=query, exclude_user_id=request.user.pk)
    return JsonResponse({"people": people})


@require_POST
@desk_user_required
def mentions_read(request: HttpRequest) -> HttpResponse:
    """Mark my mentions read: ``mention`` (repeated) for some, ``all=1`` for every one."""
    user = actor(request)
    if request.POST.get("all") == "1":
        ids = None
    else:
        raw = request.POST.getlist("mention")
        if not raw or not all(value.isascii() and value.isdigit() for value in raw):
            if wants_json(request):
                return JsonResponse({"error": _("Say which mentions to mark read.")}, status=400)
            return _back_to_work()
        ids = [int(value) for value in raw]
    count = mentions_mark_read(user=user, mention_ids=ids)
    if wants_json(request):
        return JsonResponse({"read": count})
    return _back_to_work()


def _back_to_work() -> HttpResponse:
    response = redirect("desk:my_work")
    response.status_code = 303
    return response
