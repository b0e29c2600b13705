"""The REST API. Each capability adds its endpoints here under its own prefix."""

from __future__ import annotations

from typing import Any

urlpatterns: list[Any] = []
