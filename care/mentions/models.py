"""@mentions in internal notes: who was mentioned where, and whether they have read it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from care.core.models import TenantOwned


class Mention(TenantOwned):
    """A colleague named in an internal note (``@alice``); shown on their My work until read."""

    interaction = models.ForeignKey(
        "tickets.Interaction", on_delete=models.CASCADE, related_name="mentions", verbose_name=_("note")
    )
    ticket = models.ForeignKey(
        "tickets.Ticket", on_delete=models.CASCADE, related_name="+", verbose_name=_("ticket")
    )
    mentioned = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="mentions",
        verbose_name=_("mentioned user"),
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("written by"),
    )
    read_at = models.DateTimeField(_("read"), null=True, blank=True)

    class Meta:
        verbose_name = _("mention")
        verbose_name_plural = _("mentions")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["interaction", "mentioned"], name="mentions_once_per_note")
        ]
        indexes = [
            # My work: a user's unread mentions, newest first.
            models.Index(
                fields=["mentioned", "-created_at"],
                name="mentions_unread",
                condition=models.Q(read_at__isnull=True),
            ),
            models.Index(fields=["tenant", "created_at"], name="mentions_tenant_time"),
        ]

    def __str__(self) -> str:
        return f"@{self.mentioned} · {self.ticket_id}"
