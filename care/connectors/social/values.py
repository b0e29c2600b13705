"""Reading untrusted webhook JSON without trusting its types: each helper answers with the type the
parser needs or an empty value, never raises. Shared by the adapters (a hidden sample with a number
where a string was expected must not become a 500)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A request header by its lower-case ``name``, whatever the case of the stored keys."""
    if name in headers:
        return headers[name]
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def platform_id(value: Any) -> str | None:
    """A platform's id (an integer, possibly negative, or a non-empty string) as a string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
