"""One benchmark run: point Django at the bench database, load the dataset, run, print result lines.

The order matters: the database name is rewritten before ``django.setup()``, and the benchmark
modules (which import Care's models) are imported after it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import django

from bench import database
from bench.harness import Benchmark, Context, RunOptions, emit, log, registry

# Modules whose import registers benchmarks. Add a module here when adding a benchmark.
BENCHMARK_MODULES = (
    "bench.call_events",
    "bench.call_route",
    "bench.desk_pages",
    "bench.desk_search",
    "bench.email_ingest",
    "bench.live_fanout",
    "bench.queue",
    "bench.routing",
    "bench.sla_sweep",
    "bench.social_ingest",
)

FULL_TICKETS = 1_000_000
QUICK_TICKETS = 20_000
# Full runs time enough iterations for a meaningful p99; quick runs (CI, every push) only need to
# prove the benchmarks work and catch order-of-magnitude regressions.
FULL_ITERATIONS, FULL_WARMUP = 300, 20
QUICK_ITERATIONS, QUICK_WARMUP = 30, 5


@dataclass(frozen=True)
class Request:
    names: tuple[str, ...]  # ("all",) for every benchmark
    quick: bool = False
    rebuild: bool = False
    tickets: int | None = None
    iterations: int | None = None


def setup(*, quick: bool) -> str:
    """Configure the bench database, set Django up and register the benchmarks; returns the db name."""
    name = database.configure(quick=quick)
    django.setup()
    for module in BENCHMARK_MODULES:
        importlib.import_module(module)
    return name


def available() -> dict[str, Benchmark]:
    return registry()


def select(names: tuple[str, ...]) -> list[Benchmark]:
    benchmarks = registry()
    if "all" in names:
        return list(benchmarks.values())
    unknown = [name for name in names if name not in benchmarks]
    if unknown:
        raise SystemExit(f"Unknown benchmark(s): {', '.join(unknown)}. Known: {', '.join(benchmarks)}.")
    return [benchmarks[name] for name in dict.fromkeys(names)]


def run(request: Request) -> None:
    name = setup(quick=request.quick)
    from bench.datagen import ensure_dataset  # imports Care's models: only after django.setup()

    selected = select(request.names)
    tickets = request.tickets or (QUICK_TICKETS if request.quick else FULL_TICKETS)
    options = RunOptions(
        quick=request.quick,
        iterations=request.iterations or (QUICK_ITERATIONS if request.quick else FULL_ITERATIONS),
        warmup=QUICK_WARMUP if request.quick else FULL_WARMUP,
    )
    log(f"database {name}, {tickets:,} tickets, benchmarks: {', '.join(b.name for b in selected)}")
    database.ensure_database(rebuild=request.rebuild)
    context = Context(options=options, dataset=ensure_dataset(tickets=tickets))
    for benchmark in selected:
        log(f"running {benchmark.name}: {benchmark.description}")
        for result in benchmark.func(context):
            emit(result)
    log("done")
