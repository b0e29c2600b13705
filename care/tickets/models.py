"""Tickets, their timeline of interactions with attachments, and the audit trail of every change.

Rules (status transitions, numbering, assignment checks) live in ``services.py`` and ``status.py``;
these models hold data and the invariants the database can enforce.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from care.core.channels import Channel
from care.core.languages import validate_language_code
from care.core.models import TenantOwned
from care.tickets.status import ACTIONABLE, Status


class Priority(models.IntegerChoices):
    LOW = 1, _("Low")
    NORMAL = 2, _("Normal")
    HIGH = 3, _("High")
    URGENT = 4, _("Urgent")


class Ticket(TenantOwned):
    """One customer matter of one tenant, across however many channels it touches."""

    number = models.PositiveIntegerField(_("number"), editable=False)
    customer = models.ForeignKey(
        "contacts.Customer", on_delete=models.PROTECT, related_name="tickets", verbose_name=_("customer")
    )
    channel = models.CharField(_("channel of origin"), max_length=20, choices=Channel.choices)
    subject = models.CharField(_("subject"), max_length=500)
    language = models.CharField(_("language"), max_length=8, validators=[validate_language_code])
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.NEW)
    priority = models.PositiveSmallIntegerField(
        _("priority"), choices=Priority.choices, default=Priority.NORMAL
    )
    assignee = models.ForeignKey(
        "accounts.Agent",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_tickets",
        verbose_name=_("assignee"),
    )
    team = models.ForeignKey(
        "accounts.Team",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tickets",
        verbose_name=_("team"),
    )
    tags = ArrayField(models.CharField(max_length=50), default=list, blank=True, verbose_name=_("tags"))
    sla_due_at = models.DateTimeField(
        _("next SLA due"),
        null=True,
        blank=True,
        help_text=_("The earliest running SLA target; kept by the SLA engine. Queues sort on it."),
    )
    status_changed_at = models.DateTimeField(_("status changed"), default=timezone.now)
    first_response_at = models.DateTimeField(_("first response"), null=True, blank=True)
    solved_at = models.DateTimeField(_("solved"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "number"], name="tickets_ticket_tenant_number_unique"),
        ]
        indexes = [
            # The agent queue: one tenant, one status, most urgent first (see selectors.ticket_queue).
            models.Index(
                "tenant",
                "status",
                models.F("sla_due_at").asc(nulls_last=True),
                models.F("priority").desc(),
                "created_at",
                "id",
                name="tickets_queue_by_status",
            ),
            # The same for everything that waits for an agent, without a sort over several statuses.
            models.Index(
                "tenant",
                models.F("sla_due_at").asc(nulls_last=True),
                models.F("priority").desc(),
                "created_at",
                "id",
                name="tickets_queue_actionable",
                condition=models.Q(status__in=[s.value for s in ACTIONABLE]),
            ),
            models.Index(fields=["tenant", "assignee", "status"], name="tickets_tenant_assignee"),
            models.Index(fields=["tenant", "customer", "-created_at"], name="tickets_tenant_customer"),
            models.Index(fields=["assignee", "status"], name="tickets_assignee_status"),
            # An agent's load per channel, which routing reads for every candidate of every decision.
            models.Index(
                fields=["assignee", "channel"],
                name="tickets_assignee_load",
                condition=models.Q(status__in=[s.value for s in ACTIONABLE]),
            ),
            GinIndex(fields=["tags"], name="tickets_tags_gin"),
            # Search checks one tenant's newest tickets (of a status) first (care.tickets.search).
            models.Index(fields=["tenant", "id"], name="tickets_tenant_id"),
            models.Index(fields=["tenant", "status", "id"], name="tickets_tenant_status_id"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.subject}"

    @property
    def reference(self) -> str:
        """Human reference such as ``ACME-1042``. Needs the tenant: select_related("tenant") in lists."""
        return f"{self.tenant.code}-{self.number}"

    @property
    def is_open(self) -> bool:
        return self.status not in (Status.SOLVED, Status.CLOSED)

    def clean(self) -> None:
        super().clean()
        if self.customer_id and self.tenant_id and self.customer.tenant_id != self.tenant_id:
            raise ValidationError({"customer": _("The customer belongs to another tenant.")})


class TicketLink(TenantOwned):
    """A relation between two tickets of one tenant, e.g. the follow-up of a closed ticket."""

    class Kind(models.TextChoices):
        FOLLOW_UP = "follow_up", _("Follow-up of")
        RELATED = "related", _("Related to")
        MERGED = "merged", _("Merged into")

    source = models.ForeignKey(
        Ticket, on_delete=models.CASCADE, related_name="links", verbose_name=_("ticket")
    )
    target = models.ForeignKey(
        Ticket, on_delete=models.CASCADE, related_name="linked_from", verbose_name=_("linked ticket")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)

    class Meta:
        verbose_name = _("ticket link")
        verbose_name_plural = _("ticket links")
        ordering = ["source", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["source", "target", "kind"], name="tickets_link_unique"),
            models.CheckConstraint(
                condition=~models.Q(source=models.F("target")), name="tickets_link_not_self"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "target"], name="tickets_link_tenant_target")]

    def __str__(self) -> str:
        return f"{self.source_id} {self.get_kind_display()} {self.target_id}"


class TicketCounter(models.Model):
    """The last ticket number handed out per tenant. Incremented with one atomic upsert."""

    tenant = models.OneToOneField(
        "tenants.Tenant", on_delete=models.CASCADE, primary_key=True, related_name="ticket_counter"
    )
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("ticket counter")
        verbose_name_plural = _("ticket counters")

    def __str__(self) -> str:
        return f"{self.tenant_id}: {self.last_number}"


class Direction(models.TextChoices):
    INBOUND = "inbound", _("From the customer")
    OUTBOUND = "outbound", _("To the customer")
    NOTE = "note", _("Internal note")


class Interaction(TenantOwned):
    """One entry of a ticket's timeline: a mail, a call, a message, or an internal note."""

    ticket = models.ForeignKey(
        Ticket, on_delete=models.CASCADE, related_name="interactions", verbose_name=_("ticket")
    )
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    direction = models.CharField(_("direction"), max_length=10, choices=Direction.choices)
    author_identity = models.ForeignKey(
        "contacts.Identity",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="interactions",
        verbose_name=_("customer identity"),
    )
    author_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="interactions",
        verbose_name=_("agent"),
    )
    body_text = models.TextField(_("text"), blank=True)
    body_html = models.TextField(_("HTML (sanitised)"), blank=True)
    full_text = models.TextField(
        _("full text"),
        blank=True,
        help_text=_(
            "The whole text as received, quoted history and signature included; body_text is what is new."
        ),
    )
    external_id = models.CharField(
        _("external id"),
        max_length=500,
        blank=True,
        help_text=_("The id the channel gave this message (Message-ID, call id, platform message id)."),
    )
    occurred_at = models.DateTimeField(_("occurred"), default=timezone.now)

    class Meta:
        verbose_name = _("interaction")
        verbose_name_plural = _("interactions")
        ordering = ["occurred_at", "id"]
        constraints = [
            # Ingestion is idempotent: the same channel message is stored once, whoever retries.
            models.UniqueConstraint(
                fields=["tenant", "channel", "external_id"],
                condition=~models.Q(external_id=""),
                name="tickets_interaction_external_id_unique",
            ),
            models.CheckConstraint(
                condition=~models.Q(direction="note") | models.Q(author_identity__isnull=True),
                name="tickets_note_not_from_customer",
            ),
        ]
        indexes = [
            models.Index(fields=["ticket", "occurred_at", "id"], name="tickets_interact_timeline"),
            models.Index(fields=["tenant", "occurred_at"], name="tickets_interact_tenant_time"),
        ]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.get_channel_display()} #{self.pk}"

    @property
    def author_label(self) -> str:
        if self.author_user_id:
            return str(self.author_user)
        if self.author_identity_id:
            return str(self.author_identity)
        return str(_("System"))


