"""The file cache: one upstream download per file however many clients ask, streamed to all
of them while it is written to a spool file, and published only once its hash is verified.

A download belongs to the cache, not to a request: a client hanging up does not stop it for
the others (threat 28), and when every client has gone it still finishes, so the next
request is a hit (threat 29). The last byte is held back from every client until the hash
matches, so a corrupt or short download never ends as a clean, complete response.
"""

import asyncio
import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import IO, Any

from bodega.errors import IntegrityError, NotFound, StorageError, UpstreamError
from bodega.proxy.crashpoints import CrashPoints
from bodega.proxy.singleflight import SingleFlight
from bodega.proxy.stats import CacheStats
from bodega.storage.blobs import BlobStore
from bodega.storage.localfiles import open_off_loop
from bodega.storage.metadata import MetadataStore
from bodega.upstream import UpstreamClient

log = logging.getLogger(__name__)

_READ_CHUNK = 256 * 1024
# Room a download must leave free: SQLite's WAL needs space to record what was cached, and
# the cached files must stay servable when the disk fills up (threat 32).
MIN_FREE_BYTES = 256 * 1024


class Download:
    """One file on its way from upstream into the cache, readable while it grows."""

    def __init__(self, key: str | None, url: str, expected_size: int | None) -> None:
        self.key = key  # the sha256 the index declared; None: cannot be verified or cached
        self.url = url
        self.expected_size = expected_size
        self.total: int | None = expected_size  # known once upstream's headers arrive
        self.spool: Path | None = None
        self.written = 0
        self.is_started = False  # upstream answered with a body on its way
        self.is_done = False
        self.is_committed = False
        self.error: BaseException | None = None
        self._changed = asyncio.Event()

    def notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self) -> None:
        await self._changed.wait()

    async def wait_for_total(self) -> int | None:
        """The file's size as soon as it is known (or the download is over)."""
        while self.total is None and not self.is_done:
            await self.changed()
        return self.total

    async def wait_until_started(self) -> None:
        """Until upstream has answered (or failed); raises the failure."""
        while not self.is_started and not self.is_done:
            await self.changed()
        if self.error is not None:
            raise self.error

    async def wait_until_done(self) -> None:
        while not self.is_done:
            await self.changed()
        if self.error is not None:
            raise self.error


