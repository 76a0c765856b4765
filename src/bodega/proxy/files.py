"""The file cache: one upstream download per file however many clients ask, streamed to all
of them while it is written to a spool file, and published only once its hash is verified.

A download belongs to the cache, not to a request: a client hanging up does not stop it for
the others (threat 28), and when every client has gone it still finishes, so the next
request is a hit (threat 29). The last byte is held back from every client until the hash
matches, so a corrupt or short download never ends as a clean, complete response; it goes
out as soon as the hash matches, before the blob is fsynced and recorded, so clients never
wait for the cache's own durability.

A download whose bytes fail verification (hash or size) is fetched once more, at once: a
client that has taken no byte yet gets the second attempt, one that has is cut (it never
mixes bytes of two attempts). Each failure is counted and logged as an error.
"""

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from bodega.errors import IntegrityError, NotFound, StorageError, UpstreamError
from bodega.offloop import acquire_off_loop, open_off_loop
from bodega.proxy.coordination import (
    BlobLeases,
    FetchLocks,
    Flights,
    LocalBlobLeases,
    LocalFetchLocks,
)
from bodega.proxy.crashpoints import CrashPoints
from bodega.proxy.singleflight import SingleFlight
from bodega.proxy.small_files import MAX_FILE_BYTES as SMALL_FILE_BYTES
from bodega.proxy.small_files import SmallFiles
from bodega.proxy.telemetry import IndexTelemetry
from bodega.storage.blobs import BlobStore, LocalBlobs, RemoteBlobs, read_bytes, store_file
from bodega.storage.metadata import BlobRecords
from bodega.upstream import Upstream, UpstreamFile

log = logging.getLogger(__name__)

_READ_CHUNK = 256 * 1024
# Room a download must leave free: SQLite's WAL needs space to record what was cached, and
# the cached files must stay servable when the disk fills up (threat 32).
MIN_FREE_BYTES = 256 * 1024
_COMMIT_GRACE = 10.0  # seconds a shutdown waits for verified downloads to be committed
_WRITE_BATCH = 1024 * 1024  # bytes received before they are written to the spool in one go
_WINDOW_BYTES = 2 * 1024 * 1024  # spooled bytes a download keeps in memory for its readers
_ATTEMPTS = 2  # a download that fails verification is fetched once more


