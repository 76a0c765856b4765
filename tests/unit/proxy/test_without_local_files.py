"""The proxy on a blob store without local files (the in-memory fake, shaped like an object
store): a cached file is a hit read from the store, not a second download; the root list is
served from it; the readers that want a path get a copy that goes away after."""

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bodega.core.model import DistributionFile
from bodega.errors import StorageError
from bodega.proxy.core_metadata import CoreMetadataExtractor
from bodega.proxy.file_digests import FileDigester
from bodega.proxy.files import FileCache, Span
from bodega.proxy.release_metadata import ReleaseMetadata
from bodega.proxy.root import RootList
from bodega.proxy.telemetry import Telemetry
from bodega.storage.blobs import read_bytes
from bodega.storage.memory_blobs import MemoryBlobStore
from bodega.storage.sqlite import SqliteIndexStore
from bodega.upstream import Upstream
from bodega.upstream.http import HttpUpstream
from bodega.upstream.offline import OfflineUpstream
from tests.support.distributions import BuiltFile, build_sdist, build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.waiting import eventually

# Larger than the 2 MiB a download keeps in memory for its readers: a late reader must read
# what it fell behind on from somewhere else than the download's window.
LARGE = build_wheel("large", "1.0", payload_size=3 * 1024 * 1024)


@pytest.fixture
async def upstream(fake_index: FakeIndex) -> AsyncIterator[Upstream]:
    client = await HttpUpstream.open(fake_index.simple_url, 5.0, "unit-test")
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def files(
    tmp_path: Path,
    memory_blobs: MemoryBlobStore,
    store: SqliteIndexStore,
    upstream: Upstream,
) -> AsyncIterator[FileCache]:
    cache = FileCache(
        memory_blobs,
        store,
        upstream,
        tmp_path / "spool",
        telemetry=Telemetry().index("root/pypi"),
    )
    try:
        yield cache
    finally:
        await cache.close()


async def cache(files: FileCache, fake_index: FakeIndex, built: BuiltFile) -> None:
    fake_index.add(built.filename.split("-")[0], built)
    url = fake_index.file_url(built.filename)
    await files.download(built.sha256, url, built.size).wait_until_done()


async def test_a_cached_file_is_a_hit_read_from_the_store(
    files: FileCache, fake_index: FakeIndex, memory_blobs: MemoryBlobStore, tmp_path: Path
) -> None:
    await cache(files, fake_index, LARGE)
    assert await read_bytes(memory_blobs, LARGE.sha256) == LARGE.data
    assert os.listdir(tmp_path / "spool") == []  # the spool went into the store

    cached = await files.open_cached(LARGE.sha256)
    assert cached is not None
    try:
        assert cached.path is None
        assert cached.size == LARGE.size
        assert b"".join([c async for c in cached.read(10, 100_010)]) == LARGE.data[10:100_010]
    finally:
        cached.release()
    assert fake_index.count("GET", LARGE.filename) == 1  # no second download


async def test_a_reader_that_falls_behind_a_committed_download_reads_the_store(
    files: FileCache, fake_index: FakeIndex
) -> None:
    fake_index.add("large", LARGE)
    download = files.download(LARGE.sha256, fake_index.file_url(LARGE.filename), LARGE.size)
    await download.wait_until_done()
    assert download.window_start > 0  # the first bytes are no longer in memory
    got = bytearray()
    async for chunk in files.stream(download, spans=True):
        assert not isinstance(chunk, Span)  # no spool or blob file to sendfile from
        got += chunk
    assert bytes(got) == LARGE.data


async def test_the_root_list_is_stored_and_served_from_the_store(
    tmp_path: Path,
    *,
    fake_index: FakeIndex,
    store: SqliteIndexStore,
    memory_blobs: MemoryBlobStore,
    upstream: Upstream,
    files: FileCache,
) -> None:
    fake_index.add("demo", build_wheel("demo", "1.0"))
    root_list = RootList(upstream, store, memory_blobs, tmp_path / "spool", ttl=600)
    try:
        root, _ = await root_list.get()
        await root_list.compressed()
    finally:
        await root_list.close()
    stored = await files.open_stored(root.json_key)
    assert stored is not None
    assert stored.path is None
    body = b"".join([c async for c in stored.read(0, stored.size or 0)])
    assert hashlib.sha256(body).hexdigest() == root.json_key
    assert b"demo" in body
    assert os.listdir(tmp_path / "spool") == []