def attachment_path(instance: Attachment, filename: str) -> str:
    # Content-addressed, so the same file stored twice shares one path and names cannot collide.
    return f"attachments/{instance.tenant_id}/{instance.sha256[:2]}/{instance.sha256}"


class Attachment(TenantOwned):
    interaction = models.ForeignKey(
        Interaction, on_delete=models.CASCADE, related_name="attachments", verbose_name=_("interaction")
    )
    file = models.FileField(_("file"), upload_to=attachment_path, max_length=300)
    filename = models.CharField(_("file name"), max_length=255)
    content_type = models.CharField(_("content type"), max_length=255, default="application/octet-stream")
    size = models.PositiveBigIntegerField(_("size in bytes"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    content_id = models.CharField(
        _("content id"), max_length=255, blank=True, help_text=_("For inline cid: images.")
    )
    is_inline = models.BooleanField(_("inline"), default=False)

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        ordering = ["interaction", "id"]
        indexes = [
            models.Index(fields=["interaction"], name="tickets_attach_interaction"),
            models.Index(fields=["tenant", "sha256"], name="tickets_attachment_sha"),
        ]

    def __str__(self) -> str:
        return self.filename


class TicketEvent(TenantOwned):
    """Audit trail: who changed what on a ticket, when, with the values before and after."""

    class Kind(models.TextChoices):
        CREATED = "created", _("Created")
        STATUS = "status", _("Status changed")
        ASSIGNED = "assigned", _("Assignment changed")
        UPDATED = "updated", _("Fields changed")
        CUSTOMER_MERGED = "customer_merged", _("Customer merged")
        LINKED = "linked", _("Linked")
        MERGED = "merged", _("Merged")

    ticket = models.ForeignKey(
        Ticket, on_delete=models.CASCADE, related_name="events", verbose_name=_("ticket")
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="ticket_events",
        verbose_name=_("actor"),
    )
    kind = models.CharField(_("kind"), max_length=30, choices=Kind.choices)
    changes = models.JSONField(
        _("changes"),
        default=dict,
        blank=True,
        help_text=_('{"field": [before, after]} for each changed field.'),
    )

    class Meta:
        verbose_name = _("ticket event")
        verbose_name_plural = _("ticket events")
        ordering = ["ticket", "created_at", "id"]
        indexes = [models.Index(fields=["ticket", "created_at"], name="tickets_event_ticket_time")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.created_at:%Y-%m-%d %H:%M}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The audit trail is append-only: rows are written once and never edited.
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ValidationError(_("Audit events cannot be changed."))
        super().save(*args, **kwargs)
