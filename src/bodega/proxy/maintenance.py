"""The `bodega cache` commands: look at, prune, verify and correct the cache.

They work on the stores directly, whether or not a server runs on the same data dir: SQLite
(WAL) lets both write, and a blob a server still sends stays readable after it is deleted
(POSIX keeps an open file until it is closed). A server notices deleted blobs at the next
request for them (it downloads them again) and re-reads the cache's size at its next pass.
"""

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bodega.errors import InvalidName
from bodega.storage.blobs import BlobStore, check_key
from bodega.storage.metadata import MetadataStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CacheSummary:
    """What the cache holds. `files` are distribution files and their core metadata: the
    blobs --max-cache-size bounds, eviction and prune delete, and verify counts as files.
    The root list's renderings (HTML, JSON and their gzip copies) are blobs too, counted
    apart: they are replaced at each refresh, never evicted."""

    files: int
    total_bytes: int
    pages: dict[str, int]  # stored project pages, by index
    least_recent_access: float | None  # epoch seconds
    root_renderings: int = 0
    root_bytes: int = 0


@dataclass(slots=True)
class VerifyReport:
    checked: int = 0  # files (distribution files and core metadata), as `cache stats` counts
    root_renderings: int = 0  # blobs of the root list, checked as well
    quarantined: int = 0  # bytes that did not hash to their key: moved aside, row dropped
    missing: int = 0  # rows whose blob is gone: row dropped
    adopted: int = 0  # verified blobs that had no row: row added
    unknown: int = 0  # files in the blob store that are no blob key: left alone

    @property
    def is_clean(self) -> bool:
        return not (self.quarantined or self.missing or self.adopted or self.unknown)


class CacheMaintenance:
    def __init__(
        self,
        blobs: BlobStore,
        indexes: Mapping[str, MetadataStore],
        quarantine_dir: Path,
        *,
        clock: Callable[[], float] = time.time,
        pinned: Callable[[], Awaitable[set[str]]] | None = None,
    ) -> None:
        """`indexes`: each index's view of the store, by name; `pinned`: the blobs of hosted
        files, which have no record and are never adopted nor pruned; blobs and their records are
        shared, so any view serves for them."""
        self._blobs = blobs
        self._indexes = dict(indexes)
        self._store = next(iter(self._indexes.values()))
        self._quarantine_dir = quarantine_dir
        self._clock = clock
        self._pinned = pinned

    async def summary(self) -> CacheSummary:
        files, total = await self._store.blob_usage()
        oldest = await self._store.blobs_by_access(limit=1)
        sizes = [await self._blobs.size(key) for key in await self._root_keys()]
        found = [size for size in sizes if size is not None]
        return CacheSummary(
            files,
            total,
            {name: await index.page_count() for name, index in self._indexes.items()},
            oldest[0].accessed_at if oldest else None,
            len(found),
            sum(found),
        )

    async def _root_keys(self) -> frozenset[str]:
        """The blobs every index's root list is served from: no files of their own."""
        keys: set[str] = set()
        for index in self._indexes.values():
            root = await index.get_root()
            keys |= root.blob_keys if root else frozenset()
        return frozenset(keys)

    async def prune(self, unused_for: float) -> tuple[int, int]:
        """Delete files nobody asked for in `unused_for` seconds; (files, bytes) deleted."""
        cutoff = self._clock() - unused_for
        count = size = 0
        for blob in await self._store.blobs_by_access(unused_since=cutoff):
            await self._store.forget_blob(blob.key)  # the row first: never a row without bytes
            await self._blobs.delete(blob.key)
            count += 1
            size += blob.size
        return count, size

    async def forget(self, project: str, index: str) -> bool:
        """Drop the index's stored page of the project; False if it has none."""
        return await self._indexes[index].forget_page(project)

    async def verify(self, report_problem: Callable[[str], None]) -> VerifyReport:
        """Re-hash every blob. Bytes that do not match their key are quarantined; rows
        without bytes are dropped; verified bytes without a row are adopted (threat 31: a
        blob is trusted only for a hash computed here, never for its name alone)."""
        report = VerifyReport()
        recorded = await self._store.blob_keys()
        known = set(recorded)
        root_keys = await self._root_keys()
        pinned = await self._pinned() if self._pinned is not None else set()
        async for name in self._blobs.keys():
            try:
                key = check_key(name)
            except InvalidName:
                report.unknown += 1
                report_problem(f"not a blob, left alone: {name}")
                continue
            recorded.discard(key)
            digest_and_size = await self._hash(key)
            if digest_and_size is None:
                continue  # deleted meanwhile (a running server evicted it)
            digest, size = digest_and_size
            if key in root_keys:
                report.root_renderings += 1
            else:
                report.checked += 1
            if digest != key:
                await self._quarantine(key)
                report.quarantined += 1
                report_problem(f"quarantined {key}: its bytes hash to {digest}")
            elif key not in known and key not in root_keys and key not in pinned:
                await self._store.record_blob(key, size, self._clock())
                report.adopted += 1
                report_problem(f"adopted {key}: verified, but the database did not list it")
        for key in sorted(recorded):
            if await self._blobs.size(key) is None:  # not added since the listing began
                await self._store.forget_blob(key)
                report.missing += 1
                report_problem(f"forgot {key}: listed in the database, but its file is gone")
        return report

    async def _hash(self, key: str) -> tuple[str, int] | None:
        hasher = hashlib.sha256()
        size = 0
        try:
            async for chunk in self._blobs.read(key):
                await asyncio.to_thread(hasher.update, chunk)
                size += len(chunk)
        except FileNotFoundError:
            return None
        return hasher.hexdigest(), size

    async def _quarantine(self, key: str) -> None:
        # Kept for inspection under its key's name, out of the blob store, then deleted there.
        await asyncio.to_thread(self._quarantine_dir.mkdir, parents=True, exist_ok=True)
        target = self._quarantine_dir / key
        out: IO[bytes] = await asyncio.to_thread(open, target, "wb")
        try:
            async for chunk in self._blobs.read(key):
                await asyncio.to_thread(out.write, chunk)
        finally:
            await asyncio.to_thread(out.close)
        await self._store.forget_blob(key)
        await self._blobs.delete(key)
