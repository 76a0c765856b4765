"""Core metadata for wheels whose upstream page offers none (PEP 658), extracted by bodega.

Where the bytes come from, cheapest first: the cached wheel; HTTP Range requests for the
zip's tail and then the METADATA member alone (two or three small requests, however large
the wheel); the whole wheel through the file cache's single-flight, verified download.
The METADATA is stored as a blob under its own sha256 and recorded per (project, filename)
before any page advertises it, so bodega never advertises what it cannot serve (spec 24).

When: after a page is fetched from upstream, without the page waiting for it (no client
waits for work bodega does for itself): the wheels of the newest release are queued,
pure-Python and the commonest platforms first (core/wanted_wheels.py), and a few workers
extract them, most wanted first across every page. A client only asks for `<file>.metadata`
when the page advertises it, so the next rendering of the page (a new ETag) shows what is
stored. A wheel a client downloads gets its METADATA read from the cached file once it is
committed, at no upstream cost. Both wait until clients leave the server quiet (at most
`LONGEST_WAIT`; proxy/activity.py), so that an installer's burst does not share the CPU with
work whose result it will not ask for; a client that asks for a `.metadata` itself is
answered at once.

An upstream that ignores Range answers the first range request with the whole file: that
answer becomes the file's verified download (teed into the cache like any other), and the
upstream client remembers the host, so later extractions from it go straight to a whole
download (or join one under way), and only for the most wanted wheels. Offline, every
fetch is NotFound (OfflineUpstream): only cached wheels are read.
"""

import asyncio
import hashlib
import heapq
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Protocol

from bodega.core.model import DistributionFile, ProjectPage
from bodega.core.wanted_wheels import LINUX_X86_64, Priority, wanted_wheels
from bodega.core.wheel_metadata import (
    TAIL_BYTES,
    Span,
    WheelMetadataError,
    extract_metadata,
    find_metadata_member,
    locate_central_directory,
)
from bodega.errors import BodegaError, UpstreamError
from bodega.proxy.activity import LONGEST_WAIT, ClientActivity
from bodega.proxy.coordination import Flights
from bodega.proxy.files import Download, FileCache
from bodega.proxy.singleflight import SingleFlight
from bodega.storage.blobs import BlobStore, read_bytes, store_bytes
from bodega.storage.metadata import BlobRecords, CoreMetadataRecords
from bodega.upstream import Upstream, UpstreamFile, UpstreamRange


class MetadataRecords(CoreMetadataRecords, BlobRecords, Protocol):
    """What extraction records: which METADATA blob a file has, and that blob."""


log = logging.getLogger(__name__)

OnFound = Callable[[str, str, str], None]  # project, filename, metadata sha256
ReadSpan = Callable[[Span], Awaitable[bytes]]

# Extractions from upstream at once, across bodega: background work that must leave the
# upstream connection and the CPU to clients.
CONCURRENT_EXTRACTIONS = 4
# Wheels waiting for extraction; past this the least wanted are dropped (a later refresh of
# their page queues them again).
MAX_QUEUED = 4096
# From an upstream without Range every extraction is a whole download: only wheels up to this
# family (pure, or CPython on manylinux x86_64) are worth that, since clients fetch them anyway.
_DOWNLOADED_WHOLE_UP_TO = LINUX_X86_64
# Choosing among thousands of files takes milliseconds: off the loop for large pages.
_IN_THREAD_FILES = 200
# A wheel that could not be read is not tried again for this long (it will not change).
RETRY_AFTER = 3600.0
_REMEMBERED_FAILURES = 10_000


