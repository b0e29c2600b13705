"""Care's benchmarks: ``python -m bench NAME [--quick]``, one JSON line per result on stdout.

They run against their own database (``care_bench``, or ``care_bench_quick`` with ``--quick``) on the
server ``DATABASE_URL`` names, never the dev or the test database. See docs/performance.md.
"""
