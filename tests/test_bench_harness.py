"""The benchmark harness: percentile maths, the one-line JSON result, and how it counts queries."""

from __future__ import annotations

import json
import statistics

import pytest

from bench import database
from bench.datagen import BIG_TENANT_SHARE, TENANT_COUNT, tenant_sizes
from bench.harness import RESULT_FIELDS, Result, measure, percentile
from bench.queue import summarise_plan
from care.tenants.models import Tenant


@pytest.mark.parametrize("pct", [1, 25, 50, 90, 95, 99])
def test_percentile_interpolates_like_numpy(pct):
    values = [float(v) for v in (7, 1, 9, 3, 3, 12, 5, 8, 2, 40, 6)]
    # statistics' "inclusive" quantiles are the same linear interpolation as numpy's default.
    expected = statistics.quantiles(values, n=100, method="inclusive")[pct - 1]
    assert percentile(values, pct) == pytest.approx(expected)


def test_percentile_edges():
    assert percentile([4.0], 99) == 4.0
    assert percentile([3.0, 1.0, 2.0], 0) == 1.0
    assert percentile([3.0, 1.0, 2.0], 100) == 3.0
    assert percentile([1.0, 2.0], 50) == 1.5
    assert percentile(list(range(1, 101)), 95) == pytest.approx(95.05)
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_result_is_one_json_line_with_the_documented_fields():
    samples = [1_000_000 * ms for ms in (2, 4, 4, 5, 10)]
    line = Result(
        name="queue.x", samples_ns=samples, queries=1, rows=20_000, extra={"plan": "a\nb"}
    ).to_json()

    assert "\n" not in line
    data = json.loads(line)
    assert list(data)[: len(RESULT_FIELDS)] == list(RESULT_FIELDS)
    assert data["name"] == "queue.x"
    assert data["n"] == 5
    assert data["median_ms"] == 4.0
    assert data["p95_ms"] == pytest.approx(9.0)  # between 5 and 10, 80 % of the way
    assert data["p99_ms"] == pytest.approx(9.8)
    assert data["per_second"] == pytest.approx(1000 / 5.0)  # mean 5 ms
    assert data["queries"] == 1
    assert data["rows"] == 20_000
    assert data["plan"] == "a\nb"


def test_result_without_throughput_reports_null():
    data = json.loads(Result("load", [5_000_000], None, 10, has_throughput=False).to_json())
    assert data["per_second"] is None
    assert data["queries"] is None


def test_result_refuses_extra_fields_that_overwrite_measurements():
    with pytest.raises(ValueError, match="overwrite"):
        Result("x", [1], 1, 1, extra={"p95_ms": 0}).to_json()
    with pytest.raises(ValueError, match="no timed iterations"):
        Result("x", [], 1, 1).to_json()


def test_tenant_sizes_one_big_tenant_and_a_long_tail():
    sizes = tenant_sizes(1_000_000)
    assert len(sizes) == TENANT_COUNT
    assert sum(sizes) == 1_000_000
    assert sizes[0] == round(1_000_000 * BIG_TENANT_SHARE)
    assert sizes[1:] == sorted(sizes[1:], reverse=True)
    assert sum(tenant_sizes(20_000)) == 20_000


def test_bench_database_names(monkeypatch):
    monkeypatch.delenv("BENCH_DATABASE_NAME", raising=False)
    assert database.bench_database_name(quick=False) == "care_bench"
    assert database.bench_database_name(quick=True) == "care_bench_quick"
    monkeypatch.setenv("BENCH_DATABASE_NAME", "perf")
    assert database.bench_database_name(quick=True) == "perf_quick"


def test_configure_refuses_test_databases(monkeypatch):
    # Refused before anything is changed: the settings of this test run stay as they are.
    monkeypatch.setenv("BENCH_DATABASE_NAME", "test_care")
    with pytest.raises(SystemExit, match="Refusing"):
        database.configure(quick=False)


def test_plan_summary_names_the_ticket_index_and_the_sort():
    plan = {
        "Execution Time": 0.4567,
        "Plan": {
            "Node Type": "Limit",
            "Shared Hit Blocks": 12,
            "Shared Read Blocks": 0,
            "Plans": [
                {
                    "Node Type": "Nested Loop",
                    "Join Type": "Left",
                    "Plans": [
                        {
                            "Node Type": "Index Scan",
                            "Relation Name": "tickets_ticket",
                            "Index Name": "tickets_queue_actionable",
                        },
                        {"Node Type": "Sort", "Sort Method": "top-N heapsort", "Sort Space Used": 30},
                    ],
                }
            ],
        },
    }
    summary = summarise_plan(plan)
    assert summary.execution_ms == 0.457
    assert summary.summary.startswith("Limit > Nested Loop Left Join > Index Scan; ")
    assert "tickets_ticket: Index Scan using tickets_queue_actionable" in summary.summary
    assert "sort: top-N heapsort (30 kB)" in summary.summary
    assert "buffers hit=12 read=0" in summary.summary


@pytest.mark.django_db
def test_measure_counts_queries_per_iteration(tenant_a):
    measured = measure(lambda: list(Tenant.objects.all()), iterations=4, warmup=2)

    assert len(measured.samples_ns) == 4
    assert all(sample > 0 for sample in measured.samples_ns)
    assert measured.queries == [1, 1, 1, 1]
    assert measured.queries_first == 1
    assert measured.last_value == [tenant_a]
    assert "tenants_tenant" in measured.last_sql[0]
    assert len(measured.db_ns) == 4
    assert all(0 < db <= total for db, total in zip(measured.db_ns, measured.samples_ns, strict=True))
    fields = measured.query_fields()
    assert fields["queries_first"] == 1
    assert "queries_min" not in fields
    assert 0 < fields["db_median_ms"] <= fields["db_p95_ms"]