class Download:
    """One file on its way from upstream into the cache, readable while it grows."""

    def __init__(
        self,
        key: str | None,
        url: str,
        expected_size: int | None,
        upstream: Upstream | None,
        telemetry: IndexTelemetry,
    ) -> None:
        self.key = key  # the sha256 the index declared; None: cannot be verified or cached
        self.url = url
        self.upstream = upstream  # the upstream of the index that lists it; None: the cache's
        self.telemetry = telemetry  # where its upstream traffic counts: its index's
        self.expected_size = expected_size
        self.total: int | None = expected_size  # known once upstream's headers arrive
        self.spool: Path | None = None
        self.written = 0  # bytes received from upstream
        self.spooled = 0  # of those, bytes written to the spool file
        # The newest bytes, [window_start, written), stay in memory: readers keeping up with
        # the download take them from here and never touch the disk (one thread hop less
        # per chunk and reader). Only spooled bytes ever leave the window.
        self.window_start = 0
        self._window: deque[bytes] = deque()
        self._window_bytes = 0
        self.asked_at = 0.0  # when a client first asked for it (the blob's first access)
        self.is_started = False  # upstream answered with a body on its way
        self.is_verified = False  # every byte is in the spool and matches size and hash
        self.is_done = False
        self.is_committed = False
        self.is_fetched_elsewhere = False  # another replica stored it while this one waited
        self.error: BaseException | None = None
        self.attempt = 1  # a new attempt starts from nothing: see restart()
        self._changed = asyncio.Event()

    def notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def restart(self) -> None:
        """Back to no byte received, for another attempt at the file."""
        self.attempt += 1
        self.total = self.expected_size
        self.spool = None
        self.written = self.spooled = self.window_start = 0
        self._window.clear()
        self._window_bytes = 0
        self.is_started = False
        self.notify()

    def stored_elsewhere(self, size: int) -> None:
        """The blob is in the store already, whole and verified: read it from there."""
        self.total = self.written = self.spooled = size
        self.is_fetched_elsewhere = True
        self.is_started = self.is_verified = self.is_committed = True
        self.notify()

    def received(self, chunk: bytes) -> None:
        self._window.append(chunk)
        self._window_bytes += len(chunk)
        self.written += len(chunk)
        self.notify()

    def spooled_up_to(self, position: int) -> None:
        self.spooled = position
        while self._window and self._window_bytes > _WINDOW_BYTES:
            oldest = self._window[0]
            if self.window_start + len(oldest) > self.spooled:
                break  # not on disk yet: the only copy
            self._window.popleft()
            self._window_bytes -= len(oldest)
            self.window_start += len(oldest)

    def from_memory(self, position: int, end: int) -> bytes | None:
        """Bytes from `position` (up to `end`, at most _READ_CHUNK) if the window still holds
        them; consecutive chunks come as one, so a reader writes to its socket less often."""
        if position < self.window_start:
            return None
        end = min(end, position + _READ_CHUNK)
        # From the newest chunk back: a reader keeping up wants the last one or two, and a
        # walk from the oldest cost a step per chunk of the 2 MiB window on every read.
        parts: list[bytes | memoryview] = []
        chunk_end = self.window_start + self._window_bytes
        for chunk in reversed(self._window):
            chunk_start = chunk_end - len(chunk)
            if chunk_start < end and position < chunk_end:
                if position <= chunk_start and chunk_end <= end:
                    parts.append(chunk)  # whole: no copy of its own
                else:
                    start, stop = max(position, chunk_start), min(end, chunk_end)
                    parts.append(memoryview(chunk)[start - chunk_start : stop - chunk_start])
            if chunk_start <= position:
                break
            chunk_end = chunk_start
        if not parts:
            return None
        if len(parts) == 1 and isinstance(parts[0], bytes):
            return parts[0]
        parts.reverse()
        return b"".join(parts)

    def whole(self) -> bytes | None:
        """Every byte received, when the window still holds them all (a small file)."""
        if self.window_start != 0 or self._window_bytes != self.written:
            return None
        return b"".join(self._window)

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

    async def wait_until_verified(self) -> None:
        """Until every byte is here and matches its hash (or the download failed); raises
        the failure. The commit to the store may still be under way."""
        while not self.is_verified and not self.is_done:
            await self.changed()
        if self.error is not None and not self.is_verified:
            raise self.error

    async def wait_until_done(self) -> None:
        while not self.is_done:
            await self.changed()
        if self.error is not None:
            raise self.error


@dataclass(frozen=True, slots=True)
class Span:
    """Bytes [offset, offset + count) of an open file, verified or held back as any others."""

    handle: IO[bytes]
    offset: int
    count: int


