"""A short per-process memo for configuration read on hot paths (a ringing call waits for the answer).

Service hours and routing queues change a few times a year but were read on every routed call (four
queries of a budget of ten milliseconds). A ``ConfigMemo`` keeps what a loader returned for
``settings.CONFIG_MEMO_SECONDS`` (5 s by default). A save or delete of the underlying models in this
process clears it at once (the owning app connects the signals); another process sees the change
within that many seconds. Tests start each test with every memo cleared (tests/conftest.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from django.conf import settings

T = TypeVar("T")

_MEMOS: list[ConfigMemo[Any]] = []


class ConfigMemo(Generic[T]):
    def __init__(self, name: str) -> None:
        self.name = name
        self._values: dict[Hashable, tuple[float, T]] = {}
        _MEMOS.append(self)

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        """The memoised value of ``key``, loaded (and kept) when missing or older than the limit."""
        now = time.monotonic()
        kept = self._values.get(key)
        if kept is not None and kept[0] > now:
            return kept[1]
        value = load()
        seconds = settings.CONFIG_MEMO_SECONDS
        if seconds > 0:
            self._values[key] = (now + seconds, value)
        return value

    def clear(self, *_args: Any, **_kwargs: Any) -> None:
        """Forget everything (usable as a signal receiver)."""
        self._values.clear()


def clear_all_memos() -> None:
    for memo in _MEMOS:
        memo.clear()
