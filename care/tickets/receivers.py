"""What tickets does when lower apps announce something."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from care.contacts.signals import customers_merged
from care.tickets.services import tickets_move_to_customer


@receiver(customers_merged, dispatch_uid="tickets_follow_merged_customer")
def move_tickets_of_merged_customer(
    sender: Any, *, source: Any, target: Any, actor: Any = None, **_: Any
) -> None:
    tickets_move_to_customer(source=source, target=target, actor=actor)
