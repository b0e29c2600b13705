"""End customers of a tenant and the identities (email, phone, social handle) they reach us by."""

from __future__ import annotations

from django.contrib.postgres.indexes import GinIndex
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from care.contacts.identities import IdentityKind, SocialPlatform, normalise_identity
from care.core.languages import validate_language_code
from care.core.models import TenantOwned


class Customer(TenantOwned):
    """A person who contacts one tenant. The same human writing to two tenants is two customers."""

    display_name = models.CharField(_("name"), max_length=200, blank=True)
    preferred_language = models.CharField(
        _("preferred language"), max_length=8, blank=True, validators=[validate_language_code]
    )
    notes = models.TextField(_("notes"), blank=True)
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="merged_customers",
        verbose_name=_("merged into"),
        help_text=_("Set when this customer was merged into another."),
    )

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["tenant", "display_name", "id"]
        indexes = [
            models.Index(fields=["tenant", "display_name"], name="contacts_customer_tenant_name"),
            GinIndex(fields=["display_name"], name="contacts_customer_name_trgm", opclasses=["gin_trgm_ops"]),
        ]

    def __str__(self) -> str:
        return self.display_name or _("Customer #%(id)s") % {"id": self.pk}


class Identity(TenantOwned):
    """A way to reach a customer. Normalised, and unique per tenant, kind and platform."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="identities", verbose_name=_("customer")
    )
    kind = models.CharField(_("kind"), max_length=10, choices=IdentityKind.choices)
    platform = models.CharField(
        _("platform"),
        max_length=20,
        choices=SocialPlatform.choices,
        blank=True,
        help_text=_("Only for social handles."),
    )
    value = models.CharField(_("value"), max_length=320)
    display_name = models.CharField(_("display name"), max_length=200, blank=True)
    is_primary = models.BooleanField(_("primary"), default=False)

    class Meta:
        verbose_name = _("identity")
        verbose_name_plural = _("identities")
        ordering = ["customer", "kind", "value"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "kind", "platform", "value"], name="contacts_identity_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(kind="social", platform__gt="")
                | (~models.Q(kind="social") & models.Q(platform="")),
                name="contacts_identity_platform_only_for_social",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "customer"], name="contacts_identity_tenant_cust")]

    def __str__(self) -> str:
        prefix = f"{self.platform}:" if self.platform else ""
        return f"{prefix}{self.value}"

    def clean(self) -> None:
        super().clean()
        if self.customer_id and not self.tenant_id:
            self.tenant_id = self.customer.tenant_id
        if self.customer_id and self.customer.tenant_id != self.tenant_id:
            raise ValidationError({"customer": _("The customer belongs to another tenant.")})
        if self.kind != IdentityKind.SOCIAL and self.platform:
            raise ValidationError({"platform": _("Only social handles have a platform.")})
        region = self.tenant.holiday_country if self.tenant_id else None
        try:
            self.value = normalise_identity(
                self.kind, self.value, platform=self.platform, default_region=region
            )
        except ValidationError as exc:
            raise ValidationError({"value": exc.messages}) from None
