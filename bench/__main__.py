"""``python -m bench NAME|all [--quick] [--rebuild]``; ``python -m bench --list``. See docs/performance.md."""

from __future__ import annotations

import argparse

from bench import runner


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run Care's benchmarks. Results: one JSON line each on stdout; progress on stderr.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run, or 'all'")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument(
        "--quick", action="store_true", help="20,000 tickets in care_bench_quick, few iterations"
    )
    parser.add_argument(
        "--rebuild", action="store_true", help="drop the bench database and generate it again"
    )
    parser.add_argument("--tickets", type=positive, help="dataset size (default 1,000,000; quick 20,000)")
    parser.add_argument("--iterations", type=positive, help="timed iterations per variant")
    args = parser.parse_args(argv)

    if args.list:
        runner.setup(quick=args.quick)
        for benchmark in runner.available().values():
            print(f"{benchmark.name}\t{benchmark.description}")
        return
    if not args.names:
        parser.error("name a benchmark, 'all', or use --list")
    runner.run(
        runner.Request(
            names=tuple(args.names),
            quick=args.quick,
            rebuild=args.rebuild,
            tickets=args.tickets,
            iterations=args.iterations,
        )
    )


if __name__ == "__main__":
    main()
