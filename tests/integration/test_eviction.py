"""A bounded cache: least recently used files go first, never one being served."""

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import closing
from pathlib import Path

import asyncpg
import httpx
import pytest

from bodega.errors import StorageError
from bodega.proxy.eviction import Eviction
from bodega.services import Services, open_services
from tests.conftest import StartBodega, needs_file_blobs
from tests.support.distributions import BuiltFile, build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.servers import make_settings

A, B, C = (build_wheel(name, "1.0", payload_size=100_000) for name in ("aaa", "bbb", "ccc"))


@pytest.fixture
def index(fake_index: FakeIndex) -> FakeIndex:
    for wheel in (A, B, C):
        fake_index.add(wheel.filename.split("-")[0], wheel)
    return fake_index


def blob_path(data_dir: Path, file: BuiltFile) -> Path:
    key = file.sha256
    return data_dir / "blobs" / "sha256" / key[:2] / key[2:4] / key


def url(bodega: str, file: BuiltFile) -> str:
    return f"{bodega}files/{file.filename.split('-')[0]}/{file.filename}"


async def wait_for_eviction(path: Path) -> None:
    """Eviction runs in the background after a commit; wait (boundedly) for it."""
    for _ in range(200):
        if not await asyncio.to_thread(path.exists):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path.name} was not evicted")


@needs_file_blobs
async def test_least_recently_used_file_is_evicted_above_the_limit(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    limit = A.size + B.size + C.size // 2  # room for two files, not three
    bodega = await start_bodega(data_dir=data, max_cache_size=limit)
    for file in (A, B, A):  # A was asked for after B: B is now the least recently used
        assert (await client.get(url(bodega, file))).content == file.data
    assert (await client.get(url(bodega, C))).content == C.data
    await wait_for_eviction(blob_path(data, B))
    assert blob_path(data, A).exists()
    assert blob_path(data, C).exists()

    again = await client.get(url(bodega, B))  # fetched again, and A goes in its turn
    assert again.headers["X-Bodega-Cache"] == "MISS"
    assert again.content == B.data
    await wait_for_eviction(blob_path(data, A))
    assert blob_path(data, C).exists()
    metrics = (await client.get(f"{bodega}-/metrics")).text
    assert "bodega_cache_evicted_files_total 2" in metrics


@pytest.fixture
async def services(index: FakeIndex, tmp_path: Path, database_url: str) -> AsyncIterator[Services]:
    """bodega's services without a server, with no size limit until a test sets one."""
    settings = make_settings(
        data_dir=tmp_path / "data", upstream=index.simple_url, database=database_url
    )
    async with open_services(settings) as services:
        yield services


async def cache_file(services: Services, file: BuiltFile) -> None:
    found = await services.indexes.mirror("root/pypi").pages.find_file(
        file.filename.split("-")[0], file.filename
    )
    await services.files.download(found.sha256, found.url, found.size).wait_until_done()


async def test_a_file_being_served_is_never_evicted(services: Services, tmp_path: Path) -> None:
    await cache_file(services, A)
    await cache_file(services, B)
    held = await services.files.open_cached(A.sha256)  # as a response holds it until sent
    assert held is not None
    assert held.path is not None  # the filesystem store's blobs are local files
    services.eviction.max_bytes = 1  # everything is over the limit now
    assert await services.eviction.run_once() == 1
    assert held.path.exists()  # A, although least recently used, is being served
    assert not blob_path(tmp_path / "data", B).exists()
    held.release()
    assert await services.eviction.run_once() == 1
    assert not held.path.exists()


async def accessed_at(database_url: str, data_dir: Path) -> float:
    """A's access time, read from the database itself, not through bodega's store."""
    if database_url:
        connection = await asyncpg.connect(database_url)
        try:
            query = "SELECT accessed_at FROM blobs WHERE key = $1"
            return float(await connection.fetchval(query, A.sha256))
        finally:
            await connection.close()
    with closing(sqlite3.connect(data_dir / "bodega.sqlite3")) as db:
        row = db.execute("SELECT accessed_at FROM blobs WHERE key = ?", (A.sha256,))
        return float(row.fetchone()[0])


async def hit(services: Services, file: BuiltFile) -> None:
    held = await services.files.open_cached(file.sha256)
    assert held is not None
    held.release()


async def test_hits_reach_the_database_in_batches(
    services: Services, tmp_path: Path, database_url: str
) -> None:
    await cache_file(services, A)
    stored = await accessed_at(database_url, tmp_path / "data")
    for _ in range(3):
        await hit(services, A)
    assert await accessed_at(database_url, tmp_path / "data") == stored  # no write per hit
    await services.eviction.run_once()
    assert await accessed_at(database_url, tmp_path / "data") > stored


async def test_a_stop_with_the_database_unable_to_write_still_stops(
    services: Services, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Threat 32 at stop: the hits not yet written meet a full disk (CI saw SQLite's
    "database or disk is full" fail a stop on a full tmpfs). Only their order for eviction
    is lost; the stop goes on."""
    await cache_file(services, A)
    await hit(services, A)

    async def disk_full(keys: object) -> None:
        raise StorageError("metadata store: database or disk is full")

    monkeypatch.setattr(services.eviction._store, "touch_blobs", disk_full)
    await services.eviction.close()
    assert "last use of recently served files not written at stop" in caplog.text


class _HeldElsewhere:
    """Duties another replica or worker holds."""

    async def run(self, duty: str, work: Callable[[], Awaitable[object]]) -> bool:
        return False


async def test_a_process_that_does_not_evict_still_writes_its_hits(
    services: Services, tmp_path: Path, database_url: str
) -> None:
    """Else the process that evicts sees only its own hits, and evicts what the others
    serve most."""
    await cache_file(services, A)
    stored = await accessed_at(database_url, tmp_path / "data")
    await services.eviction.close()  # this one's background pass is replaced by:
    elsewhere = Eviction(
        services.eviction._blobs,
        services.eviction._store,
        services.files,
        services.telemetry,
        max_bytes=0,
        flush_interval=0.05,
        duties=_HeldElsewhere(),
    )
    await elsewhere.start()
    try:
        await hit(services, A)
        for _ in range(100):
            if await accessed_at(database_url, tmp_path / "data") > stored:
                break
            await asyncio.sleep(0.05)
        assert await accessed_at(database_url, tmp_path / "data") > stored
    finally:
        await elsewhere.close()
