"""Which adapter answers ``/inbound/social/<slug>/<token>/``: URL slug -> adapter, resolved lazily.

Adapters are named as ``"module:attribute"`` and imported on first use, so that an adapter module
that is not installed (or not written yet) only makes its own URL answer 404, and importing this
registry never imports every platform's code. An adapter module that exists but fails to import is
a bug and raises.
"""

from __future__ import annotations

import importlib
import threading
from typing import cast

from care.connectors.social.base import Adapter
from care.contacts.identities import SocialPlatform

# URL slug -> where the adapter instance lives.
ADAPTERS: dict[str, str] = {
    "whatsapp": "care.connectors.social.whatsapp:ADAPTER",
    "messenger": "care.connectors.social.meta:MESSENGER",
    "instagram": "care.connectors.social.meta:INSTAGRAM",
    "telegram": "care.connectors.social.telegram:ADAPTER",
    "x": "care.connectors.social.x:ADAPTER",
    "generic": "care.connectors.social.generic:ADAPTER",
}

# URL slug -> the SocialAccount.platform it serves (the generic adapter serves "other").
PLATFORMS: dict[str, str] = {
    "whatsapp": SocialPlatform.WHATSAPP,
    "messenger": SocialPlatform.MESSENGER,
    "instagram": SocialPlatform.INSTAGRAM,
    "telegram": SocialPlatform.TELEGRAM,
    "x": SocialPlatform.X,
    "generic": SocialPlatform.OTHER,
}

PROVIDER_PREFIX = "social-"
# InboundMessage.provider of each slug's stored webhooks (care.connectors.dispatch maps them).
PROVIDERS: tuple[str, ...] = tuple(f"{PROVIDER_PREFIX}{slug}" for slug in ADAPTERS)

_resolved: dict[str, Adapter] = {}
_lock = threading.Lock()


def adapter_for(slug: str) -> Adapter | None:
    """The adapter behind URL ``slug``, or None when the slug is unknown or its module is absent."""
    adapter = _resolved.get(slug)
    if adapter is not None:
        return adapter
    target = ADAPTERS.get(slug)
    if target is None:
        return None
    module_name, _sep, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            return None  # not installed (yet): that one platform is unavailable
        raise
    adapter = cast(Adapter, getattr(module, attribute, None))
    if adapter is None:
        return None
    with _lock:
        _resolved[slug] = adapter
    return adapter


def slug_for(platform: str) -> str:
    """The URL slug of a ``SocialAccount.platform`` ("" for a platform without an adapter, e.g. sms)."""
    for slug, served in PLATFORMS.items():
        if served == platform:
            return slug
    return ""


def provider_for(slug: str) -> str:
    return f"{PROVIDER_PREFIX}{slug}"


def slug_of_provider(provider: str) -> str:
    """``social-whatsapp`` -> ``whatsapp``; "" when ``provider`` is not a social one."""
    if not provider.startswith(PROVIDER_PREFIX):
        return ""
    slug = provider[len(PROVIDER_PREFIX) :]
    return slug if slug in ADAPTERS else ""
