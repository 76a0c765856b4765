"""Two file caches sharing one blob store, as replicas do (issue 14), with fetch locks that
keep the other off a blob while one fetches it: one upstream download between them, the
waiter serving what the other stored; a fetch that fails leaves the blob to the waiter."""

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bodega.proxy.files import FileCache
from bodega.proxy.telemetry import Telemetry
from bodega.storage.blobs import read_bytes
from bodega.storage.memory_blobs import MemoryBlobStore
from bodega.storage.sqlite import SqliteIndexStore
from bodega.upstream.http import HttpUpstream
from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex

WHEEL = build_wheel("demo", "1.0", payload_size=3 * 1024 * 1024)


class SharedLocks:
    """What PostgresFetchLocks does between replicas, in one process: a lock per key."""

    def __init__(self) -> None:
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.waited: list[str] = []

    @asynccontextmanager
    async def fetching(self, key: str) -> AsyncIterator[bool]:
        if self._locks[key].locked():
            self.waited.append(key)
        async with self._locks[key]:
            yield True


@pytest.fixture
async def replicas(
    tmp_path: Path, memory_blobs: MemoryBlobStore, store: SqliteIndexStore, fake_index: FakeIndex
) -> AsyncIterator[tuple[FileCache, FileCache, SharedLocks]]:
    fake_index.add("demo", WHEEL)
    locks = SharedLocks()
    upstream = await HttpUpstream.open(fake_index.simple_url, 5.0, "unit-test")
    caches = [
        FileCache(
            memory_blobs,
            store,
            upstream,
            tmp_path / name,
            telemetry=Telemetry().index("root/pypi"),
            fetch_locks=locks,
        )
        for name in ("a", "b")
    ]
    try:
        yield caches[0], caches[1], locks
    finally:
        for cache in caches:
            await cache.close()
        await upstream.close()


async def body(files: FileCache, url: str) -> bytes:
    download = files.download(WHEEL.sha256, url, WHEEL.size)
    chunks = [chunk async for chunk in files.stream(download)]
    assert all(isinstance(chunk, bytes) for chunk in chunks)
    return b"".join(c for c in chunks if isinstance(c, bytes))


async def test_replicas_asking_at_once_download_once_and_both_serve_it(
    replicas: tuple[FileCache, FileCache, SharedLocks],
    fake_index: FakeIndex,
    memory_blobs: MemoryBlobStore,
) -> None:
    first, second, locks = replicas
    url = fake_index.file_url(WHEEL.filename)
    fake_index.pause(WHEEL.filename, after_bytes=100_000)
    one = asyncio.ensure_future(body(first, url))
    await asyncio.sleep(0.2)  # the first holds the lock and is downloading
    two = asyncio.ensure_future(body(second, url))
    await asyncio.sleep(0.2)
    assert locks.waited == [WHEEL.sha256]
    fake_index.reset_faults()
    assert await one == WHEEL.data
    assert await two == WHEEL.data  # read from the store the first committed to
    assert fake_index.count("GET", WHEEL.filename) == 1
    assert await read_bytes(memory_blobs, WHEEL.sha256) == WHEEL.data


async def test_a_replica_whose_fetch_failed_leaves_the_file_to_the_waiter(
    replicas: tuple[FileCache, FileCache, SharedLocks], fake_index: FakeIndex
) -> None:
    first, second, _ = replicas
    url = fake_index.file_url(WHEEL.filename)
    fake_index.corrupt(WHEEL.filename, times=2)  # both of the first's attempts fail
    failed = first.download(WHEEL.sha256, url, WHEEL.size)
    await asyncio.sleep(0)
    waiter = asyncio.ensure_future(body(second, url))
    with pytest.raises(Exception, match="sha256"):
        await failed.wait_until_done()
    assert await waiter == WHEEL.data  # fetched anew once the lock was let go
    assert fake_index.count("GET", WHEEL.filename) == 3
