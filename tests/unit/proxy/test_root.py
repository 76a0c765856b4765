"""The root list streamed into its renderings, synced into search and gzip-compressed, in
bounded memory."""

import asyncio
import contextlib
import gzip
import hashlib
import os
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bodega.core.parsing import HTML, JSON_V1, PageFormatError
from bodega.core.root_list import parse_project_list
from bodega.proxy.compression import gzip_blob
from bodega.proxy.root import RootList, spool_root_list
from bodega.proxy.search import ProjectSearch
from bodega.storage.blobs import store_file
from bodega.storage.filesystem import FilesystemBlobStore
from bodega.storage.metadata import StoredRoot
from bodega.storage.sqlite import SqliteIndexStore
from bodega.upstream.http import HttpUpstream
from bodega.upstream.offline import OfflineUpstream
from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.waiting import eventually

MIB = 1024 * 1024


async def generated_page(count: int, per_chunk: int = 2_000) -> AsyncIterator[bytes]:
    """An upstream root page of `count` names, made as it is read (never whole in memory)."""
    yield b"<!DOCTYPE html>\n<html><body>\n"
    for start in range(0, count, per_chunk):
        anchors = (
            f'    <a href="/simple/project-{i}/">Project_{i}</a>\n'
            for i in range(start, min(start + per_chunk, count))
        )
        yield "".join(anchors).encode()
    yield b"</body></html>\n"


async def chunks_of(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_both_renderings_are_spooled_and_named_by_their_hash(tmp_path: Path) -> None:
    spooled = await spool_root_list(generated_page(5_000, per_chunk=333), HTML, tmp_path)
    assert spooled.project_count == 5_000
    html, as_json = spooled.html_path.read_bytes(), spooled.json_path.read_bytes()
    assert parse_project_list(html, HTML) == [f"Project_{i}" for i in range(5_000)]
    assert parse_project_list(as_json, JSON_V1) == [f"Project_{i}" for i in range(5_000)]
    # The same page in other chunks renders the same bytes: the blob keys only change
    # when the list does.
    again = await spool_root_list(chunks_of(html, 7_919), HTML, tmp_path / "again")
    assert (again.html_key, again.json_key) == (spooled.html_key, spooled.json_key)


@pytest.mark.parametrize(
    ("media_type", "body"),
    [(HTML, b'<a href="/simple/a/">a</a><a href="' + b"x" * 200_000), (JSON_V1, b"[]")],
)
async def test_a_page_that_cannot_be_read_leaves_no_spool_files(
    tmp_path: Path, media_type: str, body: bytes
) -> None:
    with pytest.raises(PageFormatError):
        await spool_root_list(chunks_of(body, 4096), media_type, tmp_path)
    assert os.listdir(tmp_path) == []


async def test_200k_names_are_spooled_and_synced_for_search_in_a_few_mib(
    tmp_path: Path,
    store: SqliteIndexStore,
    blobs: FilesystemBlobStore,
    offline_upstream: OfflineUpstream,
) -> None:
    """Issue 6: the root list once cost 30 MiB per 100k names (the body, the names, their
    sorted pairs; 245 MiB at 800k); now its memory does not grow with its length (4.4 MiB
    at 100k, 200k and 300k alike, SQLite's own page caches aside)."""
    root = RootList(offline_upstream, store, blobs, tmp_path / "tmp", ttl=600)
    search = ProjectSearch(store, blobs, root, refresh_interval=0, first_refresh_delay=0)
    tracemalloc.start()
    try:
        await store_root(store, blobs, tmp_path, 200_000)
        await search.sync_names()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (await search.status()).names == 200_000
    assert peak < 20 * MIB, f"peak {peak / MIB:.1f} MiB"


async def store_root(
    store: SqliteIndexStore, blobs: FilesystemBlobStore, tmp_path: Path, count: int
) -> StoredRoot:
    """The renderings of `count` names, stored as the root list."""
    spooled = await spool_root_list(generated_page(count), HTML, tmp_path / "tmp")
    await store_file(blobs, spooled.html_key, spooled.html_path)
    await store_file(blobs, spooled.json_key, spooled.json_path)
    root = StoredRoot(spooled.html_key, spooled.json_key, count, 0.0)
    await store.put_root(root)
    return root


async def stored_keys(blobs: FilesystemBlobStore) -> set[str]:
    found = set()
    async for key in blobs.keys():
        found.add(key)
    return found


async def blob_bytes(blobs: FilesystemBlobStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in blobs.read(key)])


async def test_a_gzip_copy_is_deterministic_and_decompresses_to_the_rendering(
    tmp_path: Path, store: SqliteIndexStore, blobs: FilesystemBlobStore
) -> None:
    root = await store_root(store, blobs, tmp_path, 5_000)
    key = await gzip_blob(blobs, root.html_key, tmp_path / "tmp")
    again = await gzip_blob(blobs, root.html_key, tmp_path / "tmp")
    copy = await blob_bytes(blobs, key)
    assert again == key == hashlib.sha256(copy).hexdigest()
    assert gzip.decompress(copy) == await blob_bytes(blobs, root.html_key)
    assert copy[4:8] == b"\0\0\0\0"  # mtime 0 (RFC 1952): no clock in the bytes
    assert os.listdir(tmp_path / "tmp") == []


