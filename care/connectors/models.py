"""What arrives from and leaves through the outside world.

``InboundMessage`` is the store-first record of everything that arrives (raw bytes, before any
parsing); ``OutboundDelivery`` tracks each message Care sends; ``Mailbox`` is a tenant's email
address. Provider sub-packages (``email/``, later ``phone/``, ``meta/``…) parse and send.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from care.connectors.social.base import Credentials
from care.contacts.identities import SocialPlatform
from care.core.channels import Channel
from care.core.languages import validate_language_code
from care.core.models import TenantOwned
from care.core.secrets import EncryptedTextField
from care.tickets.models import Priority


def new_inbound_token() -> str:
    return secrets.token_urlsafe(32)


class TicketDefaults(TenantOwned):
    """What a way in (a mailbox, a social account) gives the tickets it opens."""

    default_team = models.ForeignKey(
        "accounts.Team",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("default team"),
    )
    default_language = models.CharField(
        _("default language"),
        max_length=8,
        blank=True,
        validators=[validate_language_code],
        help_text=_("Used when the language of a message cannot be detected; else the tenant's default."),
    )
    default_priority = models.PositiveSmallIntegerField(
        _("default priority"), choices=Priority.choices, default=Priority.NORMAL
    )

    class Meta:
        abstract = True


class Mailbox(TicketDefaults):
    """An address of one tenant that customers write to, and how its mail reaches Care."""

    class Delivery(models.TextChoices):
        PUSH = "push", _("Pushed to Care (HTTP or a mail-server pipe)")
        IMAP = "imap", _("Fetched from an IMAP account")

    name = models.CharField(_("name"), max_length=200)
    address = models.EmailField(_("address"), unique=True)
    delivery = models.CharField(
        _("mail arrives by"), max_length=10, choices=Delivery.choices, default=Delivery.PUSH
    )
    inbound_token = models.CharField(
        _("inbound token"),
        max_length=64,
        unique=True,
        default=new_inbound_token,
        help_text=_("Secret in the URL /inbound/email/<token>/ that mail servers post raw messages to."),
    )
    imap_host = models.CharField(_("IMAP host"), max_length=255, blank=True)
    imap_port = models.PositiveIntegerField(_("IMAP port"), default=993)
    imap_use_ssl = models.BooleanField(_("IMAP over TLS"), default=True)
    imap_username = models.CharField(_("IMAP user"), max_length=255, blank=True)
    imap_password = models.CharField(_("IMAP password"), max_length=255, blank=True)
    imap_folder = models.CharField(_("IMAP folder"), max_length=255, default="INBOX")
    imap_processed_folder = models.CharField(
        _("move processed mail to"),
        max_length=255,
        blank=True,
        help_text=_("Empty: leave processed mail in the folder, flagged as seen and $CareProcessed."),
    )
    imap_uidvalidity = models.BigIntegerField(_("IMAP UIDVALIDITY"), null=True, blank=True, editable=False)
    imap_last_uid = models.BigIntegerField(_("last IMAP UID fetched"), default=0, editable=False)
    last_polled_at = models.DateTimeField(_("last polled"), null=True, blank=True, editable=False)
    last_poll_error = models.TextField(_("last polling error"), blank=True, editable=False)
    sender_name = models.CharField(_("sender name"), max_length=200, blank=True)
    signature = models.TextField(_("signature"), blank=True)
    auto_acknowledge = models.BooleanField(
        _("acknowledge new tickets"),
        default=False,
        help_text=_(
            "Send the customer an acknowledgement with the ticket reference (never to auto-replies)."
        ),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("mailbox")
        verbose_name_plural = _("mailboxes")
        ordering = ["tenant", "address"]
        indexes = [models.Index(fields=["tenant", "is_active"], name="connectors_mailbox_tenant")]

    def __str__(self) -> str:
        return f"{self.name} <{self.address}>"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.address = self.address.lower()
        super().save(*args, **kwargs)


class InboundStatus(models.TextChoices):
    RECEIVED = "received", _("Received, not yet processed")
    PROCESSED = "processed", _("Processed")
    IGNORED = "ignored", _("Ignored (bounce or loop)")
    FAILED = "failed", _("Failed")


class InboundSource(models.TextChoices):
    HTTP = "http", _("HTTP")
    IMAP = "imap", _("IMAP")
    CLI = "cli", _("Command line or mail-server pipe")
    WEBHOOK = "webhook", _("Webhook")


class InboundMessage(TenantOwned):
    """Raw bytes of something that arrived, stored before any parsing. Nothing is ever dropped."""

    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    provider = models.CharField(_("provider"), max_length=30, help_text=_("email, whatsapp, telegram, …"))
    source = models.CharField(_("arrived by"), max_length=10, choices=InboundSource.choices)
    mailbox = models.ForeignKey(
        Mailbox,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="inbound_messages",
        verbose_name=_("mailbox"),
    )
    raw = models.BinaryField(_("raw bytes"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    size = models.PositiveIntegerField(_("size in bytes"))
    source_ref = models.CharField(
        _("source reference"), max_length=300, blank=True, help_text=_("File name, IMAP UID, request id.")
    )
    received_at = models.DateTimeField(_("received"), default=timezone.now)
    status = models.CharField(
        _("status"), max_length=12, choices=InboundStatus.choices, default=InboundStatus.RECEIVED
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    error = models.TextField(_("error"), blank=True)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)
    external_id = models.CharField(_("external id"), max_length=500, blank=True)
    ticket = models.ForeignKey(
        "tickets.Ticket",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("ticket"),
    )
    interaction = models.ForeignKey(
        "tickets.Interaction",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("interaction"),
    )
    outcome = models.CharField(
        _("outcome"), max_length=20, blank=True, help_text=_("created, appended, duplicate, ignored")
    )
    summary = models.JSONField(_("summary"), default=dict, blank=True)

    class Meta:
        verbose_name = _("inbound message")
        verbose_name_plural = _("inbound messages")
        ordering = ["-received_at"]
        constraints = [
            # The same bytes delivered twice (a retried POST, a re-read file) are stored once.
            models.UniqueConstraint(
                fields=["tenant", "provider", "sha256"], name="connectors_inbound_unique_bytes"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "-received_at"], name="connectors_inbound_tenant_time"),
            models.Index(fields=["status", "received_at"], name="connectors_inbound_status"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.sha256[:12]} ({self.get_status_display()})"


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    READ = "read", _("Read")
    FAILED = "failed", _("Failed")


class OutboundDelivery(TenantOwned):
    """The sending of one outbound interaction through its channel, with the provider's answers."""

    interaction = models.OneToOneField(
        "tickets.Interaction",
        on_delete=models.CASCADE,
        related_name="delivery",
        verbose_name=_("interaction"),
    )
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    mailbox = models.ForeignKey(
        Mailbox,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="deliveries",
        verbose_name=_("mailbox"),
    )
    social_account = models.ForeignKey(
        "connectors.SocialAccount",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="deliveries",
        verbose_name=_("social account"),
    )
    recipient = models.CharField(_("recipient"), max_length=320)
    message_id = models.CharField(_("message id"), max_length=500, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed"), null=True, blank=True)
    payload = models.JSONField(
        _("payload"),
        default=dict,
        blank=True,
        help_text=_("What to send besides the interaction's text: a social reply's template or media."),
    )

    class Meta:
        verbose_name = _("outbound delivery")
        verbose_name_plural = _("outbound deliveries")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant", "status"], name="connectors_delivery_status"),
            models.Index(fields=["message_id"], name="connectors_delivery_msgid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} → {self.recipient} ({self.get_status_display()})"


class SocialAccount(TicketDefaults):
    """A tenant's presence on a social or messaging platform that customers write to: a WhatsApp
    number, a Facebook page, an Instagram account, a Telegram bot, an X account, or any platform
    speaking Care's signed JSON. Secrets are stored encrypted and never shown again (docs/social.md).
    """

    platform = models.CharField(_("platform"), max_length=20, choices=SocialPlatform.choices)
    name = models.CharField(_("name"), max_length=200)
    account_id = models.CharField(
        _("account id"),
        max_length=100,
        help_text=_(
            "The platform's id of this account: WhatsApp phone-number id, Facebook page id, Instagram "
            "account id, Telegram bot id, X user id."
        ),
    )
    inbound_token = models.CharField(
        _("inbound token"),
        max_length=64,
        unique=True,
        default=new_inbound_token,
        help_text=_("Secret in the webhook URL /inbound/social/<platform>/<token>/."),
    )
    app_secret = EncryptedTextField(
        _("app secret"),
        blank=True,
        help_text=_("Signs the platform's webhooks (Meta app secret, X consumer secret)."),
    )
    verify_token = EncryptedTextField(
        _("verify token"),
        blank=True,
        help_text=_("Meta's hub.verify_token, or Telegram's secret token header."),
    )
    access_token = EncryptedTextField(
        _("access token"),
        blank=True,
        help_text=_("Sends replies and fetches media (page, system-user or bot token)."),
    )
    api_base = models.URLField(
        _("API base URL"), blank=True, help_text=_("Empty: the platform's public API. Set for a sandbox.")
    )
    is_active = models.BooleanField(_("active"), default=True)
    last_inbound_at = models.DateTimeField(_("last message in"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("social account")
        verbose_name_plural = _("social accounts")
        ordering = ["tenant", "platform", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "account_id"], name="connectors_social_account_unique"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "platform"], name="connectors_social_tenant")]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_platform_display()})"

    def credentials(self) -> Credentials:
        return Credentials(
            account_id=self.account_id,
            app_secret=self.app_secret,
            verify_token=self.verify_token,
            access_token=self.access_token,
            api_base=self.api_base,
        )


