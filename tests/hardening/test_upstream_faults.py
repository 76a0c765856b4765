"""Threat list section B: what an upstream can do to bodega (fake upstreams on 127.0.0.1).

The fake index's knobs cover the common faults; hostile.py scripts the rest (redirects,
odd encodings, hostile pages). TLS (scenario 25) is in test_tls.py, enormous pages and the
gzip bomb (scenario 20) in test_resources.py.
"""

import asyncio
import gzip
import json
import time
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from bodega.errors import UpstreamError
from bodega.upstream.http import _redirect_target
from tests.conftest import StartBodega
from tests.hardening.hostile import JSON, LagMonitor, hostile_upstream, sha256
from tests.support.distributions import build_sdist, build_wheel
from tests.support.fake_index import FakeIndex

WHEEL = build_wheel("demo", "1.0", payload_size=100_000)


def blobs(data_dir: Path) -> list[str]:
    return sorted(p.name for p in (data_dir / "blobs").rglob("*") if p.is_file())


async def get_without_pooling(url: str, **headers: str) -> httpx.Response | None:
    """None when bodega dropped the connection mid-body (the honest way to fail after the
    headers went out)."""
    async with httpx.AsyncClient(trust_env=False, timeout=30) as own:
        try:
            return await own.get(url, headers=headers)
        except httpx.RemoteProtocolError:
            return None


async def test_scenario_15c_truncated_chunked_body_is_never_committed(
    start_bodega: StartBodega, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Scenario 15 (c): chunked encoding cut off before its last chunk. (a) and (b) are
    tests/integration/test_files.py::test_a_bad_download_is_never_cached_nor_a_clean_response.)"""
    async with hostile_upstream() as upstream:
        entry = upstream.listed(WHEEL.filename, WHEEL.data)
        entry.pop("hashes")  # nothing but the framing can tell the body is short

        async def cut_chunked(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            await response.write(WHEEL.data[: len(WHEEL.data) // 2])
            assert request.transport is not None
            request.transport.abort()
            return response

        upstream.routes[f"/files/{WHEEL.filename}"] = cut_chunked
        upstream.json_page("demo", [entry])
        bodega = await start_bodega(upstream=upstream.simple_url)
        response = await get_without_pooling(f"{bodega}files/demo/{WHEEL.filename}")
        assert response is None or response.status_code == 502
        assert blobs(tmp_path / "data") == []
        assert list((tmp_path / "data" / "tmp").iterdir()) == []


@pytest.mark.parametrize("fault", ["slow-body", "stall"])
async def test_scenario_16_slow_upstream_times_out_without_slowing_others(
    fake_index: FakeIndex,
    start_bodega: StartBodega,
    client: httpx.AsyncClient,
    tmp_path: Path,
    fault: str,
) -> None:
    """Scenario 16: sock_read fires on a 1-byte-a-second body and on a stall; meanwhile the
    event loop stays responsive (lag < 100 ms) and cached pages keep their latency; the
    single-flight entry is released, so the next request downloads afresh."""
    fake_index.add("demo", WHEEL)
    if fault == "slow-body":
        fake_index.throttle(WHEEL.filename, bytes_per_second=1, chunk=1)
    else:
        fake_index.stall(WHEEL.filename, after_bytes=50_000)
    bodega = await start_bodega(upstream_timeout=0.5)
    page = f"{bodega}simple/demo/"
    assert (await client.get(page)).status_code == 200
    async with httpx.AsyncClient(trust_env=False, timeout=30) as own:  # built off the clock
        async with LagMonitor() as lag:
            slow = asyncio.create_task(own.get(f"{bodega}files/demo/{WHEEL.filename}"))
            worst_page = 0.0
            while not slow.done():
                started = time.monotonic()
                assert (await client.get(page)).status_code == 200
                worst_page = max(worst_page, time.monotonic() - started)
                await asyncio.sleep(0.05)
        try:
            failed: httpx.Response | None = await slow
        except httpx.RemoteProtocolError:
            failed = None
    assert failed is None or failed.status_code in (502, 504)
    assert lag.worst < 0.1
    assert worst_page < 0.5
    assert blobs(tmp_path / "data") == []
    fake_index.reset_faults()
    healed = await client.get(f"{bodega}files/demo/{WHEEL.filename}")
    assert healed.content == WHEEL.data


async def test_a_download_over_its_deadline_is_cut_and_never_cached(
    fake_index: FakeIndex,
    start_bodega: StartBodega,
    client: httpx.AsyncClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 17 (scenario 16): a file that trickles in steadily, each read well within the
    read timeout, is bounded by --download-deadline as a whole."""
    fake_index.add("demo", WHEEL)
    fake_index.throttle(WHEEL.filename, bytes_per_second=20_000, chunk=2_000)
    bodega = await start_bodega(upstream_timeout=5.0, download_deadline=1.0)
    url = f"{bodega}files/demo/{WHEEL.filename}"
    try:
        response: httpx.Response | None = await client.get(url)
    except httpx.RemoteProtocolError:
        response = None  # cut after the headers went out: never a complete response
    assert response is None or response.status_code == 504
    assert blobs(tmp_path / "data") == []
    assert any("took over 1 s to send" in r.getMessage() for r in caplog.records)
    fake_index.reset_faults()
    assert (await client.get(url)).content == WHEEL.data


