"""The background names sync: when its first pass comes, and that no failure ends it; the
notes worker: that it survives a failure and waits for clients to leave the server quiet."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TypeVar

import pytest

from bodega.core.parsing import HTML
from bodega.proxy.activity import ClientActivity
from bodega.proxy.root import RootList, spool_root_list
from bodega.proxy.search import ProjectSearch
from bodega.storage.blobs import store_bytes, store_file
from bodega.storage.filesystem import FilesystemBlobStore
from bodega.storage.metadata import StoredRoot
from bodega.storage.sqlite import SqliteIndexStore
from bodega.upstream import Upstream
from bodega.upstream.http import HttpUpstream
from bodega.upstream.offline import OfflineUpstream
from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.waiting import eventually

T = TypeVar("T")


class FailingOnce(FilesystemBlobStore):
    """A blob store whose first read hits a bug: not a BodegaError, just an exception."""

    failures = 1

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("a bug in one pass")
        async for chunk in super().read(key, start, end):
            yield chunk


@contextlib.asynccontextmanager
async def offline_search(
    store: SqliteIndexStore,
    blobs: FilesystemBlobStore,
    upstream: Upstream,
    temp_dir: Path,
    refresh_interval: float = 0,
    *,
    activity: ClientActivity | None = None,
) -> AsyncIterator[ProjectSearch]:
    """An offline search over `store` and `blobs`, closed after."""
    root = RootList(upstream, store, blobs, temp_dir, ttl=600)
    search = ProjectSearch(
        store,
        blobs,
        root,
        refresh_interval=refresh_interval,
        first_refresh_delay=0,
        activity=activity,
    )
    try:
        yield search
    finally:
        await search.close()


async def test_a_pass_that_fails_unexpectedly_is_logged_and_the_next_one_runs(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    store: SqliteIndexStore,
    offline_upstream: OfflineUpstream,
) -> None:
    blobs = FailingOnce(tmp_path / "blobs", tmp_path / "tmp")
    page = b'<a href="a/">a</a><a href="b/">b</a><a href="c/">c</a>'

    async def one_page() -> AsyncIterator[bytes]:
        yield page

    temp_dir = tmp_path / "tmp"
    async with offline_search(store, blobs, offline_upstream, temp_dir, 0.05) as search:
        spooled = await spool_root_list(one_page(), HTML, tmp_path / "tmp")
        await store_file(blobs, spooled.json_key, spooled.json_path)
        await store.put_root(StoredRoot(spooled.html_key, spooled.json_key, 3, 0.0))
        search.start()
        await eventually(search.status, lambda status: status.names == 3)
    failure = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert failure
    assert failure[0].exc_info is not None


async def test_the_notes_worker_survives_an_unexpected_failure(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    store: SqliteIndexStore,
    offline_upstream: OfflineUpstream,
) -> None:
    """Issue 17: a note that hit a bug (not a BodegaError) ended the worker, and search
    learned no summary or version again until a restart."""
    blobs = FailingOnce(tmp_path / "blobs", tmp_path / "tmp")
    metadata = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nSummary: A demo\n"
    await store_bytes(blobs, "a" * 64, metadata)
    await store_bytes(blobs, "b" * 64, metadata)
    async with offline_search(store, blobs, offline_upstream, tmp_path / "tmp") as search:
        search.start()
        search.saw_metadata("demo", "a" * 64, None)  # its read hits the bug
        search.saw_metadata("demo", "b" * 64, None)

        async def details() -> str | None:
            found = (await store.get_search_details(["demo"])).get("demo")
            return found.summary if found is not None else None

        await eventually(details, lambda summary: summary == "A demo")
    failure = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert failure
    assert failure[0].exc_info is not None


async def test_the_first_pass_waits_its_delay_so_start_up_fetches_no_root_list(
    tmp_path: Path, fake_index: FakeIndex, store: SqliteIndexStore, blobs: FilesystemBlobStore
) -> None:
    fake_index.add("demo", build_wheel("demo", "1.0"))
    upstream = await HttpUpstream.open(fake_index.simple_url, 5.0, "search-test")
    root = RootList(upstream, store, blobs, tmp_path / "tmp", ttl=600)
    waiting = ProjectSearch(store, blobs, root, refresh_interval=3600, first_refresh_delay=60)
    prompt = ProjectSearch(store, blobs, root, refresh_interval=3600, first_refresh_delay=0)
    try:
        waiting.start()
        await asyncio.sleep(0.5)
        assert fake_index.count("GET", "/simple/") == 0
        await waiting.close()  # cancelled while it waits
        prompt.start()
        await eventually(prompt.status, lambda status: status.names == 1)
        assert fake_index.count("GET", "/simple/") == 1
    finally:
        await waiting.close()
        await prompt.close()
        await root.close()
        await upstream.close()


async def test_a_note_for_a_blob_evicted_meanwhile_is_dropped_quietly_and_noted_again_later(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    store: SqliteIndexStore,
    blobs: FilesystemBlobStore,
    offline_upstream: OfflineUpstream,
) -> None:
    """A .metadata evicted between its request and its note is not a bug: no ERROR, and the
    next request for it is noted again."""
    async with offline_search(store, blobs, offline_upstream, tmp_path / "tmp") as search:
        search.start()
        search.saw_metadata("demo", "c" * 64, None)  # no such blob (evicted)

        async def forgotten() -> bool:
            return "c" * 64 not in search._seen_metadata

        await eventually(forgotten, bool)
        await store_bytes(blobs, "c" * 64, b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
        search.saw_metadata("demo", "c" * 64, None)

        async def version() -> str | None:
            found = (await store.get_search_details(["demo"])).get("demo")
            return found.version if found is not None else None

        await eventually(version, lambda found: found == "1.0")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_notes_wait_while_a_client_is_served_and_are_taken_once_it_is_done(
    tmp_path: Path,
    store: SqliteIndexStore,
    blobs: FilesystemBlobStore,
    offline_upstream: OfflineUpstream,
) -> None:
    """A note is bodega's own work: during an installer's burst it would take CPU from it."""
    activity = ClientActivity(quiet=0.02)
    metadata = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nSummary: A demo\n"
    await store_bytes(blobs, "d" * 64, metadata)
    async with offline_search(
        store, blobs, offline_upstream, tmp_path / "tmp", activity=activity
    ) as search:
        search.start()
        activity.started()  # a client is being served
        search.saw_metadata("demo", "d" * 64, None)
        await asyncio.sleep(0.3)  # far more than the note takes once it may run
        assert await store.get_search_details(["demo"]) == {}
        activity.ended()

        async def summary() -> str | None:
            found = (await store.get_search_details(["demo"])).get("demo")
            return found.summary if found is not None else None

        await eventually(summary, lambda found: found == "A demo")
