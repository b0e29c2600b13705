"""The benchmark harness: a registry, a timer with warm-up, percentiles, and one JSON line per result.

Nothing here needs Django at import time, so the percentile maths and the output format can be tested
without a database; ``measure`` imports the query counter only when it runs.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TextIO, TypeVar

from django.conf import settings
from django.test import override_settings

if TYPE_CHECKING:
    from bench.datagen import Dataset

T = TypeVar("T")

# The fields every result line carries, in this order; benchmarks add their own after them.
RESULT_FIELDS = ("name", "n", "median_ms", "p95_ms", "p99_ms", "per_second", "queries", "rows")


@dataclass(frozen=True)
class RunOptions:
    quick: bool
    iterations: int
    warmup: int


@dataclass(frozen=True)
class Context:
    """What a benchmark gets: the run's options and the dataset loaded for it."""

    options: RunOptions
    dataset: Dataset


@dataclass
class Result:
    """One measured variant. ``samples_ns`` are the timed iterations only, warm-up excluded."""

    name: str
    samples_ns: Sequence[int]
    queries: int | None
    rows: int | None
    # Throughput only makes sense for repeatable operations; a one-off load reports null.
    has_throughput: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        if not self.samples_ns:
            raise ValueError(f"{self.name}: no timed iterations.")
        ms = [ns / 1_000_000 for ns in self.samples_ns]
        mean_ms = sum(ms) / len(ms)
        line: dict[str, Any] = {
            "name": self.name,
            "n": len(ms),
            "median_ms": _round(percentile(ms, 50)),
            "p95_ms": _round(percentile(ms, 95)),
            "p99_ms": _round(percentile(ms, 99)),
            "per_second": _round(1000 / mean_ms, 1) if self.has_throughput and mean_ms > 0 else None,
            "queries": self.queries,
            "rows": self.rows,
            "mean_ms": _round(mean_ms),
            "min_ms": _round(min(ms)),
            "max_ms": _round(max(ms)),
        }
        clashes = line.keys() & self.extra.keys()
        if clashes:
            raise ValueError(f"{self.name}: extra fields {sorted(clashes)} would overwrite measured ones.")
        return line | self.extra

    def to_json(self) -> str:
        # No indent: one result is exactly one line, so `grep`/`jq -c` and CI logs can take it apart.
        return json.dumps(self.as_dict(), ensure_ascii=False, allow_nan=False)


def _round(value: float, digits: int = 3) -> float:
    return round(value, digits)


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile with linear interpolation between ranks (numpy's default method).

    p95 of 20 samples lies between the 19th and 20th smallest; with fewer than ~100 samples p99 is
    close to the maximum, which is why the full runs time a few hundred iterations.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {pct}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Measurement(Generic[T]):
    samples_ns: list[int]
    db_ns: list[int]  # per timed iteration: time inside cursor.execute (round trip, plan, run, transfer)
    queries: list[int]  # per timed iteration
    queries_first: int  # the very first call, caches cold (e.g. the user's visible tenants)
    last_sql: list[str]  # the SQL of the last timed iteration, for EXPLAIN
    last_value: T

    @property
    def queries_per_iteration(self) -> int:
        return max(self.queries)

    def query_fields(self) -> dict[str, Any]:
        """Extra fields: the count on the first call, any spread between iterations, and the database's
        share of the time (the rest is Python: building the query, making model instances)."""
        fields: dict[str, Any] = {"queries_first": self.queries_first}
        if min(self.queries) != max(self.queries):
            fields["queries_min"] = min(self.queries)
        db_ms = [ns / 1_000_000 for ns in self.db_ns]
        fields["db_median_ms"] = _round(percentile(db_ms, 50))
        fields["db_p95_ms"] = _round(percentile(db_ms, 95))
        return fields


def measure(func: Callable[[], T], *, iterations: int, warmup: int) -> Measurement[T]:
    """Call ``func`` ``warmup`` times untimed, then ``iterations`` times timed, counting SQL queries.

    Every call runs inside CaptureQueriesContext, warm-up included, so timed and untimed calls pay the
    same (small) bookkeeping; the clock is read inside the context, around ``func`` only.
    """
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if iterations < 1 or warmup < 1:
        raise ValueError("measure needs at least one warm-up and one timed iteration.")
    queries_first = 0
    for index in range(warmup):
        with CaptureQueriesContext(connection) as captured:
            func()
        if index == 0:
            queries_first = len(captured)
    samples: list[int] = []
    db_samples: list[int] = []
    counts: list[int] = []
    value: T | None = None
    last_sql: list[str] = []
    in_db = [0]

    def timed_execute(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter_ns()
        try:
            return execute(sql, params, many, context)
        finally:
            in_db[0] += time.perf_counter_ns() - started

    with connection.execute_wrapper(timed_execute):
        for _ in range(iterations):
            in_db[0] = 0
            with CaptureQueriesContext(connection) as captured:
                start = time.perf_counter_ns()
                value = func()
                samples.append(time.perf_counter_ns() - start)
            db_samples.append(in_db[0])
            counts.append(len(captured))
            last_sql = [query["sql"] for query in captured.captured_queries]
    return Measurement(samples, db_samples, counts, queries_first, last_sql, value)  # type: ignore[arg-type]


BenchmarkFunc = Callable[[Context], Iterator[Result]]


@dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    func: BenchmarkFunc


_REGISTRY: dict[str, Benchmark] = {}
RESERVED_NAMES = frozenset({"all"})


def benchmark(name: str, *, description: str) -> Callable[[BenchmarkFunc], BenchmarkFunc]:
    """Register a benchmark: a generator of Results, one per variant it measures."""

    def register(func: BenchmarkFunc) -> BenchmarkFunc:
        if name in RESERVED_NAMES or name in _REGISTRY:
            raise ValueError(f"Benchmark name {name!r} is reserved or already registered.")
        _REGISTRY[name] = Benchmark(name=name, description=description, func=func)
        return func

    return register


def registry() -> dict[str, Benchmark]:
    return dict(sorted(_REGISTRY.items()))


def emit(result: Result, stream: TextIO | None = None) -> None:
    print(result.to_json(), file=stream or sys.stdout, flush=True)


def machine_load() -> float | None:
    """The 1-minute load average when the result was taken: on a shared 2-core box it explains outliers."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # not available on this platform
        return None


_STARTED = time.monotonic()


def log(message: str) -> None:
    """Progress for humans, on stderr: stdout carries only result lines."""
    print(f"[bench {time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def page_settings() -> override_settings:
    """Settings for a benchmark that renders pages through Django's test client: its host name, and
    static files read from the apps. A benchmark runs without ``collectstatic``, and with DEBUG off
    (as in CI) the manifest storage refuses every ``{% static %}`` it has no entry for."""
    return override_settings(
        ALLOWED_HOSTS=["testserver"],
        STORAGES={
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
    )
