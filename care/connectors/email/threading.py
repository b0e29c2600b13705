"""Which ticket an inbound email belongs to. The rules, in order (docs/email.md repeats them):

1. **Headers**: any id in In-Reply-To, then References (newest first), that Care stored as the
   Message-ID of an email interaction of this tenant, inbound or outbound.
2. **Reference in the subject**: ``[SWN-1042]`` (or ``SWN-1042`` after Re:/AW:/…) with this
   tenant's code; a ticket merged into another stands for the one it was merged into.
3. **Fallback**: the same customer's newest unresolved email ticket with the same subject (after
   dropping reply and forward prefixes) updated within the last 14 days: mail clients that drop
   the threading headers still land on the ticket they answer.
Otherwise the message opens a new ticket.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.utils import timezone

from care.core.channels import Channel
from care.tickets.models import Interaction, Ticket, TicketLink
from care.tickets.status import UNRESOLVED

if TYPE_CHECKING:
    from care.contacts.models import Customer
    from care.tenants.models import Tenant

FALLBACK_WINDOW = dt.timedelta(days=14)
# A merged ticket's successor may itself have been merged: follow at most this many merges.
MAX_MERGE_HOPS = 5
_PREFIXES = re.compile(
    r"^\s*((re|aw|antw|sv|vs|wg|fw|fwd|tr|rv|enc|doorst|ref)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE
)
_REFERENCE = re.compile(r"\[?\b([A-Z][A-Z0-9]{1,9})-(\d{1,9})\b\]?")


def normalise_subject(subject: str) -> str:
    """The subject without Re:/AW:/Fwd:/WG:… prefixes and extra whitespace, lower-cased."""
    return " ".join(_PREFIXES.sub("", subject).split()).lower()


def _merged_into(ticket: Ticket) -> Ticket:
    """The ticket ``ticket`` was (in the end) merged into, or ``ticket`` itself."""
    for _hop in range(MAX_MERGE_HOPS):
        link = (
            TicketLink.objects.filter(source=ticket, kind=TicketLink.Kind.MERGED)
            .select_related("target__tenant")
            .first()
        )
        if link is None:
            break
        ticket = link.target
    return ticket


def find_ticket(
    *, tenant: Tenant, message_ids: Sequence[str], subject: str, customer: Customer | None
) -> tuple[Ticket | None, str]:
    """The ticket the message continues and the rule that found it ("headers", "subject", "fallback")."""
    if message_ids:
        by_id = dict(
            Interaction.objects.filter(
                tenant=tenant, channel=Channel.EMAIL, external_id__in=list(message_ids)
            ).values_list("external_id", "ticket_id")
        )
        for message_id in message_ids:
            if message_id in by_id:
                return Ticket.objects.select_related("tenant").get(pk=by_id[message_id]), "headers"
    for code, number in _REFERENCE.findall(subject.upper()):
        if code == tenant.code:
            ticket = Ticket.objects.select_related("tenant").filter(tenant=tenant, number=int(number)).first()
            if ticket is not None:
                return _merged_into(ticket), "subject"
    if customer is not None and normalise_subject(subject):
        wanted = normalise_subject(subject)
        recent = (
            Ticket.objects.select_related("tenant")
            .filter(
                tenant=tenant,
                customer=customer,
                channel=Channel.EMAIL,
                status__in=list(UNRESOLVED),
                updated_at__gte=timezone.now() - FALLBACK_WINDOW,
            )
            .order_by("-updated_at")[:20]
        )
        for ticket in recent:
            if normalise_subject(ticket.subject) == wanted:
                return ticket, "fallback"
    return None, ""
