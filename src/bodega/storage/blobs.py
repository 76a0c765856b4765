"""The blob store interface: content-addressed bytes, keyed by their sha256.

A blob is visible only once complete and verified; there are no directories, no partial
objects and no user-chosen keys (threat invariant 1).
"""

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from bodega.errors import InvalidName

_KEY = re.compile(r"[0-9a-f]{64}")


def check_key(key: str) -> str:
    """A blob key is a lower-case sha256 hex digest and nothing else."""
    if not _KEY.fullmatch(key):
        raise InvalidName(f"not a blob key: {key!r}")
    return key


class BlobStore(Protocol):
    async def size(self, key: str) -> int | None:
        """The blob's size, or None when it is not stored."""

    async def put_file(self, key: str, path: Path) -> None:
        """Adopt a complete, verified local file as this blob; the file is consumed."""

    async def put_bytes(self, key: str, data: bytes) -> None:
        """Store small verified bytes as this blob."""

    async def local_path(self, key: str) -> Path | None:
        """A path the OS can sendfile from, when the store is local and holds the blob."""

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The blob's bytes from `start` to `end` (exclusive), in chunks."""

    async def delete(self, key: str) -> None:
        """Forget the blob; readers that already opened it may finish."""

    def keys(self) -> AsyncIterator[str]:
        """Every stored key."""
