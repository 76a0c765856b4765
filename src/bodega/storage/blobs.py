"""The blob store interface: content-addressed bytes, keyed by their sha256.

A blob is visible only once complete and verified; there are no directories, no partial
objects and no user-chosen keys (threat invariant 1). The interface is shaped for object
stores as much as for a directory: bytes go in through a writer that the caller commits
only after it verified them, and come out as ranged reads. A store on the local disk says
so with a second, optional interface (LocalBlobs): a path the kernel can sendfile from,
and a spool file adopted whole by a rename instead of copied.
"""

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Protocol, runtime_checkable

from bodega.errors import InvalidName
from bodega.offloop import open_off_loop

_KEY = re.compile(r"[0-9a-f]{64}")
_COPY_CHUNK = 1024 * 1024


def check_key(key: str) -> str:
    """A blob key is a lower-case sha256 hex digest and nothing else."""
    if not _KEY.fullmatch(key):
        raise InvalidName(f"not a blob key: {key!r}")
    return key


class BlobWriter(Protocol):
    """One blob on its way in; nothing of it is visible until commit().

    A writer aborted, or dropped without a commit, leaves no blob and no temporary file.
    """

    async def write(self, data: bytes) -> None:
        """Append `data`."""

    async def commit(self) -> None:
        """Make the bytes written the blob, at once and whole. Called only once the caller
        has verified them against the key; a blob already there stays (same key, same
        bytes)."""

    async def abort(self) -> None:
        """Drop what was written; does nothing after a commit, or a second time."""


class BlobStore(Protocol):
    def open_writer(self, key: str) -> BlobWriter:
        """A writer for blob `key` (InvalidName unless it is a blob key)."""

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The blob's bytes from `start` to `end` (exclusive; None: to its end), in chunks.

        Raises FileNotFoundError when the blob is not there, or is deleted before the read
        is over; it never ends early without an error."""

    async def size(self, key: str) -> int | None:
        """The blob's size, or None when it is not stored."""

    async def delete(self, key: str) -> None:
        """Forget the blob (nothing when it is not there)."""

    def keys(self) -> AsyncIterator[str]:
        """Every stored name; `cache verify` reports those that are no blob key."""


@runtime_checkable
class LocalBlobs(Protocol):
    """A store whose blobs are files on this machine: callers that find this capability
    sendfile from the path, and hand a spool file over by a rename instead of a copy."""

    async def local_path(self, key: str) -> Path | None:
        """The blob's file, when it is stored."""

    async def adopt(self, key: str, path: Path) -> None:
        """Make a complete, verified local file blob `key`; the file is consumed."""


@runtime_checkable
class RemoteBlobs(Protocol):
    """A store across a network (an object store): it can be down while bodega runs, and
    it can hand a client a URL of its own for a blob."""

    async def probe(self) -> None:
        """Returns when the store answers; StorageError saying why when it does not."""

    async def presigned_url(self, key: str, seconds: int) -> str:
        """A URL that fetches the blob without credentials, for `seconds`."""


async def store_file(blobs: BlobStore, key: str, path: Path) -> None:
    """Store a complete, verified local file (a spool) as blob `key`; the file is consumed:
    renamed into a local store, else copied through a writer and removed."""
    if isinstance(blobs, LocalBlobs):
        await blobs.adopt(key, path)
        return
    try:
        async with writing(blobs, key) as writer:
            source = await open_off_loop(path, "rb")
            try:
                while chunk := await asyncio.to_thread(source.read, _COPY_CHUNK):
                    await writer.write(chunk)
            finally:
                await asyncio.shield(asyncio.to_thread(source.close))
            await writer.commit()
    finally:
        await asyncio.shield(asyncio.to_thread(path.unlink, missing_ok=True))


async def store_bytes(blobs: BlobStore, key: str, data: bytes) -> None:
    """Store small verified bytes as blob `key`."""
    async with writing(blobs, key) as writer:
        await writer.write(data)
        await writer.commit()


async def read_bytes(blobs: BlobStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    """A blob's bytes (or a range of them) in one piece: for small blobs only."""
    return b"".join([chunk async for chunk in blobs.read(key, start, end)])


@asynccontextmanager
async def writing(blobs: BlobStore, key: str) -> AsyncIterator[BlobWriter]:
    """A writer that is aborted when the block is left without a commit (an error, a
    cancellation, or simply no commit)."""
    writer = blobs.open_writer(key)
    try:
        yield writer
    finally:
        # Shielded: a cancellation must not leave the written bytes behind.
        await asyncio.shield(writer.abort())
