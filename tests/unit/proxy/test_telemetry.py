"""The one telemetry recorder: one hit ratio, one definition of a miss, views per index."""

import pytest

from bodega.errors import IntegrityError, NotFound, UpstreamError
from bodega.proxy.telemetry import CacheOutcome, Telemetry, hit_ratio


def test_the_hit_ratio_counts_every_answer_from_the_cache_over_every_request() -> None:
    telemetry = Telemetry()
    view = telemetry.index("root/pypi")
    assert view.summary().hit_ratio is None  # before the first request, no ratio at all
    for kind, outcome in [
        ("page", CacheOutcome.HIT),
        ("page", CacheOutcome.REVALIDATED),
        ("page", CacheOutcome.STALE),
        ("page", CacheOutcome.MISS),
        ("file", CacheOutcome.HIT),
        ("file", CacheOutcome.MISS),
        ("file", CacheOutcome.MISS),
        ("file", CacheOutcome.HIT),
    ]:
        view.count_outcome(kind, outcome)
    summary = view.summary()
    assert (summary.hits, summary.misses) == (5, 3)
    assert summary.hit_ratio == hit_ratio(view.outcomes) == 5 / 8
    assert summary.requests["page"] == {"hit": 1, "miss": 1, "stale": 1, "revalidated": 1}
    assert telemetry.totals().hit_ratio == 5 / 8


def test_a_miss_is_a_request_not_a_download() -> None:
    """Three clients sharing one download are three misses and one download."""
    view = Telemetry().index("root/pypi")
    view.download_started()
    for _ in range(3):
        view.count_outcome("file", CacheOutcome.MISS)
    view.download_finished("http://upstream.test/f/demo-1.0.tar.gz", 10, 0.5, None)
    summary = view.summary()
    assert (summary.misses, summary.downloads, summary.fetch_errors) == (3, 1, 0)


def test_bodegas_own_downloads_are_no_requests() -> None:
    view = Telemetry().index("root/pypi")
    view.download_started()  # metadata extraction, say: nobody asked
    view.download_finished("http://upstream.test/f/demo.whl.metadata", 10, 0.1, None)
    assert view.summary().hit_ratio is None


def test_each_index_has_its_own_view_and_the_totals_add_them_up() -> None:
    telemetry = Telemetry()
    mirror, torch = telemetry.index("root/pypi"), telemetry.index("team/torch")
    assert telemetry.index("team/torch") is torch
    mirror.count_outcome("file", CacheOutcome.HIT)
    mirror.served_from_cache(100)
    torch.count_outcome("file", CacheOutcome.MISS)
    torch.received("file", 40)
    torch.received("page", 7)
    torch.download_started()
    torch.download_finished("http://torch.test/torch.whl", 40, 1.0, "bad bytes")
    assert [view.name for view in telemetry.indexes] == ["root/pypi", "team/torch"]
    assert mirror.summary().hit_ratio == 1.0
    assert torch.summary().hit_ratio == 0.0
    totals = telemetry.totals()
    assert totals.hit_ratio == 0.5
    assert (totals.bytes_from_cache, totals.bytes_fetched, totals.page_bytes_fetched) == (
        100,
        40,
        7,
    )
    assert (totals.downloads, totals.fetch_errors) == (1, 1)
    # Recent fetches are the server's, each naming its index.
    assert [(f.index, f.error) for f in telemetry.recent] == [("team/torch", "bad bytes")]


def test_upstream_call_times_answers_and_counts_only_upstreams_failures() -> None:
    clock = [100.0]
    telemetry = Telemetry(clock=lambda: clock[0])
    view = telemetry.index("root/pypi")
    assert view.upstream_health == "unknown"
    with view.upstream_call("page"):
        pass
    with pytest.raises(NotFound), view.upstream_call("page"):
        raise NotFound("a 404 is an answer")
    assert (view.upstream_health, view.upstream_errors["page"]) == ("ok", 0)
    clock[0] = 200.0
    with pytest.raises(UpstreamError), view.upstream_call("page"):
        raise UpstreamError("upstream answered 503")
    assert view.upstream_health == "failing"
    assert view.upstream_error == "upstream answered 503"
    view.upstream_failed("file", IntegrityError("bad bytes"))
    assert view.upstream_errors == {"page": 1, "file": 1}
    assert view.upstream_latency["page"].count == 3
    clock[0] = 300.0
    view.upstream_answered("file", 0.01)
    assert view.upstream_health == "ok"
    assert view.upstream_error == "upstream answered 503"  # the last failure, for the record


def test_one_failing_upstream_makes_the_totals_failing() -> None:
    clock = [100.0]
    telemetry = Telemetry(clock=lambda: clock[0])
    mirror, torch = telemetry.index("root/pypi"), telemetry.index("team/torch")
    assert telemetry.totals().upstream_health == "unknown"
    torch.upstream_failed("page", UpstreamError("torch is down"))
    clock[0] = 200.0
    mirror.upstream_answered("page", 0.01)
    totals = telemetry.totals()
    assert (totals.upstream_health, totals.upstream_error) == ("failing", "torch is down")
    assert totals.upstream_ok_at == 200.0
    torch.upstream_answered("page", 0.01)
    assert telemetry.totals().upstream_health == "ok"


def test_the_server_keeps_requests_and_evictions() -> None:
    telemetry = Telemetry()
    telemetry.count_request("file", 200)
    telemetry.count_request("file", 200)
    telemetry.evicted(1000)
    assert telemetry.requests["file", 200] == 2
    assert (telemetry.evicted_blobs, telemetry.evicted_bytes) == (1, 1000)
