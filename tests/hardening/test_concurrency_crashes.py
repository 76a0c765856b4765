"""Threat list section C: concurrency, crashes and the clock.

Crash tests (scenarios 30, 31) run bodega as a subprocess armed with BODEGA_TEST_CRASH_AT,
let it SIGKILL itself at one step of storing a file or a page, restart it on the same data
dir and check the invariants on disk and in SQLite, then that the next request heals.
"""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from bodega.errors import ConfigError
from bodega.proxy.crashpoints import ENV_VAR, FILE_POINTS, PAGE_POINTS, CrashPoints
from bodega.proxy.pages import PageRecords, ProjectPages
from bodega.proxy.root import RootList
from bodega.proxy.telemetry import Telemetry
from bodega.storage.filesystem import FilesystemBlobStore
from bodega.storage.metadata import FIRST_INDEX, StoredPage
from bodega.storage.sqlite import SqliteMetadataStore
from bodega.upstream.http import HttpUpstream
from tests.conftest import StartBodega
from tests.hardening.invariants import check_invariants
from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.servers import BodegaProcess, bodega_process
from tests.support.waiting import eventually

WHEEL = build_wheel("demo", "1.0", payload_size=600_000)  # a few chunks: a mid-write point


def cache_verify(data_dir: Path, upstream: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "bodega",
            "cache",
            "verify",
            "--data-dir",
            str(data_dir),
        ],
        # cache verify offers only --data-dir; the upstream it ignores comes as serve's would.
        env={**os.environ, "BODEGA_UPSTREAM": upstream},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_verify_finds_no_problem(data_dir: Path, upstream: str) -> None:
    """`bodega cache verify` after a crash: nothing corrupt, nothing missing. A verified blob
    whose row the crash prevented is adopted (threat 31's expected recovery); after that
    a second run finds nothing at all to correct."""
    first = cache_verify(data_dir, upstream)
    assert ": 0 quarantined, 0 missing," in first.stdout, first.stdout + first.stderr
    second = cache_verify(data_dir, upstream)
    assert second.returncode == 0, second.stdout + second.stderr
    assert ": 0 quarantined, 0 missing, 0 adopted, 0 unknown" in second.stdout


def crash_at(point: str, data_dir: Path, upstream: str) -> BodegaProcess:
    args = ["--data-dir", str(data_dir), "--upstream", upstream]
    return BodegaProcess(args, env={ENV_VAR: point})


@pytest.mark.parametrize("point", FILE_POINTS)
def test_scenarios_30_31_killed_while_storing_a_file(
    fake_index: FakeIndex, tmp_path: Path, point: str
) -> None:
    """Scenario 30 (during the blob write) and 31 (between commit and row, between row and
    response): after a restart no partial blob is visible, the spool is clean, no row
    lacks its blob, every blob hashes to its name, and the next request heals."""
    fake_index.add("demo", WHEEL)
    data_dir = tmp_path / "data"
    doomed = crash_at(point, data_dir, fake_index.simple_url)
    committed = point in ("file_committed", "file_recorded")
    try:
        with httpx.Client(trust_env=False, timeout=30) as client:
            assert client.get(f"{doomed.url}simple/demo/").status_code == 200
            if committed:
                # Past verification the last byte is released before the commit, so the
                # client may have the whole, verified file; never anything else.
                with contextlib.suppress(httpx.TransportError):
                    got = client.get(f"{doomed.url}files/demo/{WHEEL.filename}")
                    assert (got.status_code, got.content) == (200, WHEEL.data)
            else:
                # A transport error, never a response: a 200 would be a point never reached.
                with pytest.raises(httpx.TransportError):
                    client.get(f"{doomed.url}files/demo/{WHEEL.filename}")
        assert doomed.process.wait(timeout=10) == -signal.SIGKILL
    finally:
        doomed.stop()
    assert_verify_finds_no_problem(data_dir, fake_index.simple_url)
    with bodega_process(data_dir, fake_index.simple_url) as bodega:
        state = check_invariants(data_dir)
        assert list((data_dir / "tmp").iterdir()) == []
        assert state.blobs == ({WHEEL.sha256} if committed else set())
        with httpx.Client(trust_env=False, timeout=30) as client:
            healed = client.get(f"{bodega.url}files/demo/{WHEEL.filename}")
        assert healed.status_code == 200
        assert healed.content == WHEEL.data
    state = check_invariants(data_dir)
    assert state.blobs == {WHEEL.sha256}
    assert list((data_dir / "tmp").iterdir()) == []
    # A verified blob is never fetched again; an unfinished one is, once.
    assert fake_index.count("GET", WHEEL.filename) == (1 if committed else 2)


