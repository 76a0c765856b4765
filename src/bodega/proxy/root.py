"""The root list (/simple/): streamed from upstream and rendered as it comes into two blobs
(HTML and JSON), which are served as they are. 800k names cost one pass over upstream's
bytes in a few MiB, never the whole list in memory, and one render per refresh, not one per
request.

Once the renderings are served, a background task makes a gzip copy of each (issue 6: tens
of MB that clients take gzipped at a quarter of the size); until the copies are recorded
the renderings are served as they are.

A refresh that finds another list retires the old renderings and copies: they are deleted
RETIRE_AFTER seconds later (a request that looked them up just before still opens them), so
the hourly refresh for search does not leave ~70 MB behind each time the list changes.
"""

import asyncio
import dataclasses
import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bodega.core.root_list import (
    ROOT_HTML_END,
    ROOT_HTML_START,
    ROOT_JSON_END,
    ROOT_JSON_START,
    Entry,
    project_list_scanner,
    root_html_anchors,
    root_json_entries,
)
from bodega.errors import BodegaError, NotFound, UpstreamError
from bodega.offloop import acquire_off_loop
from bodega.proxy.compression import GZIP_LEVEL, gzip_blob
from bodega.proxy.coordination import Flights
from bodega.proxy.singleflight import SingleFlight
from bodega.storage.blobs import BlobStore, store_file
from bodega.storage.metadata import RootListStore, StoredRoot

__all__ = [
    "Listing",
    "RootList",
    "RootSource",
    "SpooledRoot",
    "StoredRoot",
    "batches",
    "spool_root_list",
]

log = logging.getLogger(__name__)


class Listing(Protocol):
    """A root page as it streams in."""

    @property
    def media_type(self) -> str: ...

    def chunks(self) -> AsyncIterator[bytes]: ...


class RootSource(Protocol):
    """Where a root list comes from: a mirror's upstream, or a virtual index's bases."""

    @property
    def is_offline(self) -> bool:
        """True when the list is never refreshed (the cached one is served as it is)."""
        ...

    def open_root(self) -> AbstractAsyncContextManager[Listing]: ...


BATCH_BYTES = 1024 * 1024  # what one worker-thread hop scans and renders
RETIRE_AFTER = 60.0  # seconds a replaced list's blobs stay before they are deleted


