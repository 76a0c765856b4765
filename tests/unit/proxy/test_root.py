"""The root list streamed into its renderings, and synced into search, in bounded memory."""

import os
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bodega.core.parsing import HTML, JSON_V1, PageFormatError
from bodega.core.root_list import parse_project_list
from bodega.proxy.root import RootList, spool_root_list
from bodega.proxy.search import ProjectSearch
from bodega.storage.filesystem import FilesystemBlobStore
from bodega.storage.metadata import StoredRoot
from bodega.storage.sqlite import SqliteMetadataStore
from bodega.upstream import UpstreamClient

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


async def test_200k_names_are_spooled_and_synced_for_search_in_a_few_mib(tmp_path: Path) -> None:
    """Issue 6: the root list once cost 30 MiB per 100k names (the body, the names, their
    sorted pairs; 245 MiB at 800k); now its memory does not grow with its length (4.4 MiB
    at 100k, 200k and 300k alike, SQLite's own page caches aside)."""
    store = await SqliteMetadataStore.open(tmp_path / "db.sqlite3")
    blobs = FilesystemBlobStore(tmp_path / "blobs", tmp_path / "tmp")
    upstream = await UpstreamClient.open("http://127.0.0.1:9/simple/", 5.0, "memory-test")
    root = RootList(upstream, store, blobs, tmp_path / "tmp", ttl=600, offline=True)
    search = ProjectSearch(
        store, blobs, root, refresh_interval=0, offline=True, first_refresh_delay=0
    )
    try:
        tracemalloc.start()
        try:
            spooled = await spool_root_list(generated_page(200_000), HTML, tmp_path / "tmp")
            await blobs.put_file(spooled.html_key, spooled.html_path)
            await blobs.put_file(spooled.json_key, spooled.json_path)
            await store.put_root(StoredRoot(spooled.html_key, spooled.json_key, 200_000, 0.0))
            await search.sync_names()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert (await search.status()).names == 200_000
        assert peak < 20 * MIB, f"peak {peak / MIB:.1f} MiB"
    finally:
        await upstream.close()
        await store.close()
