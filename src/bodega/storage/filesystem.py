"""Blobs as files: <root>/sha256/<2>/<2>/<hex>, written as temp file, fsync, rename."""

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from bodega.storage.blobs import check_key

_CHUNK = 256 * 1024


class FilesystemBlobStore:
    """A BlobStore on a local directory; every blocking call runs in a worker thread."""

    def __init__(self, root: Path, temp_dir: Path) -> None:
        self._root = root / "sha256"
        self._temp_dir = temp_dir  # same filesystem as root, so adoption is a rename

    def path_for(self, key: str) -> Path:
        check_key(key)
        return self._root / key[:2] / key[2:4] / key

    async def size(self, key: str) -> int | None:
        path = self.path_for(key)
        try:
            return (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError:
            return None

    async def put_file(self, key: str, path: Path) -> None:
        await asyncio.to_thread(self._adopt, self.path_for(key), path)

    async def put_bytes(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._write_bytes, self.path_for(key), data)

    async def local_path(self, key: str) -> Path | None:
        path = self.path_for(key)
        return path if await asyncio.to_thread(path.is_file) else None

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self.path_for(key)
        position = start
        while end is None or position < end:
            want = _CHUNK if end is None else min(_CHUNK, end - position)
            # Each chunk opens and closes its own handle in the thread: a reader cancelled or
            # abandoned between chunks leaves no descriptor open.
            chunk = await asyncio.to_thread(_read_chunk, path, position, want)
            if not chunk:
                return
            position += len(chunk)
            yield chunk

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path_for(key).unlink, missing_ok=True)

    async def keys(self) -> AsyncIterator[str]:
        for path in await asyncio.to_thread(lambda: sorted(self._root.glob("*/*/*"))):
            yield path.name

    def _adopt(self, final: Path, source: Path) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        _fsync_file(source)
        try:
            os.replace(source, final)
        except OSError:
            # A temp dir on another filesystem: copy next to the target, then rename.
            fd, name = tempfile.mkstemp(dir=self._temp_dir, suffix=".adopt")
            os.close(fd)
            staged = Path(name)
            shutil.copyfile(source, staged)
            _fsync_file(staged)
            os.replace(staged, final)
            source.unlink(missing_ok=True)
        _fsync_dir(final.parent)

    def _write_bytes(self, final: Path, data: bytes) -> None:
        self._temp_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self._temp_dir, suffix=".bytes", delete=False) as f:
            f.write(data)
        self._adopt(final, Path(f.name))


def _read_chunk(path: Path, position: int, size: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek(position)
        return handle.read(size)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
