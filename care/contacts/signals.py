"""Signals other apps subscribe to. Sent inside the merging transaction, so handlers move their rows
atomically with the merge (tickets subscribes to re-point tickets and interactions)."""

from __future__ import annotations

from django.dispatch import Signal

# kwargs: source (the customer merged away), target (the survivor), actor (user or None)
customers_merged = Signal()
