"""Writing macros. The admin saves them through its form (which runs the same ``clean``)."""

from __future__ import annotations

from care.accounts.models import User
from care.macros.models import Macro
from care.tenants.models import Tenant


def macro_create(
    *,
    tenant: Tenant,
    title: str,
    body: str,
    language: str = "",
    shortcut: str = "",
    position: int = 0,
    is_active: bool = True,
    created_by: User | None = None,
) -> Macro:
    """A new macro; unknown placeholders, a bad language or a duplicate title raise ValidationError."""
    macro = Macro(
        tenant=tenant,
        title=title.strip(),
        body=body.replace("\r\n", "\n"),
        language=language.strip(),
        shortcut=shortcut.strip(),
        position=position,
        is_active=is_active,
        created_by=created_by,
    )
    macro.full_clean()
    macro.save()
    return macro
