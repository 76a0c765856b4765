"""Blobs as files: <root>/sha256/<2>/<2>/<hex>, written as temp file, fsync, rename."""

import asyncio
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

from bodega.storage.blobs import check_key

_CHUNK = 256 * 1024
# Bytes a writer keeps in memory before it starts its temp file: a small blob (a METADATA)
# is written, fsynced and renamed in one worker-thread hop, at its commit.
_BUFFER_BYTES = 1024 * 1024


class FilesystemBlobStore:
    """A BlobStore (and LocalBlobs) on a local directory; every blocking call runs in a
    worker thread."""

    def __init__(self, root: Path, temp_dir: Path) -> None:
        self._root = root / "sha256"
        self._temp_dir = temp_dir  # same filesystem as root, so adoption is a rename

    def path_for(self, key: str) -> Path:
        check_key(key)
        return self._root / key[:2] / key[2:4] / key

    def open_writer(self, key: str) -> "FilesystemBlobWriter":
        return FilesystemBlobWriter(self.path_for(key), self._temp_dir)

    async def size(self, key: str) -> int | None:
        path = self.path_for(key)
        try:
            return (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError:
            return None

    async def local_path(self, key: str) -> Path | None:
        path = self.path_for(key)
        return path if await asyncio.to_thread(path.is_file) else None

    async def adopt(self, key: str, path: Path) -> None:
        await asyncio.to_thread(self._adopt, self.path_for(key), path)

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self.path_for(key)
        position = start
        while end is None or position < end:
            want = _CHUNK if end is None else min(_CHUNK, end - position)
            # Each chunk opens and closes its own handle in the thread: a reader cancelled or
            # abandoned between chunks leaves no descriptor open.
            chunk = await asyncio.to_thread(_read_chunk, path, position, want)
            if chunk:
                position += len(chunk)
                yield chunk
            if len(chunk) < want:
                return  # a blob never grows: a short read is its end

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


class FilesystemBlobWriter:
    """A blob being written: in memory up to _BUFFER_BYTES, then to a temp file beside the
    store; commit fsyncs and renames it into place."""

    def __init__(self, final: Path, temp_dir: Path) -> None:
        self._final = final
        self._temp = _TempFile(temp_dir)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._is_closed = False
        # A writer dropped without commit or abort still closes and removes its temp file.
        self._discard = weakref.finalize(self, self._temp.discard)

    async def write(self, data: bytes) -> None:
        self._check_open()
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes >= _BUFFER_BYTES:
            pending, self._pending, self._pending_bytes = self._pending, [], 0
            await asyncio.to_thread(self._temp.write, pending)

    async def commit(self) -> None:
        self._check_open()
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        await asyncio.to_thread(self._temp.publish, pending, self._final)
        self._is_closed = True
        self._discard.detach()

    async def abort(self) -> None:
        if self._is_closed:
            return
        self._is_closed = True
        self._pending = []
        await asyncio.to_thread(self._discard)

    def _check_open(self) -> None:
        if self._is_closed:
            raise ValueError("the blob writer is committed or aborted")


class _TempFile:
    """A writer's temp file, made on its first write. Used by one worker thread at a time;
    the lock makes discard() wait for a write still running in its thread after the task
    that awaited it was cancelled."""

    def __init__(self, temp_dir: Path) -> None:
        self._temp_dir = temp_dir
        self._lock = threading.Lock()
        self._path: Path | None = None
        self._file: IO[bytes] | None = None

    def write(self, chunks: list[bytes]) -> None:
        with self._lock:
            self._write(chunks)

    def publish(self, chunks: list[bytes], final: Path) -> None:
        with self._lock:
            self._write(chunks)
            assert self._file is not None
            assert self._path is not None
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._path, final)
            self._path = None
            _fsync_dir(final.parent)

    def discard(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
            if self._path is not None:
                self._path.unlink(missing_ok=True)
                self._path = None

    def _write(self, chunks: list[bytes]) -> None:
        if self._file is None:
            self._temp_dir.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=self._temp_dir, suffix=".blob")
            self._path = Path(name)
            self._file = os.fdopen(fd, "wb")
        for chunk in chunks:
            self._file.write(chunk)


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