class RootList:
    """The list of every project upstream has."""

    def __init__(
        self,
        upstream: RootSource,
        store: RootListStore,
        blobs: BlobStore,
        spool_dir: Path,
        *,
        ttl: float,
        gzip_level: int = GZIP_LEVEL,
        retire_after: float = RETIRE_AFTER,
        clock: Callable[[], float] = time.time,
        flights: Flights[StoredRoot] | None = None,
    ) -> None:
        self._upstream = upstream
        self._store = store
        self._blobs = blobs
        self._spool_dir = spool_dir
        self._ttl = ttl
        self._gzip_level = gzip_level
        self._clock = clock
        self._refresh: Flights[StoredRoot] = (
            flights if flights is not None else SingleFlight[StoredRoot]()
        )
        self._compressions: set[asyncio.Task[None]] = set()
        self._retire_after = retire_after
        self._retirements: set[asyncio.Task[None]] = set()
        # The renderings whose copies were last begun: one attempt per list and process, so
        # a failing one (a full disk) is not retried on every request.
        self._compressing: tuple[str, str] | None = None
        # Awaited before each compression begins: tests hold it to see what is served
        # while the copies are not made yet.
        self.before_compressing: Callable[[], Awaitable[object]] | None = None

    @property
    def is_offline(self) -> bool:
        return self._upstream.is_offline

    async def get(self, *, revalidate: bool = False) -> tuple[StoredRoot, bool]:
        """The stored root list and whether it is stale (upstream could not refresh it)."""
        root, is_stale = await self._get(revalidate)
        self._compress_in_background(root)
        return root, is_stale

    async def compressed(self) -> None:
        """Wait until the gzip copies being made, if any, are recorded (or have failed)."""
        while self._compressions:
            await asyncio.wait(set(self._compressions))

    async def _get(self, revalidate: bool) -> tuple[StoredRoot, bool]:
        stored = await self._store.get_root()
        if self._upstream.is_offline:
            if stored is None:
                raise NotFound("the root list is not cached and bodega is offline")
            return stored, False
        # A negative age is a clock that stepped back: expired, not fresh (threat 36).
        is_fresh = stored is not None and 0 <= self._clock() - stored.fetched_at < self._ttl
        if stored is not None and not revalidate and is_fresh:
            return stored, False
        try:
            return await self._refresh.call("root", self._fetch), False
        except UpstreamError as error:
            if stored is None:
                raise
            log.warning("serving the root list stale: %s", error)
            return stored, True

    def max_age(self, root: StoredRoot) -> int:
        return max(0, int(self._ttl - (self._clock() - root.fetched_at)))

    async def close(self) -> None:
        await self._refresh.close()
        # A retirement cut short leaves its blobs for `bodega cache verify` to adopt.
        for task in (*self._compressions, *self._retirements):
            task.cancel()
        await asyncio.gather(*self._compressions, *self._retirements, return_exceptions=True)

    def _compress_in_background(self, root: StoredRoot) -> None:
        renderings = (root.html_key, root.json_key)
        if root.is_compressed or renderings == self._compressing:
            return
        for task in self._compressions:
            task.cancel()  # copies of renderings no longer served
        self._compressing = renderings
        task = asyncio.create_task(self._compress(root), name="bodega-root-gzip")
        self._compressions.add(task)
        task.add_done_callback(self._compressions.discard)

    async def _compress(self, root: StoredRoot) -> None:
        if self.before_compressing is not None:
            await self.before_compressing()
        started = time.monotonic()
        made: list[str] = []
        is_recorded = False
        try:
            # JSON first: what installers and mirrors ask for.
            for key in (root.json_key, root.html_key):
                made.append(await self._gzip(key))
            json_gzip_key, html_gzip_key = made
            compressed = dataclasses.replace(
                root, html_gzip_key=html_gzip_key, json_gzip_key=json_gzip_key
            )
            is_recorded = await self._store.add_root_gzip(compressed)
            if is_recorded:
                log.info("root list gzip copies made in %.1f s", time.monotonic() - started)
        except (OSError, BodegaError) as error:
            log.warning("the root list stays uncompressed: %s", error)
        finally:
            if not is_recorded:
                # Failed, cancelled or overtaken by a refresh: nothing refers to these copies.
                await asyncio.shield(self._delete(made))

    async def _delete(self, keys: list[str]) -> None:
        for key in keys:
            await self._blobs.delete(key)

    async def _gzip(self, key: str) -> str:
        return await gzip_blob(self._blobs, key, self._spool_dir, level=self._gzip_level)

    async def _fetch(self) -> StoredRoot:
        async with self._upstream.open_root() as listing:
            spooled = await spool_root_list(listing.chunks(), listing.media_type, self._spool_dir)
        try:
            await store_file(self._blobs, spooled.html_key, spooled.html_path)
            await store_file(self._blobs, spooled.json_key, spooled.json_path)
        finally:
            await asyncio.to_thread(spooled.discard)  # whatever store_file did not consume
        root = StoredRoot(spooled.html_key, spooled.json_key, spooled.project_count, self._clock())
        previous = await self._store.get_root()
        stored = await self._store.put_root(root)
        if previous is not None:
            self._retire(set(previous.blob_keys) - set(stored.blob_keys))
        return stored

    def _retire(self, keys: set[str]) -> None:
        if not keys:
            return

        async def retire() -> None:
            await asyncio.sleep(self._retire_after)
            try:
                # The list may have come back meanwhile: never delete what is served now.
                current = await self._store.get_root()
                for key in sorted(keys - set(current.blob_keys if current else ())):
                    await self._blobs.delete(key)
            except (BodegaError, OSError) as error:
                log.warning("replaced root list blobs left for cache verify: %s", error)

        task = asyncio.create_task(retire(), name="bodega-root-retire")
        self._retirements.add(task)
        task.add_done_callback(self._retirements.discard)


