"""/-/metrics from the telemetry recorder: every per-index series carries its index."""

from prometheus_client.parser import text_string_to_metric_families

from bodega.proxy.telemetry import CacheOutcome, Telemetry
from bodega.web.metrics import render_telemetry

_SERVER_WIDE = {
    "bodega_requests_total",
    "bodega_cache_evicted_files_total",
    "bodega_cache_evicted_bytes_total",
}


def scrape(telemetry: Telemetry) -> list[tuple[str, dict[str, str], float]]:
    text = "".join(render_telemetry(telemetry))
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def test_every_per_index_series_carries_the_index_label() -> None:
    telemetry = Telemetry()
    telemetry.index("root/pypi")
    telemetry.index("team/torch")
    telemetry.count_request("project", 200)
    samples = scrape(telemetry)
    per_index = [(name, labels) for name, labels, _ in samples if name not in _SERVER_WIDE]
    assert per_index
    assert all(labels.get("index") in {"root/pypi", "team/torch"} for _, labels in per_index)
    # Each index gets every series from the start, zeros included.
    by_index = {
        index: {
            (name, frozenset(labels.items()) - {("index", index)})
            for name, labels in per_index
            if labels["index"] == index
        }
        for index in ("root/pypi", "team/torch")
    }
    assert by_index["root/pypi"] == by_index["team/torch"]


def test_an_index_counts_only_its_own_requests() -> None:
    telemetry = Telemetry()
    telemetry.index("root/pypi").count_outcome("file", CacheOutcome.HIT)
    telemetry.index("team/torch").count_outcome("file", CacheOutcome.MISS)
    telemetry.index("team/torch").received("file", 123)
    samples = {
        (name, frozenset(labels.items())): value for name, labels, value in scrape(telemetry)
    }

    def requests(index: str, outcome: str) -> float:
        labels = frozenset({("index", index), ("kind", "file"), ("outcome", outcome)})
        return samples["bodega_cache_requests_total", labels]

    assert (requests("root/pypi", "hit"), requests("root/pypi", "miss")) == (1, 0)
    assert (requests("team/torch", "hit"), requests("team/torch", "miss")) == (0, 1)
    fetched = "bodega_upstream_fetched_bytes_total"
    assert samples[fetched, frozenset({("index", "team/torch"), ("kind", "file")})] == 123
    assert samples[fetched, frozenset({("index", "root/pypi"), ("kind", "file")})] == 0