def _status_handler(status: int, body: bytes, content_type: str, **headers: str):  # type: ignore[no-untyped-def]
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(
            status=status, body=body, headers={"Content-Type": content_type, **headers}
        )

    return handler


UPSTREAM_FAULTS: dict[str, tuple[int, bytes, str, dict[str, str]]] = {
    "500": (500, b"oops", "text/plain", {}),
    "502": (502, b"<html>bad gateway</html>", "text/html", {}),
    "503": (503, b"down", "text/plain", {}),
    "429": (429, b"slow down", "text/plain", {}),  # with Retry-After: see the tests below
    "empty-200": (200, b"", JSON, {}),
    "captive-portal": (
        200,
        b"<html><a href='/login'>Log in to the Wi-Fi</a></html>",
        "text/html",
        {},
    ),
    "wrong-type": (200, b"{}", "application/octet-stream", {}),
}


@pytest.mark.parametrize("fault", UPSTREAM_FAULTS)
async def test_scenario_17_upstream_errors_are_never_cached_as_pages(
    start_bodega: StartBodega, client: httpx.AsyncClient, fault: str
) -> None:
    """Scenario 17: a cold request fails clearly (502); with a cached page the page is
    served stale; once upstream recovers the real page is back, no error body kept."""
    status, body, content_type, headers = UPSTREAM_FAULTS[fault]
    async with hostile_upstream() as upstream:
        good = [upstream.listed(WHEEL.filename, WHEEL.data)]
        upstream.routes["/simple/demo/"] = _status_handler(status, body, content_type, **headers)
        bodega = await start_bodega(upstream=upstream.simple_url, index_ttl=0)
        url = f"{bodega}simple/demo/"
        cold = await client.get(url, headers={"Accept": JSON})
        if fault == "captive-portal":
            # A cold 200 HTML page without files cannot be told from an empty project: it is
            # an empty page until the TTL runs out (docs/security.md, scenario 17).
            assert cold.json()["files"] == []
        else:
            assert cold.status_code == 502, fault
        upstream.json_page("demo", good)
        fresh = await client.get(url, headers={"Accept": JSON})
        assert [f["filename"] for f in fresh.json()["files"]] == [WHEEL.filename]
        upstream.routes["/simple/demo/"] = _status_handler(status, body, content_type, **headers)
        stale = await client.get(url, headers={"Accept": JSON})
        assert stale.status_code == 200
        assert stale.headers["X-Bodega-Stale"] == "1"
        assert stale.json()["files"] == fresh.json()["files"]


