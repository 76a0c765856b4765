"""Threat list sections B and C, resources: a full disk (scenario 32), enormous pages and a
gzip bomb (scenario 20), 1,000-range requests (scenario 12) and slow-loris clients.

Memory is the process's peak RSS (reset before each measurement); event-loop lag is how late
a 10 ms sleep wakes. Bounds are generous: they catch unbounded growth, not slowness.
"""

import asyncio
import contextlib
import gzip
import logging
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from tests.conftest import StartBodega
from tests.hardening.hostile import (
    JSON,
    HostileUpstream,
    LagMonitor,
    hostile_upstream,
    peak_rss_bytes,
    reset_peak_rss,
    rss_bytes,
    sha256,
)
from tests.hardening.invariants import check_invariants
from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.servers import BodegaProcess
from tests.support.waiting import eventually

MiB = 1024 * 1024
SMALL = build_wheel("small", "1.0", payload_size=20_000)
BIG = build_wheel("big", "1.0", payload_size=2 * MiB)
UNSIZED = build_wheel("unsized", "1.0", payload_size=2 * MiB)


# --- scenario 32: disk full ------------------------------------------------------------


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        check=False,
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def serve_disk_full_upstream(upstream: HostileUpstream) -> None:
    """Three projects: a small wheel, a big one whose size the page gives, and a big one
    sent chunked with no size anywhere, so only a failing write can tell."""

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(UNSIZED.data), 64 * 1024):
            await response.write(UNSIZED.data[start : start + 64 * 1024])
        await response.write_eof()
        return response

    upstream.json_page("small", [upstream.listed(SMALL.filename, SMALL.data, size=len(SMALL.data))])
    upstream.json_page("big", [upstream.listed(BIG.filename, BIG.data, size=len(BIG.data))])
    upstream.json_page("unsized", [upstream.listed(UNSIZED.filename, UNSIZED.data)])
    upstream.routes[f"/files/{UNSIZED.filename}"] = chunked
    upstream.json_page("later", [])


async def check_disk_full_behaviour(bodega: str, data_dir: Path) -> None:
    async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
        small = await client.get(f"{bodega}files/small/{SMALL.filename}")
        assert small.content == SMALL.data
        for project, wheel in (("big", BIG), ("unsized", UNSIZED)):
            try:
                response = await client.get(f"{bodega}files/{project}/{wheel.filename}")
            except httpx.RemoteProtocolError:
                continue  # headers were out: the connection is dropped, never a clean 200
            # Known too big before any header went out: a clean 503.
            assert response.status_code == 503, project
        assert list((data_dir / "tmp").iterdir()) == []  # the spool file is removed
        state = check_invariants(data_dir)
        # The small wheel, and the METADATA bodega may have extracted from it (issue 3).
        assert SMALL.sha256 in state.blobs
        assert state.blobs <= {SMALL.sha256, SMALL.metadata_sha256}
        again = await client.get(f"{bodega}files/small/{SMALL.filename}")
        assert again.content == SMALL.data  # cached files are still served
        later = await client.get(f"{bodega}simple/later/")
        assert later.status_code == 200  # SQLite keeps working (the free-space reserve)
        # Pages are written behind their responses.
        await eventually(
            lambda: asyncio.to_thread(lambda: check_invariants(data_dir).pages),
            lambda pages: "later" in pages,
        )