class CachedFile:
    """A verified blob, held against eviction until released: sent from its local file
    (`path`) when the store has one, else streamed from the store with read()."""

    def __init__(
        self,
        blobs: BlobStore | None,
        key: str,
        path: Path | None,
        size: int | None,
        release: Callable[[], None] | None = None,
        *,
        data: bytes | None = None,
    ) -> None:
        self.key = key
        self.path = path
        self.size = size  # known when there is no path (a local file's is read as it opens)
        self._blobs = blobs
        self._release = release
        self._data = data  # a verified download's bytes, its commit still under way

    @classmethod
    def verified_bytes(cls, key: str, data: bytes) -> "CachedFile":
        """A file verified against `key` and held in memory: nothing to lease or open."""
        return cls(None, key, None, len(data), data=data)

    def read(self, start: int, end: int) -> AsyncIterator[bytes]:
        if self._data is not None:
            return _one_chunk(self._data[start:end])
        assert self._blobs is not None, "a file not in memory is in the blob store"
        return self._blobs.read(self.key, start, end)

    def release(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None


class FileCache:
    """Verified files (distributions and their core metadata), by their sha256."""

    def __init__(
        self,
        blobs: BlobStore,
        store: BlobRecords,
        upstream: Upstream,
        spool_dir: Path,
        *,
        telemetry: IndexTelemetry,
        clock: Callable[[], float] = time.time,
        crash: CrashPoints = CrashPoints.DISARMED,
        leases: BlobLeases | None = None,
        flights: Flights[None] | None = None,
        fetch_locks: FetchLocks | None = None,
    ) -> None:
        self.telemetry = telemetry  # the web edge counts each request's outcome here
        self._blobs = blobs
        # Found once: a local store's blobs are sent by sendfile and read from their files.
        self._local: LocalBlobs | None = blobs if isinstance(blobs, LocalBlobs) else None
        # Local files of an object store's blobs are copies, which some blobs may lack.
        self._is_remote = isinstance(blobs, RemoteBlobs)
        self._store = store
        self._upstream = upstream
        self._spool_dir = spool_dir
        self._clock = clock
        self._downloads: Flights[None] = flights if flights is not None else SingleFlight[None]()
        self._active: dict[str, Download] = {}  # by flight key: the downloads under way
        # Replicas sharing the store fetch each blob once between them, as flights do here.
        self._fetch_locks = fetch_locks or LocalFetchLocks()
        self._crash = crash
        self._leases = leases or LocalBlobLeases()  # blobs being served from disk right now
        self._accessed: dict[str, float] = {}  # hits not yet written to the store
        self._small = SmallFiles()
        self.on_commit: Callable[[int], None] | None = None  # gets the new blob's size

    @property
    def in_flight(self) -> int:
        """Downloads from upstream under way."""
        return len(self._active)

    async def open_cached(self, key: str | None) -> CachedFile | None:
        """A verified copy, held against eviction until released; notes the access."""
        if key is None or self._leases.is_deleting(key):
            return None
        committing = self._active.get(key)
        if committing is not None and committing.is_verified:
            # Verified and being committed: milliseconds from a hit, so wait for it.
            with contextlib.suppress(Exception):
                await committing.wait_until_done()
        if not await self._leases.acquire(key):
            return None
        stored = None
        try:
            stored = await self.open_stored(key)
        finally:
            if stored is None:
                self._leases.release(key)
        if stored is None:
            return None
        self._accessed[key] = self._clock()
        return CachedFile(
            self._blobs, key, stored.path, stored.size, lambda: self._leases.release(key)
        )

    async def open_stored(self, key: str) -> CachedFile | None:
        """A stored blob, not held against eviction and its access not noted: for the root
        list's renderings, which eviction never takes."""
        if self._local is not None:
            path = await self._local.local_path(key)
            if path is not None:
                return CachedFile(self._blobs, key, path, None)
            if not self._is_remote:
                return None
            # An object store's blob without a local copy (too large to keep): streamed.
        size = await self._blobs.size(key)
        return None if size is None else CachedFile(self._blobs, key, None, size)

    @asynccontextmanager
    async def local_file(self, key: str) -> AsyncIterator[Path | None]:
        """A verified blob as a file, for readers off the loop that want a path (archives
        read with seeks), held against eviction while the block runs; None when it is not
        cached. From a store without local files it is a copy in the spool dir, removed
        after the block."""
        cached = await self.open_cached(key)
        if cached is None:
            yield None
            return
        try:
            if cached.path is not None:
                yield cached.path
                return
            copy = await _copy_to_spool(cached, self._spool_dir)
            try:
                yield copy
            finally:
                await asyncio.shield(asyncio.to_thread(copy.unlink, missing_ok=True))
        finally:
            cached.release()

    def being_committed(self, key: str) -> CachedFile | None:
        """A download verified and on its way into the store, when it is whole in memory
        (a small file), so a client need not wait for the cache's own commit (the fsync,
        the rename and the row)."""
        download = self._active.get(key)
        if download is None or not download.is_verified or download.is_done:
            return None
        data = download.whole()
        return None if data is None else CachedFile.verified_bytes(key, data)

    def small_file(self, key: str | None) -> bytes | None:
        """A small verified file's bytes from memory, when it is held there; notes the access
        as open_cached does."""
        if key is None or self._leases.is_deleting(key):
            return None
        data = self._small.get(key)
        if data is not None:
            self._accessed[key] = self._clock()
        return data

    @asynccontextmanager
    async def evicting(self, key: str) -> AsyncIterator[bool]:
        """Holds a blob for deletion while the block runs, unless it is being served or
        downloaded: then yields False, holding nothing. While it is held, lookups miss, and
        a new download of the same file waits for the deletion before it commits, so the
        deletion cannot remove it."""
        if key in self._active:
            yield False
            return
        async with self._leases.deleting(key) as is_held:
            if is_held:
                self._small.drop(key)
            yield is_held

    def take_accesses(self) -> dict[str, float]:
        """The hits noted since the last call, for writing to the store in one batch."""
        accessed, self._accessed = self._accessed, {}
        return accessed

    async def is_cached(self, key: str) -> bool:
        """Whether a verified copy is stored."""
        return await self._blobs.size(key) is not None

    async def read_whole(self, key: str) -> bytes | None:
        """A small verified file's bytes (core metadata), None when it is not cached."""
        try:
            return await read_bytes(self._blobs, key)
        except FileNotFoundError:
            return None

    def read(self, key: str) -> AsyncIterator[bytes]:
        """A verified file's bytes, in chunks; FileNotFoundError when it is not cached."""
        return self._blobs.read(key)

    def in_progress(self, key: str) -> Download | None:
        """The download of this file under way, if there is one."""
        return self._active.get(key)

    def download(
        self,
        key: str | None,
        url: str,
        expected_size: int | None,
        *,
        answer: UpstreamFile | None = None,
        upstream: Upstream | None = None,
        telemetry: IndexTelemetry | None = None,
    ) -> Download:
        """The download of this file, started now or joined if one is under way. `answer`:
        upstream's response already on its way (a whole file sent for a range request),
        read instead of asking again; its owner keeps it open until the download is done.
        `upstream`, `telemetry`: those of the index listing the file. Blobs are shared by all
        indexes, so a file one index is fetching is joined, not fetched again, by another."""
        flight_key = key or f"url:{url}"
        active = self._active.get(flight_key)
        if active is not None:
            return active
        if (upstream or self._upstream).is_offline:
            raise NotFound("file not cached and bodega is offline")
        download = Download(key, url, expected_size, upstream, telemetry or self.telemetry)
        # The file's last use is when it was asked for: its commit may land after the
        # client's next request for another file, which must count as more recent.
        download.asked_at = self._clock()
        download.telemetry.download_started()
        self._active[flight_key] = download
        task = self._downloads.run(flight_key, lambda: self._run(download, answer))
        task.add_done_callback(lambda _: self._active.pop(flight_key, None))
        return download

    async def stream(
        self, download: Download, *, spans: bool = False
    ) -> AsyncGenerator["bytes | Span", None]:
        """The download's bytes from the start; raises if it fails before the end.

        With `spans`, bytes already on disk that the reader fell behind on come as a Span of
        the open spool (or blob) for the caller to sendfile, instead of being read into
        memory here a chunk and a thread hop at a time: a herd of clients on one large file
        falls behind a download from a fast upstream at once.
        """
        handle: IO[bytes] | None = None
        from_store = False  # committed to a store without local files: read from it
        attempt, total = download.attempt, download.total
        try:
            position = 0
            while True:
                if download.attempt != attempt:  # the last attempt failed verification
                    _check_can_follow(download, position, total)
                    attempt = download.attempt
                    await _closed(handle)  # the failed attempt's spool
                    handle = None
                # Verified bytes are good whatever happens to the cache after (a failed
                # commit): only an unverified download's failure stops the stream.
                if download.error is not None and not download.is_verified:
                    raise download.error
                # Hold the last byte back until the download is verified (or unverifiable
                # and complete), so a failure can still make the response incomplete.
                is_complete = download.is_verified or download.is_done
                readable = download.written if is_complete else download.written - 1
                if position < readable:
                    chunk = download.from_memory(position, readable)
                    if chunk is None:  # fell behind the window: from the spool (or blob)
                        if handle is None and not from_store:
                            handle = await self._open_for_reading(download)
                            from_store = handle is None
                        if handle is None:  # from_store
                            chunk = await self._read_committed(download, position, readable)
                        elif spans:
                            # Everything before the window is spooled (only spooled bytes
                            # ever leave it), and the spool is flushed up to `spooled`.
                            end = min(readable, download.spooled)
                            yield Span(handle, position, end - position)
                            position = end
                            continue
                        else:
                            size = min(_READ_CHUNK, readable - position)
                            chunk = await asyncio.to_thread(_read_at, handle, position, size)
                    position += len(chunk)
                    yield chunk
                elif is_complete:
                    return
                else:
                    await download.changed()
        finally:
            await _closed(handle)

    async def close(self) -> None:
        # A verified download is only its commit (a fsync and a row) away from the cache, and
        # its clients may have it whole already: let it land rather than fetch it again later.
        committing = [
            task
            for flight_key, download in self._active.items()
            if download.is_verified and (task := self._downloads.running(flight_key))
        ]
        if committing:
            await asyncio.wait(committing, timeout=_COMMIT_GRACE)
        await self._downloads.close()

    async def _open_for_reading(self, download: Download) -> IO[bytes] | None:
        """The spool, or the blob's local file once committed; None: committed to a store
        without local files, to be read from it."""
        while download.spool is None and not download.is_done:
            await download.changed()
        if download.spool is not None:
            try:
                return await open_off_loop(download.spool, "rb")
            except FileNotFoundError:
                pass  # being committed (renamed into the blob store), or discarded
        # The rename happens before is_committed is set; only "done" settles which it was
        # (a race the load test found: a 200 with headers and then no body).
        while not download.is_done:
            await download.changed()
        if download.is_committed and download.key is not None:
            if self._local is None:
                return None
            if path := await self._local.local_path(download.key):
                return await open_off_loop(path, "rb")
            if self._is_remote:
                return None
        raise download.error or UpstreamError("download ended before it could be read")

    async def _read_committed(self, download: Download, position: int, end: int) -> bytes:
        assert download.key is not None, "only a verified download is committed"
        end = min(end, position + _READ_CHUNK)
        try:
            chunk = await read_bytes(self._blobs, download.key, position, end)
        except FileNotFoundError:
            chunk = b""
        if not chunk:
            raise UpstreamError("the file left the cache while being read")
        return chunk

    async def _run(self, download: Download, answer: UpstreamFile | None) -> None:
        started = time.monotonic()
        try:
            if download.key is None:  # never stored: nothing to share with other replicas
                await self._fetch_verified(download, answer)
                download.is_verified = True
                download.notify()
            else:
                # Held until the blob is committed and recorded (or the fetch failed), so a
                # replica that waited finds it in the store.
                async with self._fetch_locks.fetching(download.key) as is_shared:
                    if is_shared and (size := await self._blobs.size(download.key)) is not None:
                        download.stored_elsewhere(size)
                    else:
                        await self._fetch_and_commit(download, download.key, answer)
        except asyncio.CancelledError:
            download.error = UpstreamError("bodega is shutting down")
            raise
        except Exception as error:  # the download's failure is every reader's failure
            log.warning("download of %s failed: %s", download.url, error)
            download.error = error
            download.telemetry.upstream_failed("file", error)
        finally:
            failure = None if download.error is None else str(download.error)
            if not download.is_fetched_elsewhere:  # upstream's traffic is the other's
                download.telemetry.download_finished(
                    download.url, download.written, time.monotonic() - started, failure
                )
            # The spool goes before the download is marked done: nothing may await between
            # "done" and the end of this task, or a client that retries at once would join
            # this failed download instead of starting a new one.
            if download.spool is not None and not download.is_committed:
                await asyncio.to_thread(download.spool.unlink, missing_ok=True)
            download.is_done = True
            download.notify()

    async def _fetch_and_commit(
        self, download: Download, key: str, answer: UpstreamFile | None
    ) -> None:
        spool = await self._fetch_verified(download, answer)
        download.is_verified = True
        download.notify()
        await self._leases.wait_until_deleted(key)
        await store_file(self._blobs, key, spool)
        download.is_committed = True
        if download.written <= SMALL_FILE_BYTES and (data := download.whole()):
            self._small.keep(key, data)
        self._crash.reached("file_committed")
        await self._record(key, download.written, download.asked_at)
        self._crash.reached("file_recorded")
        if self.on_commit is not None:
            self.on_commit(download.written)

    async def _fetch_verified(self, download: Download, answer: UpstreamFile | None) -> Path:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                # Upstream's answer already here serves the first attempt; a retry asks anew.
                return await self._fetch_into(download, answer if attempt == 1 else None)
            except IntegrityError as error:
                # Upstream (or the path to it) sent other bytes than its index declares.
                download.telemetry.integrity_failure()
                log.error("integrity failure, attempt %d of %d: %s", attempt, _ATTEMPTS, error)
                if attempt == _ATTEMPTS:
                    raise
                if download.spool is not None:
                    await asyncio.to_thread(download.spool.unlink, missing_ok=True)
                download.restart()
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _record(self, key: str, size: int, accessed_at: float) -> None:
        # The blob is verified and visible already; a database that cannot take its row now
        # (threats 32, 33) leaves an orphan blob that `cache verify` adopts, not a failure.
        try:
            await self._store.record_blob(key, size, accessed_at)
        except StorageError as error:
            log.warning("blob %s stored but not recorded: %s", key, error)

    async def _fetch_into(self, download: Download, answer: UpstreamFile | None = None) -> Path:
        """Streams the file (from `answer` when upstream's answer is already here) into a
        new spool file, verified; returns the spool's path."""
        hasher = hashlib.sha256()
        limit = download.expected_size
        out: IO[bytes] | None = None
        pending: list[bytes] = []  # received, not yet written: written in batches
        pending_bytes = 0
        # One batch is written (and hashed) in a thread while the next one arrives.
        writing: asyncio.Future[None] | None = None
        try:
            asked = time.monotonic()
            opened: AbstractAsyncContextManager[UpstreamFile] = (
                (download.upstream or self._upstream).open_file(download.url)
                if answer is None
                else contextlib.nullcontext(answer)
            )
            async with opened as remote:
                download.telemetry.upstream_answered("file", time.monotonic() - asked)
                if download.total is None:
                    download.total = remote.content_length
                # Before any client gets headers, so a full disk is a clean 503 (threat 32).
                spool, spool_out = await _open_spool_off_loop(self._spool_dir, download.total)
                out = spool_out
                download.spool = spool
                download.is_started = True
                download.notify()
                async for chunk in remote.chunks():
                    if limit is not None and download.written + len(chunk) > limit:
                        raise IntegrityError(f"{download.url} is larger than the index says")
                    download.received(chunk)
                    download.telemetry.received("file", len(chunk))
                    pending.append(chunk)
                    pending_bytes += len(chunk)
                    if pending_bytes >= _WRITE_BATCH:
                        if writing is not None:
                            await writing
                            self._crash.reached("file_spooling")
                        writing = asyncio.ensure_future(
                            _spool(spool_out, hasher, pending, download)
                        )
                        pending, pending_bytes = [], 0
                if writing is not None:
                    await writing
                    writing = None
                out = None  # the last batch and the close are one hop
                # Shielded: cancelled while queued, the hop (and the close) would never run.
                await asyncio.shield(_spool(spool_out, hasher, pending, download, close=True))
                self._crash.reached("file_spooling")
        finally:
            if out is not None:
                _close_after(writing, out)
        self._crash.reached("file_spooled")
        _verify(download, hasher.hexdigest())
        return spool


def _check_can_follow(download: Download, position: int, total: int | None) -> None:
    """A reader of a failed attempt follows the next one only if it sent nothing yet, and
    the headers it sent (the length) still hold; else it is cut, never mixing attempts."""
    if position > 0 or download.total != total:
        raise IntegrityError(f"{download.url} failed verification")


async def _closed(handle: IO[bytes] | None) -> None:
    if handle is not None:
        # Shielded: a handler cancelled again while closing (server shutdown cancels twice)
        # would otherwise drop the queued close and leak the file.
        await asyncio.shield(asyncio.to_thread(handle.close))


def _verify(download: Download, digest: str) -> None:
    # A body cut short without Content-Length looks complete to the HTTP client (threat 15b):
    # only the size and hash the index declared can tell.
    if download.total is not None and download.written != download.total:
        raise IntegrityError(
            f"{download.url}: got {download.written} bytes, expected {download.total}"
        )
    if download.key is not None and digest != download.key:
        raise IntegrityError(f"{download.url}: sha256 {digest} does not match the index")


def _open_spool(spool_dir: Path, size: int | None) -> tuple[Path, IO[bytes]]:
    spool_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(spool_dir).free
    if free - (size or 0) < MIN_FREE_BYTES:
        raise StorageError(f"not enough free space to cache {size} bytes ({free} free)")
    fd, name = tempfile.mkstemp(dir=spool_dir, suffix=".part")
    return Path(name), os.fdopen(fd, "wb")


def _close_after(writing: "asyncio.Future[None] | None", out: IO[bytes]) -> None:
    """Closes the spool in a worker thread once no batch is being written to it. Started,
    not awaited: a download cancelled twice (a shutdown) must not leave the file open."""
    loop = asyncio.get_running_loop()

    def close(done: "asyncio.Future[None] | None" = None) -> None:
        if done is not None and not done.cancelled():
            done.exception()  # retrieved; the failure that ended the download is raised
        loop.run_in_executor(None, out.close)

    if writing is None or writing.done():
        close(writing)
    else:
        writing.add_done_callback(close)


async def _open_spool_off_loop(spool_dir: Path, size: int | None) -> tuple[Path, IO[bytes]]:
    return await acquire_off_loop(lambda: _open_spool(spool_dir, size), _discard_spool)


def _discard_spool(opened: tuple[Path, IO[bytes]]) -> None:
    path, out = opened
    out.close()
    path.unlink(missing_ok=True)


async def _spool(
    out: IO[bytes], hasher: Any, batch: list[bytes], download: Download, *, close: bool = False
) -> None:
    try:
        await asyncio.to_thread(_write_and_hash, out, hasher, batch, close)
    except OSError as error:
        # ENOSPC, or EFBIG under RLIMIT_FSIZE (threat 32); the spool file is removed by _run.
        raise StorageError(f"cannot write to the cache: {error.strerror or error}") from error
    download.spooled_up_to(download.spooled + sum(map(len, batch)))


def _write_and_hash(out: IO[bytes], hasher: Any, batch: list[bytes], close: bool) -> None:
    try:
        for chunk in batch:
            out.write(chunk)
            hasher.update(chunk)
        out.flush()  # readers of the spool open their own handle; they must see these bytes
    finally:
        if close:
            out.close()


async def _copy_to_spool(cached: CachedFile, spool_dir: Path) -> Path:
    """A blob copied into a new spool file, for a reader that wants a path."""
    path, out = await _open_spool_off_loop(spool_dir, cached.size)
    try:
        async for chunk in cached.read(0, cached.size or 0):
            await asyncio.to_thread(out.write, chunk)
    except BaseException:
        await asyncio.shield(asyncio.to_thread(_discard_spool, (path, out)))
        raise
    await asyncio.shield(asyncio.to_thread(out.close))
    return path


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _read_at(handle: IO[bytes], position: int, size: int) -> bytes:
    handle.seek(position)
    return handle.read(size)
