"""Ticket statuses and the transitions allowed between them: the one place this rule lives."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from care.core.errors import BusinessRuleViolation


class Status(models.TextChoices):
    NEW = "new", _("New")
    OPEN = "open", _("Open")
    PENDING = "pending", _("Pending (waiting on the customer)")
    ON_HOLD = "on_hold", _("On hold (waiting on a third party)")
    SOLVED = "solved", _("Solved")
    CLOSED = "closed", _("Closed")


# Statuses in which a ticket waits for an agent: what queues show.
ACTIONABLE = (Status.NEW, Status.OPEN)
# Statuses in which a ticket is not finished.
UNRESOLVED = (Status.NEW, Status.OPEN, Status.PENDING, Status.ON_HOLD)

_WORKING = {Status.OPEN, Status.PENDING, Status.ON_HOLD, Status.SOLVED, Status.CLOSED}
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.NEW: frozenset(_WORKING),
    Status.OPEN: frozenset(_WORKING - {Status.OPEN}),
    Status.PENDING: frozenset(_WORKING - {Status.PENDING}),
    Status.ON_HOLD: frozenset(_WORKING - {Status.ON_HOLD}),
    # A solved ticket reopens when the customer answers, or closes for good.
    Status.SOLVED: frozenset({Status.OPEN, Status.CLOSED}),
    # Closed is final: a new contact about it opens a new, linked ticket.
    Status.CLOSED: frozenset(),
}


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


def check_transition(current: str, target: str) -> None:
    """Raise BusinessRuleViolation with a readable message if ``current -> target`` is not allowed."""
    if target not in Status.values:
        raise BusinessRuleViolation(gettext("%(status)s is not a ticket status.") % {"status": target})
    if not can_transition(current, target):
        allowed = ", ".join(str(Status(s).label) for s in sorted(TRANSITIONS.get(current, ())))
        raise BusinessRuleViolation(
            gettext("A ticket cannot go from %(current)s to %(target)s. Allowed: %(allowed)s.")
            % {
                "current": Status(current).label,
                "target": Status(target).label,
                "allowed": allowed or gettext("none, the ticket is closed"),
            }
        )