@pytest.mark.parametrize("status", [429, 503])
async def test_scenario_17_retry_after_is_passed_on_and_honoured(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient, status: int
) -> None:
    """Issue 17: upstream's Retry-After reaches clients (as a 503: bodega is not the one
    being asked too much), no request goes to upstream before it passes, and pages bodega
    has are served stale meanwhile."""
    fake_index.add("demo", WHEEL)
    fake_index.add("other", build_wheel("other", "1.0"))
    bodega = await start_bodega(index_ttl=0)
    assert (await client.get(f"{bodega}simple/demo/")).status_code == 200  # cached
    fake_index.fail_with(status, retry_after="120")

    def page_requests() -> int:
        return sum(1 for r in fake_index.requests if r.server == "pages")

    asked = page_requests()
    cold = await client.get(f"{bodega}simple/other/")
    assert (cold.status_code, cold.headers["Retry-After"]) == (503, "120")
    for _ in range(3):
        stale = await client.get(f"{bodega}simple/demo/")
        assert (stale.status_code, stale.headers["X-Bodega-Cache"]) == (200, "STALE")
        again = await client.get(f"{bodega}simple/other/")
        assert again.status_code == 503
        assert 0 < int(again.headers["Retry-After"]) <= 120
    assert page_requests() == asked + 1  # only the first was sent