async def test_a_reader_that_wants_a_path_gets_a_copy_removed_after(
    files: FileCache, fake_index: FakeIndex, tmp_path: Path
) -> None:
    await cache(files, fake_index, LARGE)
    async with files.local_file(LARGE.sha256) as path:
        assert path is not None
        assert path.read_bytes() == LARGE.data
    assert not path.exists()
    assert os.listdir(tmp_path / "spool") == []
    async with files.local_file("0" * 64) as missing:
        assert missing is None


async def test_an_sdist_s_pkg_info_is_read_from_a_store_without_files(
    files: FileCache, fake_index: FakeIndex, tmp_path: Path
) -> None:
    sdist = build_sdist("plain", "2.0", summary="Read through a copy")
    await cache(files, fake_index, sdist)
    listed = DistributionFile(
        sdist.filename, fake_index.file_url(sdist.filename), {"sha256": sdist.sha256}
    )
    found = await ReleaseMetadata(files, extractor=None).read("plain", [listed])  # type: ignore[arg-type]
    assert found.fields is not None
    assert found.fields.get("summary") == "Read through a copy"
    assert os.listdir(tmp_path / "spool") == []


async def test_other_digests_are_hashed_from_a_store_without_files(
    files: FileCache, fake_index: FakeIndex, store: SqliteIndexStore
) -> None:
    await cache(files, fake_index, LARGE)
    digester = FileDigester(store, files)
    try:
        await digester.known([LARGE.sha256])
        found = await eventually(lambda: digester.known([LARGE.sha256]), bool)
    finally:
        await digester.close()
    assert found[LARGE.sha256]["md5"] == hashlib.md5(LARGE.data).hexdigest()


async def test_a_cached_wheel_s_metadata_is_extracted_by_ranged_reads_and_stored(
    files: FileCache,
    fake_index: FakeIndex,
    memory_blobs: MemoryBlobStore,
    store: SqliteIndexStore,
    upstream: Upstream,
) -> None:
    await cache(files, fake_index, LARGE)
    extractor = CoreMetadataExtractor(
        OfflineUpstream(fake_index.simple_url), memory_blobs, store, files
    )
    listed = DistributionFile(
        LARGE.filename, fake_index.file_url(LARGE.filename), {"sha256": LARGE.sha256}
    )
    try:
        key = await extractor.obtain("large", listed)
    finally:
        await extractor.close()
    assert key is not None
    assert key == LARGE.metadata_sha256
    assert await read_bytes(memory_blobs, key) == LARGE.metadata


class _StoreDown(MemoryBlobStore):
    """An object store that stopped answering: every write fails as S3BlobStore's do."""

    def open_writer(self, key: str) -> Any:
        writer = super().open_writer(key)

        async def commit() -> None:
            raise StorageError("the object store is unavailable: connection refused")

        writer.commit = commit  # type: ignore[method-assign]
        return writer


async def test_a_download_the_store_cannot_take_is_sent_and_not_recorded(
    store: SqliteIndexStore, upstream: Upstream, fake_index: FakeIndex, tmp_path: Path
) -> None:
    """Nothing is recorded that is not stored: the client that asked still gets the
    verified bytes, the next request downloads again."""
    blobs = _StoreDown()
    files = FileCache(
        blobs, store, upstream, tmp_path / "spool", telemetry=Telemetry().index("root/pypi")
    )
    try:
        fake_index.add("large", LARGE)
        download = files.download(LARGE.sha256, fake_index.file_url(LARGE.filename), LARGE.size)
        got = bytearray()
        async for chunk in files.stream(download):
            assert not isinstance(chunk, Span)
            got += chunk
        assert bytes(got) == LARGE.data
        with pytest.raises(StorageError):
            await download.wait_until_done()
        assert await store.blob_keys() == set()
        assert await files.open_cached(LARGE.sha256) is None
        assert os.listdir(tmp_path / "spool") == []
    finally:
        await files.close()
