"""What an agent does to a ticket from its page: status, priority, tags, assignment, merge and link.
(Issue 9: filled in by its own part.)"""

from __future__ import annotations

from typing import Any

from care.accounts.models import User
from care.tickets.models import Ticket


def actions_context(*, ticket: Ticket, user: User) -> dict[str, Any]:
    """The template context this part adds to the ticket page."""
    return {}