async def test_retry_after_is_capped_and_once_it_passes_upstream_is_asked_again(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    fake_index.add("demo", WHEEL)
    bodega = await start_bodega()
    fake_index.fail_with(429, retry_after="99999999")  # years: capped at MAX_RETRY_AFTER
    capped = await client.get(f"{bodega}simple/demo/")
    assert capped.status_code == 503
    assert int(capped.headers["Retry-After"]) <= 600
    # Another bodega (the wait is per process), told to wait as an HTTP-date, 2 s ahead.
    bodega = await start_bodega(data_dir=tmp_path / "second")
    fake_index.fail_with(503, retry_after=formatdate(time.time() + 2, usegmt=True))
    dated = await client.get(f"{bodega}simple/demo/")
    assert dated.status_code == 503
    assert 0 < int(dated.headers["Retry-After"]) <= 2
    fake_index.fail_with(None)
    await asyncio.sleep(2.5)  # past the time upstream named
    assert (await client.get(f"{bodega}simple/demo/")).status_code == 200


@pytest.mark.parametrize("status", [404, 410])
async def test_scenario_17_a_project_gone_upstream_is_404(
    start_bodega: StartBodega, client: httpx.AsyncClient, status: int
) -> None:
    async with hostile_upstream() as upstream:
        upstream.routes["/simple/demo/"] = _status_handler(status, b"gone", "text/plain")
        bodega = await start_bodega(upstream=upstream.simple_url)
        assert (await client.get(f"{bodega}simple/demo/")).status_code == 404


def _redirect(location: str):  # type: ignore[no-untyped-def]
    async def handler(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(location)

    return handler


async def test_scenario_18_redirects_are_followed_by_hand_within_bounds(
    start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    """Scenario 18: up to 3 hops on the upstream's own host are followed; a loop, a 4th hop,
    another host (even another loopback name), file: and userinfo are refused (502)."""
    async with hostile_upstream() as upstream, hostile_upstream() as elsewhere:
        page = json.dumps({"meta": {"api-version": "1.1"}, "files": []}).encode()
        elsewhere.page("demo", page)
        foreign = elsewhere.url.replace("127.0.0.1", "localhost")
        upstream.page("real", page)
        cases = {
            "three-hops": ["/simple/h1/", "/simple/h2/", "/simple/real/"],
            "loop": ["/simple/loop/"],
            "four-hops": ["/simple/k1/", "/simple/k2/", "/simple/k3/", "/simple/real/"],
            "foreign": [f"{foreign}simple/demo/"],
            "file": ["file:///etc/passwd"],
            "userinfo": [upstream.url.replace("http://", "http://user:pw@") + "simple/real/"],
        }
        upstream.routes["/simple/three-hops/"] = _redirect("/simple/h1/")
        upstream.routes["/simple/h1/"] = _redirect("/simple/h2/")
        upstream.routes["/simple/h2/"] = _redirect("/simple/real/")
        upstream.routes["/simple/loop/"] = _redirect("/simple/loop/")
        upstream.routes["/simple/four-hops/"] = _redirect("/simple/k1/")
        upstream.routes["/simple/k1/"] = _redirect("/simple/k2/")
        upstream.routes["/simple/k2/"] = _redirect("/simple/k3/")
        upstream.routes["/simple/k3/"] = _redirect("/simple/real/")
        upstream.routes["/simple/foreign/"] = _redirect(cases["foreign"][0])
        upstream.routes["/simple/file/"] = _redirect(cases["file"][0])
        upstream.routes["/simple/userinfo/"] = _redirect(cases["userinfo"][0])
        bodega = await start_bodega(upstream=upstream.simple_url)
        assert (await client.get(f"{bodega}simple/three-hops/")).status_code == 200
        for name in ("loop", "four-hops", "foreign", "file", "userinfo"):
            response = await client.get(f"{bodega}simple/{name}/")
            assert response.status_code == 502, name
        assert elsewhere.seen == []
        assert upstream.count("/simple/loop/") == 4  # the first request and 3 hops


async def test_scenario_18_and_24_a_redirect_back_to_bodega_is_a_508(
    start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    """Scenarios 18 and 24: a redirect to bodega's own address carries bodega's Via marker
    back to it, which answers 508 at once: no recursion, no fan-out."""
    async with hostile_upstream() as upstream:
        bodega = await start_bodega(upstream=upstream.simple_url)
        upstream.routes["/simple/demo/"] = _redirect(f"{bodega}simple/demo/")
        response = await client.get(f"{bodega}simple/demo/")
        assert response.status_code == 508
        assert upstream.count("/simple/demo/") == 1


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
        "http://index.example/simple/x/",  # https -> http downgrade
        "https://user:pw@index.example/simple/x/",
        "https://evil.example/simple/x/",
        "gopher://index.example/",
    ],
)
def test_scenario_18_redirect_targets_outside_the_allowlist_are_refused(location: str) -> None:
    """Scenario 18, without any network: the check happens before a connection is made."""
    with pytest.raises(UpstreamError):
        _redirect_target("https://index.example/simple/x/", location, {"index.example"})


async def test_scenario_21_advertised_core_metadata_that_upstream_lacks_is_a_404(
    start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    """Scenario 21 (proxpi#23): data-dist-info-metadata="true" without a .metadata file:
    the .metadata request is a clean 404 (pip then reads the wheel), the wheel still works."""
    async with hostile_upstream() as upstream:
        entry = upstream.listed(WHEEL.filename, WHEEL.data, **{"core-metadata": True})
        upstream.json_page("demo", [entry])
        bodega = await start_bodega(upstream=upstream.simple_url)
        url = f"{bodega}files/demo/{WHEEL.filename}"
        assert (await client.get(url + ".metadata")).status_code in (404, 502)
        assert (await client.get(url)).content == WHEEL.data


async def test_scenario_22_a_rolled_back_upstream_is_served_stale(
    start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    """Scenario 22 (devpi#958): a lower serial, or a page that lost every file, keeps the
    cached page, served stale with a warning."""
    newer = build_wheel("demo", "2.0")
    async with hostile_upstream() as upstream:
        both = [
            upstream.listed(WHEEL.filename, WHEEL.data),
            upstream.listed(newer.filename, newer.data),
        ]
        upstream.json_page("demo", both, serial=10)
        bodega = await start_bodega(upstream=upstream.simple_url, index_ttl=0)
        url = f"{bodega}simple/demo/"
        assert len((await client.get(url, headers={"Accept": JSON})).json()["files"]) == 2
        for files, serial in ((both[:1], 9), ([], 11)):
            upstream.json_page("demo", files, serial=serial)
            stale = await client.get(url, headers={"Accept": JSON})
            assert stale.headers["X-Bodega-Stale"] == "1"
            assert stale.headers["Warning"].startswith("110")
            assert len(stale.json()["files"]) == 2


async def test_scenario_22_and_invariant_3_a_known_filename_keeps_its_hash(
    start_bodega: StartBodega, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Invariant 3: once (project, filename) -> sha256 is seen, a page that says otherwise
    does not change it; bodega keeps serving the bytes first verified."""
    forged = build_wheel("demo", "1.0", payload_size=100_001)
    assert forged.filename == WHEEL.filename
    async with hostile_upstream() as upstream:
        upstream.json_page("demo", [upstream.listed(WHEEL.filename, WHEEL.data)], serial=1)
        bodega = await start_bodega(upstream=upstream.simple_url, index_ttl=0)
        url = f"{bodega}files/demo/{WHEEL.filename}"
        assert (await client.get(url)).content == WHEEL.data
        upstream.json_page("demo", [upstream.listed(forged.filename, forged.data)], serial=2)
        page = await client.get(f"{bodega}simple/demo/", headers={"Accept": JSON})
        assert page.json()["files"][0]["hashes"] == {"sha256": WHEEL.sha256}
        assert (await client.get(url)).content == WHEEL.data
        # The wheel, and the METADATA bodega may have extracted from it (issue 3).
        assert WHEEL.sha256 in blobs(tmp_path / "data")
        assert set(blobs(tmp_path / "data")) <= {WHEEL.sha256, WHEEL.metadata_sha256}


async def test_a_gzipped_html_root_list_in_small_chunks_streams_into_both_renderings(
    start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    """The root list is scanned as it arrives: names cut anywhere by chunking and gzip come
    out whole, once each, in HTML and JSON."""
    names = [f"Project_{i}" for i in range(50_000)]
    anchors = "".join(f'<a href="/simple/project-{i}/">{n}</a>\n' for i, n in enumerate(names))
    body = gzip.compress(f"<html><body>\n{anchors}</body></html>\n".encode())

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/html", "Content-Encoding": "gzip"}
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(body), 997):
            await response.write(body[start : start + 997])
        await response.write_eof()
        return response

    async with hostile_upstream() as upstream:
        upstream.routes["/simple/"] = chunked
        bodega = await start_bodega(upstream=upstream.simple_url)
        html = await client.get(f"{bodega}simple/")
        assert html.headers["X-Bodega-Projects"] == "50000"
        assert '<a href="project-49999/">Project_49999</a>' in html.text
        as_json = await client.get(f"{bodega}simple/", headers={"Accept": JSON})
        assert [p["name"] for p in as_json.json()["projects"]] == names


async def test_scenario_23_a_gzip_content_encoding_on_a_tar_gz_is_not_undone(
    start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    """Scenario 23: a .tar.gz sent with Content-Encoding: gzip and a lying Content-Type is
    stored and served as the exact bytes the index hashed."""
    sdist = build_sdist("demo", "1.0")
    assert gzip.decompress(sdist.data)  # it is gzip data, so an eager client would unpack it
    async with hostile_upstream() as upstream:
        url = upstream.file(
            sdist.filename, sdist.data, **{"Content-Encoding": "gzip", "Content-Type": "text/html"}
        )
        entry = {"filename": sdist.filename, "url": url, "hashes": {"sha256": sha256(sdist.data)}}
        upstream.json_page("demo", [entry])
        bodega = await start_bodega(upstream=upstream.simple_url)
        for _ in range(2):  # streamed while cached, then from the cache
            response = await client.get(
                f"{bodega}files/demo/{sdist.filename}", headers={"Accept-Encoding": "identity"}
            )
            assert response.status_code == 200
            assert sha256(response.content) == sdist.sha256
            assert "Content-Encoding" not in response.headers