async def test_scenario_32_disk_full_on_a_small_tmpfs(
    start_bodega: StartBodega, tmp_path: Path
) -> None:
    """Scenario 32 with a real ENOSPC: a 1 MiB tmpfs as the data dir (needs root, as CI
    has). /healthz is not built yet (docs/security.md)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the RLIMIT_FSIZE variant covers this")
    with small_tmpfs(tmp_path / "data", "1m") as data_dir:
        async with hostile_upstream() as upstream:
            serve_disk_full_upstream(upstream)
            bodega = await start_bodega(upstream=upstream.simple_url, data_dir=data_dir)
            await check_disk_full_behaviour(bodega, data_dir)


_LAUNCH_WITH_FSIZE = [
    sys.executable,
    "-c",
    "import resource, runpy, sys\n"
    "limit = 1024 * 1024\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))\n"
    "sys.argv[0] = 'bodega'\n"
    "runpy.run_module('bodega', run_name='__main__', alter_sys=True)\n",
    "serve",
    "--port",
    "0",
]


async def test_scenario_32_disk_full_as_efbig_under_rlimit_fsize(tmp_path: Path) -> None:
    """Scenario 32 without root: RLIMIT_FSIZE of 1 MiB (Python ignores SIGXFSZ, so writes
    fail with EFBIG); the process lives on and no crash loop follows."""
    async with hostile_upstream() as upstream:
        serve_disk_full_upstream(upstream)
        data_dir = tmp_path / "data"
        args = ["--data-dir", str(data_dir), "--upstream", upstream.simple_url]
        server = await asyncio.to_thread(BodegaProcess, args, None, _LAUNCH_WITH_FSIZE)
        try:
            await check_disk_full_behaviour(server.url, data_dir)
            assert server.process.poll() is None
        finally:
            await asyncio.to_thread(server.stop)


# --- scenario 20: enormous pages -------------------------------------------------------


@contextlib.asynccontextmanager
async def measured() -> AsyncIterator[dict[str, float]]:
    """Peak RSS growth (bytes) and worst event-loop lag (s) over the block."""
    figures: dict[str, float] = {}
    before = rss_bytes()
    reset_peak_rss()
    async with LagMonitor() as lag:
        yield figures
    figures["rss_growth"] = peak_rss_bytes() - before
    figures["lag"] = lag.worst


def huge_page_handler(chunk: bytes, repeat: int, **headers: str):  # type: ignore[no-untyped-def]
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            for _ in range(repeat):
                await response.write(chunk)
            await response.write_eof()
        return response

    return handler


ENORMOUS = {
    # 100 MB of HTML, streamed: bodega stops reading at its 64 MiB page budget.
    "100MB-page": huge_page_handler(
        b"<p>" + b" " * (MiB - 3), 100, **{"Content-Type": "text/html"}
    ),
    # 100 MB of spaces gzipped to about 100 KB: the budget counts decompressed bytes.
    "gzip-bomb": huge_page_handler(
        gzip.compress(b" " * (100 * MiB), 9),
        1,
        **{"Content-Type": "text/html", "Content-Encoding": "gzip"},
    ),
    # 1M links in 3 MB: refused at the link cap, not parsed to the end.
    "1M-links": huge_page_handler(b"<a>" * 1_000_000, 1, **{"Content-Type": "text/html"}),
    "deep-json": huge_page_handler(b"[" * 1_000_000, 1, **{"Content-Type": JSON}),
}


@pytest.mark.parametrize("kind", ENORMOUS)
async def test_scenario_20_enormous_pages_are_refused_with_bounded_memory(
    start_bodega: StartBodega, client: httpx.AsyncClient, kind: str
) -> None:
    """Scenario 20: 502, peak RSS growth well under what the page would take, and the
    event loop stays responsive (decompression and parsing are bounded and off the loop)."""
    async with hostile_upstream() as upstream:
        upstream.routes["/simple/demo/"] = ENORMOUS[kind]
        bodega = await start_bodega(upstream=upstream.simple_url)
        async with measured() as figures:
            started = time.monotonic()
            response = await client.get(f"{bodega}simple/demo/")
            elapsed = time.monotonic() - started
        assert response.status_code == 502
        assert elapsed < 30
        assert figures["rss_growth"] < 250 * MiB, figures
        assert figures["lag"] < 1.0, figures


# The root list is streamed, never held whole: an entry that never closes is refused once its
# unfinished rest passes 64 KiB, long before the 512 MiB root budget.
ENORMOUS_ROOTS = {
    "unclosed-anchor": huge_page_handler(
        b'<a href="' + b"x" * (MiB - 9), 100, **{"Content-Type": "text/html"}
    ),
    "unclosed-name": huge_page_handler(
        b'{"projects":[{"name":"' + b"x" * (MiB - 22), 100, **{"Content-Type": JSON}
    ),
}


@pytest.mark.parametrize("kind", ENORMOUS_ROOTS)
async def test_scenario_20_a_root_list_entry_that_never_closes_is_refused_early(
    start_bodega: StartBodega, client: httpx.AsyncClient, kind: str
) -> None:
    async with hostile_upstream() as upstream:
        upstream.routes["/simple/"] = ENORMOUS_ROOTS[kind]
        bodega = await start_bodega(upstream=upstream.simple_url)
        async with measured() as figures:
            response = await client.get(f"{bodega}simple/")
        assert response.status_code == 502
        assert figures["rss_growth"] < 100 * MiB, figures
        assert figures["lag"] < 1.0, figures


# --- scenario 12: many ranges; slow-loris clients --------------------------------------


async def test_scenario_12_a_thousand_ranges_per_request_cost_little(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    """Scenario 12 (cf. Starlette CVE-2025-62727): 100 requests of 1,000 ranges each (just
    under the 8 KB header limit) get the whole file (several ranges are ignored, not
    parsed), with bounded memory and event-loop lag (the lag includes the test's own 100
    clients)."""
    fake_index.add("small", SMALL)
    bodega = await start_bodega()
    url = f"{bodega}files/small/{SMALL.filename}"
    assert (await client.get(url)).status_code == 200
    ranges = "bytes=" + ",".join(f"{i}-{i}" for i in range(1000))
    assert len(ranges) < 8190
    async with measured() as figures:
        responses = await asyncio.gather(
            *(client.get(url, headers={"Range": ranges}) for _ in range(100))
        )
    assert {r.status_code for r in responses} == {200}
    assert figures["rss_growth"] < 100 * MiB, figures
    assert figures["lag"] < 1.0, figures


async def test_slow_loris_clients_do_not_starve_others(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    """Section C, resources: 200 clients sending their headers a byte at a time hold a
    connection each (aiohttp has no header timeout: docs/security.md) but cost little
    memory, and other clients keep their latency."""
    fake_index.add("small", SMALL)
    bodega = await start_bodega()
    page = f"{bodega}simple/small/"
    assert (await client.get(page)).status_code == 200
    port = int(bodega.rsplit(":", 1)[1].strip("/"))
    request = b"GET /simple/small/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 40
    writers = []
    async with measured() as figures:
        for _ in range(200):
            writers.append((await asyncio.open_connection("127.0.0.1", port))[1])
        worst = 0.0
        for position in range(len(request)):
            for writer in writers:
                writer.write(request[position : position + 1])
            started = time.monotonic()
            assert (await client.get(page)).status_code == 200
            worst = max(worst, time.monotonic() - started)
            await asyncio.sleep(0.02)
    for writer in writers:
        writer.close()
    assert worst < 2.0  # generous: a page still answers while 200 clients trickle
    assert figures["rss_growth"] < 100 * MiB, figures
    assert figures["lag"] < 1.0, figures  # generous: CI shares 2 cores


def test_the_helpers_measure_this_process() -> None:
    assert rss_bytes() > 0
    assert peak_rss_bytes() >= rss_bytes() // 2
    assert sha256(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert sys.platform == "linux"


async def _closed_by_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Trickle a header a byte every 0.2 s until the server closes the connection."""
    request = b"GET /simple/small/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 1000
    async with asyncio.timeout(30):  # a bound on the wait, far past the 1 s setting
        for position in range(len(request)):
            with contextlib.suppress(ConnectionError):
                writer.write(request[position : position + 1])
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.2):
                    if await reader.read(100) == b"":
                        return
        raise AssertionError("the whole slow header went through")


async def test_a_header_not_complete_within_the_header_timeout_closes_the_connection(
    fake_index: FakeIndex,
    start_bodega: StartBodega,
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 17: a slow-loris client held its connection for as long as it trickled bytes
    (aiohttp's keep-alive timeout is an hour, and bytes do not reset it)."""
    caplog.set_level(logging.INFO, logger="bodega.web.protocol")
    fake_index.add("small", SMALL)
    bodega = await start_bodega(header_timeout=1.0)
    port = int(bodega.rsplit(":", 1)[1].strip("/"))
    trickling = await asyncio.open_connection("127.0.0.1", port)
    silent = await asyncio.open_connection("127.0.0.1", port)
    try:
        await _closed_by_server(*trickling)
        async with asyncio.timeout(30):
            assert await silent[0].read(100) == b""  # never sent a byte: closed as well
        # A client that sends its requests whole is unaffected, on one kept-alive connection.
        for _ in range(3):
            assert (await client.get(f"{bodega}simple/small/")).status_code == 200
            await asyncio.sleep(0.6)
    finally:
        for _, writer in (trickling, silent):
            writer.close()
    closed = [r for r in caplog.records if "no complete request header" in r.getMessage()]
    assert len(closed) == 2