class SocialConversation(TenantOwned):
    """One customer's thread with one social account: where their next message goes (the open
    ticket) and when they last wrote (the platform's reply window counts from then)."""

    account = models.ForeignKey(
        SocialAccount,
        on_delete=models.PROTECT,
        related_name="conversations",
        verbose_name=_("social account"),
    )
    identity = models.ForeignKey(
        "contacts.Identity", on_delete=models.PROTECT, related_name="+", verbose_name=_("customer identity")
    )
    sender_id = models.CharField(_("sender id"), max_length=200)
    conversation_id = models.CharField(_("platform conversation id"), max_length=200, blank=True)
    ticket = models.ForeignKey(
        "tickets.Ticket",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("current ticket"),
    )
    last_inbound_at = models.DateTimeField(_("customer last wrote"), null=True, blank=True)

    class Meta:
        verbose_name = _("social conversation")
        verbose_name_plural = _("social conversations")
        ordering = ["-last_inbound_at"]
        constraints = [
            models.UniqueConstraint(fields=["account", "sender_id"], name="connectors_social_conv_unique"),
        ]
        indexes = [
            models.Index(fields=["tenant", "last_inbound_at"], name="connectors_social_conv_recent"),
            models.Index(fields=["ticket"], name="connectors_social_conv_ticket"),
        ]

    def __str__(self) -> str:
        return f"{self.account} ← {self.sender_id}"
