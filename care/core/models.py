"""Shared model bases: timestamps and the tenant-owned base with its visibility rule.

Tenant isolation is one mechanism: every tenant-owned model's manager offers ``visible_to(user)``,
which keeps the rows of the tenants that user may see. The user decides which tenants those are
(``care.accounts.models.User.visible_tenant_ids``); this module only applies the answer, so that it
needs no import from the apps above it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar

from django.db import models
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from collections.abc import Collection


class TenantViewer(Protocol):
    """What a user must answer for tenant scoping. Anonymous users answer "nothing"."""

    is_authenticated: bool

    @property
    def sees_all_tenants(self) -> bool: ...

    def visible_tenant_ids(self) -> Collection[int]: ...


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        abstract = True


_M = TypeVar("_M", bound=models.Model)


class TenantOwnedQuerySet(models.QuerySet[_M]):
    def visible_to(self, user: Any) -> Self:
        """Rows of the tenants ``user`` may see; none for anonymous or inactive users."""
        if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
            return self.none()
        if user.sees_all_tenants:
            return self
        return self.filter(**{f"{self._tenant_column()}__in": list(user.visible_tenant_ids())})

    def for_tenant(self, tenant_id: int) -> Self:
        return self.filter(**{self._tenant_column(): tenant_id})

    def _tenant_column(self) -> str:
        # The Tenant model scopes on its own primary key; everything else on its tenant column.
        return "id" if self.model._meta.label == "tenants.Tenant" else "tenant_id"


class TenantOwned(TimeStampedModel):
    """Base of every row that belongs to one client company. Its indexes should start with tenant."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, verbose_name=_("tenant"))

    objects: Any = TenantOwnedQuerySet.as_manager()

    class Meta:
        abstract = True
