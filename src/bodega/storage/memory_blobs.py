"""Blobs in memory: a fake BlobStore for unit tests and the contract suite, shaped like an
object store (no local files), never for a user's cache."""

import asyncio
from collections.abc import AsyncIterator

from bodega.storage.blobs import check_key

_CHUNK = 64 * 1024


class MemoryBlobStore:
    """A BlobStore in a dict. Every call gives other tasks a turn, as a store across a
    network would, so races show in tests."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}

    def open_writer(self, key: str) -> "MemoryBlobWriter":
        return MemoryBlobWriter(self._blobs, check_key(key))

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        check_key(key)
        await asyncio.sleep(0)
        data = self._blobs.get(key)
        if data is None:
            raise FileNotFoundError(f"no blob {key}")
        # An object store's GET answers from the version it found: a delete meanwhile does
        # not cut this read short.
        stop = len(data) if end is None else min(end, len(data))
        for position in range(start, stop, _CHUNK):
            yield data[position : min(position + _CHUNK, stop)]
            await asyncio.sleep(0)

    async def size(self, key: str) -> int | None:
        check_key(key)
        await asyncio.sleep(0)
        data = self._blobs.get(key)
        return None if data is None else len(data)

    async def delete(self, key: str) -> None:
        check_key(key)
        await asyncio.sleep(0)
        self._blobs.pop(key, None)

    async def keys(self) -> AsyncIterator[str]:
        for key in sorted(self._blobs):
            await asyncio.sleep(0)
            yield key


class MemoryBlobWriter:
    def __init__(self, blobs: dict[str, bytes], key: str) -> None:
        self._blobs = blobs
        self._key = key
        self._parts: list[bytes] = []
        self._is_closed = False

    async def write(self, data: bytes) -> None:
        self._check_open()
        await asyncio.sleep(0)
        self._parts.append(bytes(data))

    async def commit(self) -> None:
        self._check_open()
        await asyncio.sleep(0)
        self._is_closed = True
        self._blobs[self._key] = b"".join(self._parts)
        self._parts = []

    async def abort(self) -> None:
        self._is_closed = True
        self._parts = []

    def _check_open(self) -> None:
        if self._is_closed:
            raise ValueError("the blob writer is committed or aborted")