class CoreMetadataExtractor:
    """Extracts, stores and records the METADATA of listed wheels, once per wheel."""

    def __init__(
        self,
        upstream: Upstream,
        blobs: BlobStore,
        store: MetadataRecords,
        files: FileCache,
        *,
        clock: Callable[[], float] = time.time,
        flights: Flights[str | None] | None = None,
        activity: ClientActivity | None = None,
    ) -> None:
        self._upstream = upstream
        self._blobs = blobs
        self._store = store
        self._files = files
        self._clock = clock
        self.on_found: OnFound | None = None  # told of each METADATA stored (pages listen)
        self._flights: Flights[str | None] = (
            flights if flights is not None else SingleFlight[str | None]()
        )
        self._activity = activity if activity is not None else ClientActivity()
        self._failed: OrderedDict[str, float] = OrderedDict()
        # (priority, order of arrival, when queued, project, file): a heap, most wanted first.
        self._queue: list[tuple[Priority, int, float, str, DistributionFile]] = []
        self._queued: set[str] = set()  # filenames in the queue
        self._arrivals = itertools.count()
        self._workers: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[None]] = set()
        # Reads of downloaded wheels at once: they start together when a burst ends.
        self._reads = asyncio.Semaphore(CONCURRENT_EXTRACTIONS)

    def extract_for_page(self, project: str, page: ProjectPage) -> None:
        """Queues the wheels of the page's newest release that lack metadata; returns at once."""
        if len(page.files) <= _IN_THREAD_FILES:
            self._enqueue(project, wanted_wheels(page))
            return

        async def choose() -> None:
            self._enqueue(project, await asyncio.to_thread(wanted_wheels, page))

        self._own(choose())

    def extract_after_download(
        self, project: str, file: DistributionFile, download: Download | None
    ) -> None:
        """A wheel a client fetched (`download`, or None when it was cached already): its
        METADATA is read from the verified blob once committed, off the loop, for free."""

        async def read_cached() -> None:
            if download is not None:
                try:
                    await download.wait_until_done()
                except BodegaError:
                    return  # the download failed: nothing cached to read
                if not download.is_committed:
                    return
                # Whatever failed before (upstream's ranges), the verified file is here now.
                self._failed.pop(file.filename, None)
            deadline = self._activity.now() + LONGEST_WAIT
            async with self._reads:
                await self._activity.until_quiet(deadline)
                await self.obtain(project, file)

        self._own(read_cached())

    async def obtain(self, project: str, file: DistributionFile) -> str | None:
        """The sha256 of the wheel's METADATA, now stored as a blob (and `on_found` told of
        it); None if it cannot be had."""
        return await self._flights.call(file.filename, lambda: self._obtain(project, file))

    async def settled(self) -> None:
        """Until nothing is queued, extracted or waiting for a download (tests wait on it)."""
        while busy := self._workers | self._background:
            await asyncio.gather(*busy, return_exceptions=True)

    async def close(self) -> None:
        self._queue.clear()
        self._queued.clear()
        tasks = self._workers | self._background
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._flights.close()

    def _own(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _enqueue(self, project: str, wanted: list[tuple[Priority, DistributionFile]]) -> None:
        now = self._activity.now()
        for priority, file in wanted:
            if file.filename in self._queued or self._has_failed(file.filename):
                continue
            heapq.heappush(self._queue, (priority, next(self._arrivals), now, project, file))
            self._queued.add(file.filename)
        if len(self._queue) > MAX_QUEUED:
            self._queue = heapq.nsmallest(MAX_QUEUED, self._queue)  # sorted: still a heap
            self._queued = {file.filename for *_, file in self._queue}
        while self._queue and len(self._workers) < CONCURRENT_EXTRACTIONS:
            worker = asyncio.ensure_future(self._work())
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)

    async def _work(self) -> None:
        """Extracts queued wheels, most wanted first, until the queue is empty."""
        try:
            while self._queue:
                # Waits before taking the wheel out: it stays queued (not queued twice) and
                # a more wanted one queued meanwhile goes first.
                await self._activity.until_quiet(self._queue[0][2] + LONGEST_WAIT)
                if not self._queue:
                    break  # close() emptied it
                priority, _, _, project, file = heapq.heappop(self._queue)
                self._queued.discard(file.filename)
                if (
                    priority.family > _DOWNLOADED_WHOLE_UP_TO
                    and not self._upstream.serves_ranges(file.url)
                    and not await self._is_cached(file)
                ):
                    continue  # a whole download of a wheel few clients will fetch: skipped
                await self.obtain(project, file)
        finally:
            # In the same step as the empty queue was seen: a wheel queued from now on
            # starts a worker of its own rather than waiting for this finished one.
            self._workers.discard(asyncio.current_task())

    def _has_failed(self, filename: str) -> bool:
        failed_at = self._failed.get(filename)
        return failed_at is not None and self._clock() - failed_at < RETRY_AFTER

    async def _is_cached(self, file: DistributionFile) -> bool:
        return file.sha256 is not None and await self._blobs.size(file.sha256) is not None

    async def _obtain(self, project: str, file: DistributionFile) -> str | None:
        if self._has_failed(file.filename):
            return None
        try:
            metadata = await self._read(file)
            sha256 = await asyncio.to_thread(lambda: hashlib.sha256(metadata).hexdigest())
            # Blob first, then the record: a page only advertises what can be served.
            await store_bytes(self._blobs, sha256, metadata)
            await self._store.record_blob(sha256, len(metadata), self._clock())
            await self._store.put_core_metadata(project, file.filename, sha256)
            if self.on_found is not None:
                self.on_found(project, file.filename, sha256)
        except BodegaError as error:
            log.info("no core metadata for %s: %s", file.filename, error)
            self._failed[file.filename] = self._clock()
            while len(self._failed) > _REMEMBERED_FAILURES:
                self._failed.popitem(last=False)
            return None
        return sha256

    async def _read(self, file: DistributionFile) -> bytes:
        if file.sha256 is not None:
            if await self._blobs.size(file.sha256) is not None:
                return await self._from_blob(file.sha256, file.filename)
            if self._files.in_progress(file.sha256) or not self._upstream.serves_ranges(file.url):
                # The file is on its way, or upstream would send all of it anyway.
                return await self._from_download(file.sha256, file)
        try:
            return await self._from_ranges(file)
        except UpstreamError as error:
            log.info("range requests for %s failed (%s); downloading it whole", file.url, error)
        if file.sha256 is None:
            raise WheelMetadataError(f"{file.filename} has no hash to verify a download with")
        return await self._from_download(file.sha256, file)

    async def _from_download(
        self, key: str, file: DistributionFile, answer: UpstreamFile | None = None
    ) -> bytes:
        """Through the file cache's verified download, as a client would fetch it (joined
        if one is under way); `answer` is upstream's whole-file answer to a range request."""
        download = self._files.download(
            key, file.url, file.size, answer=answer, upstream=self._upstream
        )
        await download.wait_until_done()
        return await self._from_blob(key, file.filename)

    async def _from_blob(self, key: str, filename: str) -> bytes:
        size = await self._blobs.size(key)
        if size is None:
            raise WheelMetadataError(f"{filename} left the cache while being read")

        async def read(span: Span) -> bytes:
            return await read_bytes(self._blobs, key, span.start, span.end)

        tail = await read(Span(max(0, size - TAIL_BYTES), size))
        return await _extract(read, tail, size, filename)

    async def _from_ranges(self, file: DistributionFile) -> bytes:
        """The METADATA from two or three range requests, or from the whole wheel when
        upstream ignores Range and sends all of it (then cached, verified, as a download)."""
        # A suffix range needs no HEAD first: Content-Range tells the total size.
        async with self._upstream.open_range(file.url, None, TAIL_BYTES) as tail:
            if not isinstance(tail, UpstreamRange):
                if file.sha256 is None:
                    raise WheelMetadataError(f"{file.filename} has no hash to verify it with")
                # The whole file is on its way: it becomes the file's download, not waste.
                return await self._from_download(file.sha256, file, tail)
        if file.size is not None and tail.total != file.size:
            raise WheelMetadataError(
                f"{file.filename} is {tail.total} bytes, the index says {file.size}"
            )

        async def read(span: Span) -> bytes:
            found = await self._upstream.fetch_range(file.url, span.start, span.end - 1)
            if len(found.body) != span.length:
                raise UpstreamError(f"upstream stopped answering ranges of {file.url}")
            return found.body

        return await _extract(read, tail.body, tail.total, file.filename)


async def _extract(read: ReadSpan, tail: bytes, size: int, filename: str) -> bytes:
    tail_start = size - len(tail)

    async def span_bytes(span: Span) -> bytes:
        # Small wheels lie wholly in the tail: one request was enough.
        if span.start >= tail_start:
            return tail[span.start - tail_start : span.end - tail_start]
        return await read(span)

    directory_span = locate_central_directory(tail, size)
    directory = await span_bytes(directory_span)
    member = await asyncio.to_thread(find_metadata_member, directory, directory_span, filename)
    data = await span_bytes(member.span)
    # Inflating up to the cap takes milliseconds: off the loop.
    return await asyncio.to_thread(extract_metadata, data, member)
