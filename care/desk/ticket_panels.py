"""What the ticket page shows beside the timeline: the customer panel and the tenant's guidelines.
(Issue 9: filled in by its own part.)"""

from __future__ import annotations

from typing import Any

from care.accounts.models import User
from care.tickets.models import Ticket


def panels_context(*, ticket: Ticket, user: User) -> dict[str, Any]:
    """The template context this part adds to the ticket page."""
    return {}
