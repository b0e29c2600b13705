"""Signals of the SLA engine. ``sla_event_recorded`` (kwargs: event) is sent once per warning or breach
after its actions were done; the realtime layer publishes it to the assignee and the supervisors."""

from __future__ import annotations

from django.dispatch import Signal

sla_event_recorded = Signal()