@dataclass(frozen=True, slots=True)
class SpooledRoot:
    """The two renderings of a root list, complete in the spool, named by their sha256."""

    html_path: Path
    html_key: str
    json_path: Path
    json_key: str
    project_count: int

    def discard(self) -> None:
        self.html_path.unlink(missing_ok=True)
        self.json_path.unlink(missing_ok=True)


async def spool_root_list(
    chunks: AsyncIterable[bytes], media_type: str, spool_dir: Path
) -> SpooledRoot:
    """A root page scanned and rendered into two spool files while its bytes stream in.

    The scanning, rendering, hashing and writing all run in worker threads, a batch of
    chunks per hop, so the event loop only moves bytes along.
    """
    spool = await acquire_off_loop(lambda: _RootSpool(spool_dir, media_type), _RootSpool.abort)
    try:
        async with aclosing(batches(chunks, BATCH_BYTES)) as batched:
            async for batch in batched:
                await asyncio.to_thread(spool.feed, batch)
        return await asyncio.to_thread(spool.finish)
    except BaseException:
        # Shielded: a second cancellation must not leave the files behind.
        await asyncio.shield(asyncio.to_thread(spool.abort))
        raise


async def batches(chunks: AsyncIterable[bytes], size: int) -> AsyncGenerator[list[bytes], None]:
    """Chunks gathered into lists of at least `size` bytes (but the last)."""
    batch: list[bytes] = []
    total = 0
    async for chunk in chunks:
        batch.append(chunk)
        total += len(chunk)
        if total >= size:
            yield batch
            batch, total = [], 0
    if batch:
        yield batch


class _RootSpool:
    """The two renderings being written, one batch of names at a time.

    Used by one worker thread at a time; the lock makes abort() wait for a batch that is
    still running in its thread after the task that awaited it was cancelled.
    """

    def __init__(self, spool_dir: Path, media_type: str) -> None:
        self._scanner = project_list_scanner(media_type)  # an unknown type fails before any file
        self._lock = threading.Lock()
        self._count = 0
        spool_dir.mkdir(parents=True, exist_ok=True)
        self._html = _SpoolFile(spool_dir)
        try:
            self._json = _SpoolFile(spool_dir)
        except BaseException:
            self._html.abort()
            raise
        self._html.write(ROOT_HTML_START)
        self._json.write(ROOT_JSON_START)

    def feed(self, batch: list[bytes]) -> None:
        with self._lock:
            for chunk in batch:
                self._render(self._scanner.feed(chunk))

    def finish(self) -> SpooledRoot:
        with self._lock:
            self._render(self._scanner.close())
            self._html.write(ROOT_HTML_END)
            self._json.write(ROOT_JSON_END)
            html_key, json_key = self._html.close(), self._json.close()
            return SpooledRoot(self._html.path, html_key, self._json.path, json_key, self._count)

    def abort(self) -> None:
        with self._lock:
            self._html.abort()
            self._json.abort()

    def _render(self, entries: list[Entry]) -> None:
        if entries:
            self._html.write(root_html_anchors(entries))
            self._json.write(root_json_entries(entries, is_first=self._count == 0))
            self._count += len(entries)


class _SpoolFile:
    """A spool file that hashes what is written to it, for its blob key."""

    def __init__(self, spool_dir: Path) -> None:
        fd, name = tempfile.mkstemp(dir=spool_dir, suffix=".root")
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._hasher = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self._hasher.update(data)
        self._file.write(data)

    def close(self) -> str:
        self._file.close()
        return self._hasher.hexdigest()

    def abort(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)