async def test_a_gzip_copy_of_200k_names_is_made_in_a_few_mib(
    tmp_path: Path, store: SqliteIndexStore, blobs: FilesystemBlobStore
) -> None:
    """0.8 MiB at its peak for the 9 MiB rendering: a chunk, its output and zlib's window."""
    root = await store_root(store, blobs, tmp_path, 200_000)
    tracemalloc.start()
    try:
        await gzip_blob(blobs, root.html_key, tmp_path / "tmp")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = await blobs.size(root.html_key)
    assert size is not None
    assert size > 8 * MIB
    assert peak < 4 * MIB, f"peak {peak / MIB:.1f} MiB"


class HeldBlobs(FilesystemBlobStore):
    """Blobs whose reads stop after their first chunk until `release` is set."""

    def __init__(self, root: Path, temp_dir: Path) -> None:
        super().__init__(root, temp_dir)
        self.reading = asyncio.Event()
        self.release = asyncio.Event()

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        async for chunk in super().read(key, start, end):
            yield chunk
            self.reading.set()
            await self.release.wait()


async def test_a_cancelled_gzip_copy_leaves_no_spool_file(
    tmp_path: Path, store: SqliteIndexStore, blobs: FilesystemBlobStore
) -> None:
    root = await store_root(store, blobs, tmp_path, 50_000)
    held = HeldBlobs(tmp_path / "blobs", tmp_path / "tmp")
    task = asyncio.create_task(gzip_blob(held, root.html_key, tmp_path / "tmp"))
    await held.reading.wait()
    assert len(os.listdir(tmp_path / "tmp")) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert os.listdir(tmp_path / "tmp") == []


async def test_a_gzip_copy_cancelled_as_it_starts_leaves_no_spool_file(
    tmp_path: Path, store: SqliteIndexStore, blobs: FilesystemBlobStore
) -> None:
    """As RootList.close() does when a test or a shutdown follows the first request."""
    root = await store_root(store, blobs, tmp_path, 1_000)
    for ticks in range(4):
        task = asyncio.create_task(gzip_blob(blobs, root.html_key, tmp_path / "tmp"))
        for _ in range(ticks):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert os.listdir(tmp_path / "tmp") == []


async def test_copies_of_a_list_a_refresh_replaced_are_dropped_and_the_new_one_compressed(
    tmp_path: Path,
    store: SqliteIndexStore,
    blobs: FilesystemBlobStore,
    offline_upstream: OfflineUpstream,
) -> None:
    await store_root(store, blobs, tmp_path, 1_000)
    root_list = RootList(offline_upstream, store, blobs, tmp_path / "tmp", ttl=600)
    before = await stored_keys(blobs)
    try:
        held = asyncio.Event()
        root_list.before_compressing = held.wait
        first, _ = await root_list.get()  # begins the copies of `first`, held here
        newer = StoredRoot(first.json_key, first.html_key, 1_000, 1.0)  # other renderings
        await store.put_root(newer)  # as a refresh would
        held.set()
        await root_list.compressed()
        assert await store.get_root() == newer
        assert await stored_keys(blobs) == before  # no copy left unreferenced

        held = asyncio.Event()
        root_list.before_compressing = held.wait
        served, _ = await root_list.get()
        assert not served.is_compressed  # served as it is while its copies are made
        held.set()
        await root_list.compressed()
        compressed = await store.get_root()
        assert compressed is not None
        assert compressed.is_compressed
        assert await stored_keys(blobs) == before | compressed.blob_keys
    finally:
        await root_list.close()


async def test_a_replaced_list_s_blobs_are_deleted_after_the_grace_period(
    tmp_path: Path, fake_index: FakeIndex, store: SqliteIndexStore, blobs: FilesystemBlobStore
) -> None:
    """The hourly refresh for search must not leave every old list behind on disk."""
    fake_index.add("one", build_wheel("one", "1.0"))
    upstream = await HttpUpstream.open(fake_index.simple_url, 5.0, "retire-test")
    root = RootList(upstream, store, blobs, tmp_path / "tmp", ttl=600, retire_after=0.2)

    async def present(keys: set[str]) -> list[bool]:
        return [await blobs.local_path(key) is not None for key in sorted(keys)]

    try:
        await root.get()
        await root.compressed()
        first = await store.get_root()
        assert first is not None
        assert first.is_compressed
        old_keys = set(first.blob_keys)
        fake_index.add("two", build_wheel("two", "1.0"))
        second, _ = await root.get(revalidate=True)
        new_keys = {second.html_key, second.json_key}
        assert new_keys.isdisjoint(old_keys)
        assert all(await present(old_keys))  # kept for requests that just looked them up
        await eventually(lambda: present(old_keys), lambda found: not any(found), seconds=10)
        assert all(await present(new_keys))
        # The same list again retires nothing that is served.
        third, _ = await root.get(revalidate=True)
        assert {third.html_key, third.json_key} == new_keys
        await asyncio.sleep(0.4)
        assert all(await present(new_keys))
    finally:
        await root.close()
        await upstream.close()