class FileCache:
    """Verified files (distributions and their core metadata), by their sha256."""

    def __init__(
        self,
        blobs: BlobStore,
        store: MetadataStore,
        upstream: UpstreamClient,
        spool_dir: Path,
        *,
        offline: bool,
        clock: Callable[[], float] = time.time,
        stats: CacheStats | None = None,
        crash: CrashPoints = CrashPoints.DISARMED,
    ) -> None:
        self.stats = stats or CacheStats(clock)
        self._blobs = blobs
        self._store = store
        self._upstream = upstream
        self._spool_dir = spool_dir
        self._offline = offline
        self._clock = clock
        self._downloads: SingleFlight[None] = SingleFlight()
        self._active: dict[str, Download] = {}
        self._crash = crash

    async def local_path(self, key: str | None) -> Path | None:
        """Where a verified copy lies, when there is one."""
        return None if key is None else await self._blobs.local_path(key)

    def download(self, key: str | None, url: str, expected_size: int | None) -> Download:
        """The download of this file, started now or joined if one is under way."""
        flight_key = key or f"url:{url}"
        active = self._active.get(flight_key)
        if active is not None:
            return active
        if self._offline:
            raise NotFound("file not cached and bodega is offline")
        download = Download(key, url, expected_size)
        self.stats.fetch_started()
        self._active[flight_key] = download
        task = self._downloads.run(flight_key, lambda: self._run(download))
        task.add_done_callback(lambda _: self._active.pop(flight_key, None))
        return download

    async def stream(self, download: Download) -> AsyncGenerator[bytes, None]:
        """The download's bytes from the start; raises if it fails before the end."""
        handle = await self._open_for_reading(download)
        try:
            position = 0
            while True:
                if download.error is not None:
                    raise download.error
                # Hold the last byte back until the download is verified (or unverifiable
                # and complete), so a failure can still make the response incomplete.
                readable = download.written if download.is_done else download.written - 1
                if position < readable:
                    size = min(_READ_CHUNK, readable - position)
                    chunk = await asyncio.to_thread(_read_at, handle, position, size)
                    position += len(chunk)
                    yield chunk
                elif download.is_done:
                    return
                else:
                    await download.changed()
        finally:
            await asyncio.to_thread(handle.close)

    async def close(self) -> None:
        await self._downloads.close()

    async def _open_for_reading(self, download: Download) -> IO[bytes]:
        while download.spool is None and not download.is_done:
            await download.changed()
        if download.spool is not None:
            try:
                return await open_off_loop(download.spool, "rb")
            except FileNotFoundError:
                # Renamed into the blob store or discarded meanwhile. The rename runs in a
                # thread, so is_committed may not be set yet: wait for the outcome (a race
                # the load test found: a 200 with headers and then no body).
                while not download.is_done:
                    await download.changed()
        if download.is_committed and (path := await self.local_path(download.key)):
            return await open_off_loop(path, "rb")
        raise download.error or UpstreamError("download ended before it could be read")

    async def _run(self, download: Download) -> None:
        spool: Path | None = None
        started = time.monotonic()
        try:
            spool = await asyncio.to_thread(_new_spool, self._spool_dir)
            download.spool = spool
            download.notify()
            await self._fetch_into(download, spool)
            if download.key is not None:
                await self._blobs.put_file(download.key, spool)
                download.is_committed = True
                self._crash.reached("file_committed")
                await self._record(download.key, download.written)
                self._crash.reached("file_recorded")
        except asyncio.CancelledError:
            download.error = UpstreamError("bodega is shutting down")
            raise
        except Exception as error:  # the download's failure is every reader's failure
            log.warning("download of %s failed: %s", download.url, error)
            if isinstance(error, UpstreamError):
                self.stats.upstream_failed(str(error))
            download.error = error
        finally:
            failure = None if download.error is None else str(download.error)
            self.stats.fetch_finished(
                download.url, download.written, time.monotonic() - started, failure
            )
            download.is_done = True
            download.notify()
            if spool is not None and not download.is_committed:
                await asyncio.to_thread(spool.unlink, missing_ok=True)

    async def _record(self, key: str, size: int) -> None:
        # The blob is verified and visible already; a database that cannot take its row now
        # (threats 32, 33) leaves an orphan blob that `cache verify` adopts, not a failure.
        try:
            await self._store.record_blob(key, size, self._clock())
        except StorageError as error:
            log.warning("blob %s stored but not recorded: %s", key, error)

    async def _fetch_into(self, download: Download, spool: Path) -> None:
        hasher = hashlib.sha256()
        limit = download.expected_size
        out = await open_off_loop(spool, "wb")
        try:
            async with self._upstream.open_file(download.url) as remote:
                self.stats.upstream_answered()
                if download.total is None:
                    download.total = remote.content_length
                # Before any client gets headers, so a full disk is a clean 503 (threat 32).
                await asyncio.to_thread(_check_room, self._spool_dir, download.total)
                download.is_started = True
                download.notify()
                async for chunk in remote.chunks():
                    if limit is not None and download.written + len(chunk) > limit:
                        raise IntegrityError(f"{download.url} is larger than the index says")
                    await _spool_chunk(out, hasher, chunk)
                    download.written += len(chunk)
                    download.notify()
                    self._crash.reached("file_spooling")
        finally:
            await asyncio.to_thread(out.close)
        self._crash.reached("file_spooled")
        _verify(download, hasher.hexdigest())


def _verify(download: Download, digest: str) -> None:
    # A body cut short without Content-Length looks complete to the HTTP client (threat 15b):
    # only the size and hash the index declared can tell.
    if download.total is not None and download.written != download.total:
        raise IntegrityError(
            f"{download.url}: got {download.written} bytes, expected {download.total}"
        )
    if download.key is not None and digest != download.key:
        raise IntegrityError(f"{download.url}: sha256 {digest} does not match the index")


def _new_spool(spool_dir: Path) -> Path:
    spool_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=spool_dir, suffix=".part")
    os.close(fd)
    return Path(name)


def _check_room(spool_dir: Path, size: int | None) -> None:
    free = shutil.disk_usage(spool_dir).free
    if free - (size or 0) < MIN_FREE_BYTES:
        raise StorageError(f"not enough free space to cache {size} bytes ({free} free)")


async def _spool_chunk(out: IO[bytes], hasher: Any, chunk: bytes) -> None:
    try:
        await asyncio.to_thread(_write_and_hash, out, hasher, chunk)
    except OSError as error:
        # ENOSPC, or EFBIG under RLIMIT_FSIZE (threat 32); the spool file is removed by _run.
        raise StorageError(f"cannot write to the cache: {error.strerror or error}") from error


def _write_and_hash(out: IO[bytes], hasher: Any, chunk: bytes) -> None:
    out.write(chunk)
    out.flush()  # readers of the spool open their own handle; they must see these bytes
    hasher.update(chunk)


def _read_at(handle: IO[bytes], position: int, size: int) -> bytes:
    handle.seek(position)
    return handle.read(size)
