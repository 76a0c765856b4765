"""Keeping the cache under its size limit: least recently used blobs go first.

Runs in the background, woken after a download commits and every `flush_interval` seconds,
never on a request's path, as the EVICTION duty (proxy/coordination.py: one process holds
it). Hits are noted in memory by the file cache and written to the store in one batch per
pass, not one write per hit. A blob being served or downloaded is never evicted.
"""

import asyncio
import contextlib
import logging

from bodega.errors import StorageError
from bodega.proxy.coordination import EVICTION, Duties, LocalDuties
from bodega.proxy.files import FileCache
from bodega.proxy.telemetry import Telemetry
from bodega.storage.blobs import BlobStore
from bodega.storage.metadata import BlobRecords

log = logging.getLogger(__name__)

_BATCH = 256  # candidates read from the store at a time


class Eviction:
    """Owns the cache's size: tracks it, writes access times, evicts above `max_bytes`."""

    def __init__(
        self,
        blobs: BlobStore,
        store: BlobRecords,
        files: FileCache,
        telemetry: Telemetry,
        *,
        max_bytes: int,  # 0: no limit
        flush_interval: float = 30.0,
        duties: Duties | None = None,
    ) -> None:
        self._blobs = blobs
        self._store = store
        self._files = files
        self._telemetry = telemetry
        self.max_bytes = max_bytes
        self._flush_interval = flush_interval
        self._duties = duties or LocalDuties()
        self.size_bytes = 0  # as of the last pass, plus what was committed since
        self.blob_count = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.blob_count, self.size_bytes = await self._store.blob_usage()
        self._files.on_commit = self._committed
        self._task = asyncio.create_task(self._run_forever(), name="bodega-eviction")
        if self._is_over_limit():
            self._wake.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await self._flush_accesses()
        except StorageError as error:
            # A full disk or a database away at stop: only eviction's order is lost (these
            # files look as old as their last written use), never a file; stop anyway.
            log.warning("last use of recently served files not written at stop: %s", error)

    async def run_once(self) -> int:
        """One pass: write access times, re-read the size, evict until under the limit.
        Returns how many blobs were evicted."""
        await self._flush_accesses()
        # Re-read: `bodega cache prune` or `verify` may have changed the store meanwhile.
        self.blob_count, self.size_bytes = await self._store.blob_usage()
        evicted = 0
        while self._is_over_limit():
            candidates = await self._store.blobs_by_access(limit=_BATCH)
            before = evicted
            for blob in candidates:
                if not self._is_over_limit():
                    break
                async with self._files.evicting(blob.key) as is_held:
                    if not is_held:
                        continue  # served or downloaded right now; a later pass may take it
                    await self._store.forget_blob(blob.key)
                    await self._blobs.delete(blob.key)
                self.size_bytes -= blob.size
                self.blob_count -= 1
                self._telemetry.evicted(blob.size)
                evicted += 1
            if evicted == before:
                break  # everything left is busy: wait for the next commit
        if evicted:
            log.info("evicted %d least recently used files", evicted)
        return evicted

    def _committed(self, size: int) -> None:
        self.size_bytes += size
        self.blob_count += 1
        if self._is_over_limit():
            self._wake.set()

    def _is_over_limit(self) -> bool:
        return self.max_bytes > 0 and self.size_bytes > self.max_bytes

    async def _flush_accesses(self) -> None:
        accessed = self._files.take_accesses()
        if accessed:
            await self._store.touch_blobs(accessed)

    async def _run_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_interval)
            self._wake.clear()
            try:
                # Every process writes its own hits, whoever evicts: else the evicting one
                # would see only its own and evict what the others serve most.
                await self._flush_accesses()
                await self._duties.run(EVICTION, self.run_once)
            except Exception:  # a failed pass (a full disk, a locked database) must not end
                log.exception("cache eviction pass failed")  # the loop; the next one retries
