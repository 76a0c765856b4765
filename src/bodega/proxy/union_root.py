"""A virtual index's root list: its bases' lists as one, each name once, as if an upstream
sent it. A RootList over this source stores, compresses and refreshes it like a mirror's.

The bases' stored JSON renderings are read from the blob store and scanned in worker
threads, a batch at a time, so 800k names never block the event loop nor sit in memory
whole (only their keys, to drop a name a base before listed).
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass

from bodega.core.parsing import JSON_V1
from bodega.core.root_list import (
    ROOT_JSON_END,
    ROOT_JSON_START,
    Entry,
    project_list_scanner,
    root_json_entries,
)
from bodega.proxy.root import RootList, batches
from bodega.storage.blobs import BlobStore

_BATCH_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class UnionListing:
    """The united list, streamed as a JSON root page."""

    media_type: str
    source: "UnionRootSource"

    def chunks(self) -> AsyncIterator[bytes]:
        return self.source.chunks()


# Which names a base may list (see core.indexes.listing_filter); None: all it has.
Keep = Callable[[str], bool] | None


class UnionRootSource:
    def __init__(self, bases: Sequence[tuple[RootList, Keep]], blobs: BlobStore) -> None:
        """`bases`: each base's root list with the names it may list, in order."""
        self._bases = tuple(bases)
        self._blobs = blobs

    @property
    def is_offline(self) -> bool:
        # Its bases are what may be offline: they answer from their own copies.
        return False

    @asynccontextmanager
    async def open_root(self) -> AsyncIterator[UnionListing]:
        yield UnionListing(JSON_V1, self)

    async def chunks(self) -> AsyncIterator[bytes]:
        yield ROOT_JSON_START
        seen: set[str] = set()
        is_first = True
        for base, keep in self._bases:
            root, _ = await base.get()
            scanner = project_list_scanner(JSON_V1)
            async with aclosing(batches(self._blobs.read(root.json_key), _BATCH_BYTES)) as read:
                async for batch in read:
                    entries = await asyncio.to_thread(_scan, scanner.feed, batch, keep)
                    if fresh := _unseen(entries, seen):
                        yield root_json_entries(fresh, is_first=is_first)
                        is_first = False
            if fresh := _unseen(_kept(scanner.close(), keep), seen):
                yield root_json_entries(fresh, is_first=is_first)
                is_first = False
        yield ROOT_JSON_END


def _scan(feed: Callable[[bytes], list[Entry]], batch: list[bytes], keep: Keep) -> list[Entry]:
    return _kept([entry for chunk in batch for entry in feed(chunk)], keep)


def _kept(entries: list[Entry], keep: Keep) -> list[Entry]:
    return entries if keep is None else [entry for entry in entries if keep(entry[0])]


def _unseen(entries: list[Entry], seen: set[str]) -> list[Entry]:
    """The entries whose name nothing before listed (the first base's spelling stays)."""
    fresh = []
    for entry in entries:
        if entry[0] not in seen:
            seen.add(entry[0])
            fresh.append(entry)
    return fresh
