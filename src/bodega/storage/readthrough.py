"""An object store with a local read-through copy of its hot blobs (`--local-cache-size`).

The object store holds every blob; the local disk holds copies of those served most
recently, up to a byte budget, so a hit goes out by sendfile instead of through bodega's
memory. A blob is written to the object store first and only then kept locally, so a copy
never exists without its original; a copy is made from the store on the first hit,
verified against its key (the sha256) on the way, and the least recently used copies are
deleted when the budget is passed. Copies are only copies: deleting them all loses
nothing.
"""

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol

from bodega.errors import IntegrityError, InvalidName
from bodega.offloop import open_off_loop
from bodega.storage.blobs import (
    BlobStore,
    BlobWriter,
    RemoteBlobs,
    check_key,
    store_file,
    writing,
)
from bodega.storage.filesystem import FilesystemBlobStore

_COPY_CHUNK = 1024 * 1024

# A copy used this recently is not deleted to make room: the response that found it may not
# have opened it yet. The budget can be passed by that much for those seconds.
_IN_USE_SECONDS = 30.0


class RemoteStore(BlobStore, RemoteBlobs, Protocol):
    """An object store: a BlobStore across a network."""


class ReadThroughBlobStore:
    """A BlobStore on `remote`, also LocalBlobs through copies in `local` of at most
    `max_bytes` in all."""

    def __init__(
        self,
        remote: RemoteStore,
        local: FilesystemBlobStore,
        max_bytes: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._remote = remote
        self._local = local
        self._max_bytes = max_bytes
        self._clock = clock
        self._copies: OrderedDict[str, tuple[int, float]] = OrderedDict()  # size, last use
        self._bytes = 0
        self._filling: dict[str, asyncio.Task[Path | None]] = {}

    @classmethod
    async def open(
        cls,
        remote: RemoteStore,
        local: FilesystemBlobStore,
        max_bytes: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> "ReadThroughBlobStore":
        """The store, knowing the copies a previous run left (oldest first, by mtime)."""
        store = cls(remote, local, max_bytes, clock=clock)
        found = await asyncio.to_thread(_copies_by_age, local)
        for key, size in found:
            store._copies[key] = (size, 0.0)
            store._bytes += size
        await store._make_room()
        return store

    @property
    def local_bytes(self) -> int:
        return self._bytes

    # -- BlobStore: the object store's, with reads from a copy when there is one

    def open_writer(self, key: str) -> BlobWriter:
        return self._remote.open_writer(key)

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        check_key(key)
        source: BlobStore = self._local if key in self._copies else self._remote
        try:
            async for chunk in source.read(key, start, end):
                yield chunk
        except FileNotFoundError:
            if source is self._remote:
                raise
            self._forget(key)  # a copy deleted under us: the original still has it
            async for chunk in self._remote.read(key, start, end):
                yield chunk

    async def size(self, key: str) -> int | None:
        copy = self._copies.get(check_key(key))
        return copy[0] if copy is not None else await self._remote.size(key)

    async def delete(self, key: str) -> None:
        await self._remote.delete(key)
        await self._drop(key)

    def keys(self) -> AsyncIterator[str]:
        return self._remote.keys()

    # -- RemoteBlobs

    async def probe(self) -> None:
        await self._remote.probe()

    async def presigned_url(self, key: str, seconds: int) -> str:
        return await self._remote.presigned_url(key, seconds)

    # -- LocalBlobs

    async def local_path(self, key: str) -> Path | None:
        """The local copy, made now from the object store if there is none; None when the
        blob is not stored, or is larger than the whole budget (then it is streamed)."""
        check_key(key)
        if key in self._copies:
            self._touch(key)
            path = self._local.path_for(key)
            if await asyncio.to_thread(path.is_file):
                return path
            self._forget(key)
        task = self._filling.get(key)
        if task is None:
            task = asyncio.ensure_future(self._fill(key))
            self._filling[key] = task
            task.add_done_callback(lambda _: self._filling.pop(key, None))
        return await asyncio.shield(task)

    async def adopt(self, key: str, path: Path) -> None:
        """Store a verified spool file: uploaded to the object store, then kept as the copy
        (the file is consumed)."""
        size = (await asyncio.to_thread(path.stat)).st_size
        if size > self._max_bytes:
            await store_file(self._remote, key, path)
            return
        try:
            async with writing(self._remote, key) as writer:
                source = await open_off_loop(path, "rb")
                try:
                    while chunk := await asyncio.to_thread(source.read, _COPY_CHUNK):
                        await writer.write(chunk)
                finally:
                    await asyncio.shield(asyncio.to_thread(source.close))
                await writer.commit()
            await self._local.adopt(key, path)
        finally:
            await asyncio.shield(asyncio.to_thread(path.unlink, missing_ok=True))
        self._add(key, size)
        await self._make_room()

    # -- the copies

    async def _fill(self, key: str) -> Path | None:
        size = await self._remote.size(key)
        if size is None:
            return None
        if size > self._max_bytes:
            return None
        digest = hashlib.sha256()
        async with writing(self._local, key) as writer:
            async for chunk in self._remote.read(key):
                digest.update(chunk)
                await writer.write(chunk)
            if digest.hexdigest() != key:
                # The object store gave other bytes than the blob's name says: nothing of
                # them is kept, and the file is answered with an error, not those bytes.
                raise IntegrityError(f"the object store's blob {key} does not match its hash")
            await writer.commit()
        self._add(key, size)
        await self._make_room()
        return self._local.path_for(key)

    def _add(self, key: str, size: int) -> None:
        if key not in self._copies:
            self._bytes += size
        self._copies[key] = (size, self._clock())
        self._copies.move_to_end(key)

    def _touch(self, key: str) -> None:
        size, _ = self._copies[key]
        self._copies[key] = (size, self._clock())
        self._copies.move_to_end(key)

    def _forget(self, key: str) -> None:
        copy = self._copies.pop(key, None)
        if copy is not None:
            self._bytes -= copy[0]

    async def _drop(self, key: str) -> None:
        self._forget(key)
        await self._local.delete(key)

    async def _make_room(self) -> None:
        now = self._clock()
        while self._bytes > self._max_bytes and self._copies:
            key, (_, used) = next(iter(self._copies.items()))
            if used and now - used < _IN_USE_SECONDS:
                break
            await self._drop(key)


def _copies_by_age(local: FilesystemBlobStore) -> list[tuple[str, int]]:
    """The copies on disk, oldest first."""
    root = local.path_for("0" * 64).parents[2]
    found: list[tuple[float, str, int]] = []
    for path in root.glob("*/*/*") if root.is_dir() else ():
        try:
            status = path.stat()
            check_key(path.name)
        except (OSError, InvalidName):  # gone meanwhile, or a stray file: no copy
            continue
        found.append((status.st_mtime, path.name, status.st_size))
    found.sort()
    return [(key, size) for _, key, size in found]
