"""Signals other apps subscribe to.

``ticket_changed`` is sent for every audited change (each TicketEvent written by the services), inside
the changing transaction and after the row was saved, so handlers act atomically with the change
(routing subscribes to enqueue new work and to drop work that no longer waits). Handlers must not
wait on locks other workers may hold while waiting for this ticket: use ``skip_locked``.
"""

from __future__ import annotations

from django.dispatch import Signal

# kwargs: ticket (saved, locked by the sender), event (the TicketEvent), actor (user or None)
ticket_changed = Signal()

# kwargs: interaction (saved), ticket, counts_as_response (False for automatic messages such as an
# acknowledgement). Sent once per stored interaction, not for an idempotent repeat.
interaction_added = Signal()