@pytest.mark.parametrize("point", PAGE_POINTS)
def test_scenario_31_killed_while_storing_a_page(
    fake_index: FakeIndex, tmp_path: Path, point: str
) -> None:
    """Scenario 31 for pages: a page is stored whole or not at all, and is served after a
    restart either from the store or fetched again."""
    fake_index.add("demo", WHEEL)
    data_dir = tmp_path / "data"
    doomed = crash_at(point, data_dir, fake_index.simple_url)
    try:
        with httpx.Client(trust_env=False, timeout=30) as client:
            if point == "page_stored":
                # The page is written behind its response: the client may have it already.
                with contextlib.suppress(httpx.TransportError):
                    got = client.get(f"{doomed.url}simple/demo/", headers={"Accept": "text/html"})
                    assert got.status_code == 200
                    assert WHEEL.filename in got.text
            else:
                with pytest.raises(httpx.HTTPError):
                    client.get(f"{doomed.url}simple/demo/").raise_for_status()
        assert doomed.process.wait(timeout=10) == -signal.SIGKILL
    finally:
        doomed.stop()
    state = check_invariants(data_dir)
    assert state.pages == ({"demo"} if point == "page_stored" else set())
    assert_verify_finds_no_problem(data_dir, fake_index.simple_url)
    with (
        bodega_process(data_dir, fake_index.simple_url) as bodega,
        httpx.Client(trust_env=False, timeout=30) as client,
    ):
        page = client.get(f"{bodega.url}simple/demo/", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert WHEEL.filename in page.text
        assert client.get(f"{bodega.url}files/demo/{WHEEL.filename}").content == WHEEL.data
    assert fake_index.count("GET", "/simple/demo/") == (1 if point == "page_stored" else 2)


async def test_scenario_29_nothing_is_left_behind_when_every_client_hangs_up(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Scenario 29: the policy is to finish the download (tests/integration/test_files.py);
    here: no task and no spool file outlives it."""
    fake_index.add("demo", WHEEL)
    fake_index.throttle(WHEEL.filename, bytes_per_second=2_000_000, chunk=50_000)
    bodega = await start_bodega()
    await client.get(f"{bodega}simple/demo/")
    baseline = len(asyncio.all_tasks())
    async with httpx.AsyncClient(trust_env=False) as others:
        for _ in range(5):
            async with others.stream("GET", f"{bodega}files/demo/{WHEEL.filename}") as response:
                await anext(response.aiter_raw())
    for _ in range(200):
        if check_invariants(tmp_path / "data").blobs:
            break
        await asyncio.sleep(0.05)
    for _ in range(100):
        if len(asyncio.all_tasks()) <= baseline:
            break
        await asyncio.sleep(0.05)
    assert len(asyncio.all_tasks()) <= baseline
    assert list((tmp_path / "data" / "tmp").iterdir()) == []
    assert check_invariants(tmp_path / "data").blobs == {WHEEL.sha256}
    assert fake_index.count("GET", WHEEL.filename) == 1


async def test_scenario_33_another_process_holding_the_write_lock(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Scenario 33: while another process holds SQLite's write lock, cached pages are
    served, a new page is served too (its write waits behind the response, inside
    busy_timeout) and is stored once the lock goes: no 'database is locked' error reaches
    a client. (Past busy_timeout the page stays in memory, not stored: pages.py.)"""
    fake_index.add("demo", WHEEL)
    fake_index.add("other", build_wheel("other", "1.0"))
    data_dir = tmp_path / "data"
    bodega = await start_bodega()
    assert (await client.get(f"{bodega}simple/demo/")).status_code == 200
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sqlite3, sys, time\n"
        f"db = sqlite3.connect({str(data_dir / 'bodega.sqlite3')!r}, isolation_level=None)\n"
        "db.execute('BEGIN IMMEDIATE')\n"
        "db.execute('DELETE FROM pages WHERE project = \"nothing\"')\n"
        "print('locked', flush=True)\n"
        "time.sleep(2)\n"
        "db.execute('ROLLBACK')\n",
        stdout=asyncio.subprocess.PIPE,
    )
    assert holder.stdout is not None
    assert (await holder.stdout.readline()).strip() == b"locked"
    started = time.monotonic()
    cold = asyncio.create_task(client.get(f"{bodega}simple/other/"))
    cached = await client.get(f"{bodega}simple/demo/")
    assert cached.status_code == 200
    assert holder.returncode is None  # answered while the lock was still held
    assert (await cold).status_code == 200
    assert time.monotonic() - started < 9  # inside busy_timeout (10 s), not after it
    assert await holder.wait() == 0
    # The page is written behind its response: it lands once the lock is released.
    await eventually(
        lambda: asyncio.to_thread(lambda: check_invariants(data_dir).pages),
        lambda pages: "other" in pages,
        seconds=10,
    )


async def test_scenario_36_ttl_boundaries_and_a_clock_that_steps_back(
    fake_index: FakeIndex, tmp_path: Path
) -> None:
    """Scenario 36: fresh strictly before the TTL, revalidated at it, and a clock that went
    back counts as expired rather than as fresh for the length of the step."""
    fake_index.add("demo", WHEEL)
    now = [1_000_000.0]
    upstream = await HttpUpstream.open(fake_index.simple_url, 5.0, "clock-test")
    database = await SqliteMetadataStore.open(tmp_path / "meta.sqlite3")
    pages = ProjectPages(
        upstream,
        database.index(FIRST_INDEX),
        ttl=600,
        telemetry=Telemetry().index("root/pypi"),
        clock=lambda: now[0],
    )
    try:

        def fetches() -> int:
            return fake_index.count("GET", "/simple/demo/")

        await pages.get("demo")
        assert fetches() == 1
        now[0] += 599.999
        await pages.get("demo")
        assert fetches() == 1
        now[0] += 0.001
        page = await pages.get("demo")
        assert fetches() == 2
        assert pages.max_age(page) == 600
        now[0] -= 3600  # the clock steps back an hour
        page = await pages.get("demo")
        assert fetches() == 3
        assert pages.max_age(page) == 600
    finally:
        await pages.close()
        await upstream.close()
        await database.close()


class _HeldWrites:
    """A page store whose writes wait until released: a write still in flight, as on a
    loaded machine."""

    def __init__(self, store: PageRecords) -> None:
        self._store = store
        self.release = asyncio.Event()

    async def put_page(self, record: StoredPage) -> None:
        await self.release.wait()
        await self._store.put_page(record)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


async def test_a_page_whose_write_is_in_flight_is_served_stale_when_upstream_fails(
    fake_index: FakeIndex, tmp_path: Path
) -> None:
    """The store write of a fetched page comes after its answer; a refresh that fails
    before it lands still has that page to serve stale (it is not a page `bodega cache
    forget` dropped)."""
    fake_index.add("demo", WHEEL)
    upstream = await HttpUpstream.open(fake_index.simple_url, 0.5, "held-writes")
    database = await SqliteMetadataStore.open(tmp_path / "meta.sqlite3")
    store = _HeldWrites(database.index(FIRST_INDEX))
    pages = ProjectPages(
        upstream, cast(PageRecords, store), ttl=0, telemetry=Telemetry().index("root/pypi")
    )
    try:
        fresh = await pages.get("demo")
        fake_index.set_down(True)
        stale = await pages.get("demo")
        assert stale.is_stale
        assert stale.page == fresh.page
    finally:
        store.release.set()
        await pages.close()
        await upstream.close()
        await database.close()


async def test_scenario_36_no_negative_cache_hides_a_new_project(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    """Scenario 36: bodega keeps no 404s, so a project published a second after a miss
    is found on the next request."""
    bodega = await start_bodega()
    assert (await client.get(f"{bodega}simple/demo/")).status_code == 404
    fake_index.add("demo", WHEEL)
    assert (await client.get(f"{bodega}simple/demo/")).status_code == 200


async def test_scenario_36_the_root_list_expires_when_the_clock_steps_back(
    fake_index: FakeIndex, tmp_path: Path
) -> None:
    fake_index.add("demo", WHEEL)
    now = [1_000_000.0]
    upstream = await HttpUpstream.open(fake_index.simple_url, 5.0, "clock-test")
    database = await SqliteMetadataStore.open(tmp_path / "meta.sqlite3")
    blobs = FilesystemBlobStore(tmp_path / "blobs", tmp_path / "tmp")
    root = RootList(
        upstream,
        database.index(FIRST_INDEX),
        blobs,
        tmp_path / "tmp",
        ttl=600,
        clock=lambda: now[0],
    )
    try:
        await root.get()
        await root.get()
        assert fake_index.count("GET", "/simple/") == 1
        now[0] -= 3600
        await root.get()
        assert fake_index.count("GET", "/simple/") == 2
    finally:
        await root.close()
        await upstream.close()
        await database.close()


def test_an_unknown_crash_point_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        CrashPoints.from_environment({ENV_VAR: "nowhere"})
    assert CrashPoints.from_environment({}) is not None
