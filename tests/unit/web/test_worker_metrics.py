"""--workers' /-/metrics: every worker's expositions as one server's."""

from pathlib import Path

from bodega.web.metrics import merge_expositions
from bodega.web.worker_metrics import clear_worker_metrics

FIRST = """# HELP bodega_requests_total Requests answered.
# TYPE bodega_requests_total counter
bodega_requests_total{route="file",status="200"} 3
# HELP bodega_cache_size_bytes Bytes of files in the cache.
# TYPE bodega_cache_size_bytes gauge
bodega_cache_size_bytes 100
# HELP bodega_upstream_latency_seconds Upstream latency.
# TYPE bodega_upstream_latency_seconds histogram
bodega_upstream_latency_seconds_bucket{le="0.1"} 1
bodega_upstream_latency_seconds_bucket{le="+Inf"} 2
bodega_upstream_latency_seconds_sum 0.25
bodega_upstream_latency_seconds_count 2
"""

SECOND = """# HELP bodega_requests_total Requests answered.
# TYPE bodega_requests_total counter
bodega_requests_total{route="file",status="200"} 4
bodega_requests_total{route="project",status="200"} 2
# HELP bodega_cache_size_bytes Bytes of files in the cache.
# TYPE bodega_cache_size_bytes gauge
bodega_cache_size_bytes 150
# HELP bodega_upstream_latency_seconds Upstream latency.
# TYPE bodega_upstream_latency_seconds histogram
bodega_upstream_latency_seconds_bucket{le="0.1"} 0
bodega_upstream_latency_seconds_bucket{le="+Inf"} 1
bodega_upstream_latency_seconds_sum 0.5
bodega_upstream_latency_seconds_count 1
"""


def test_counters_and_histograms_add_up_and_a_series_of_one_worker_is_kept() -> None:
    merged = merge_expositions([FIRST, SECOND]).splitlines()
    assert 'bodega_requests_total{route="file",status="200"} 7' in merged
    assert 'bodega_requests_total{route="project",status="200"} 2' in merged
    assert 'bodega_upstream_latency_seconds_bucket{le="+Inf"} 3' in merged
    assert "bodega_upstream_latency_seconds_sum 0.75" in merged
    assert "bodega_upstream_latency_seconds_count 3" in merged


def test_a_gauge_of_the_shared_cache_is_its_freshest_value_not_a_sum() -> None:
    merged = merge_expositions([FIRST, SECOND]).splitlines()
    assert "bodega_cache_size_bytes 150" in merged


def test_each_family_keeps_its_help_and_type_once_and_its_samples_under_it() -> None:
    merged = merge_expositions([FIRST, SECOND]).splitlines()
    assert merged.count("# TYPE bodega_requests_total counter") == 1
    start = merged.index("# TYPE bodega_requests_total counter")
    assert merged[start + 1 : start + 3] == [
        'bodega_requests_total{route="file",status="200"} 7',
        'bodega_requests_total{route="project",status="200"} 2',
    ]


def test_one_worker_alone_is_its_own_exposition() -> None:
    assert merge_expositions([FIRST]) == FIRST


def test_a_start_clears_the_numbers_of_workers_that_ran_before(tmp_path: Path) -> None:
    (tmp_path / "worker-3.prom").write_text(FIRST)
    (tmp_path / "other.txt").write_text("kept")
    clear_worker_metrics(tmp_path)
    assert [path.name for path in tmp_path.iterdir()] == ["other.txt"]
