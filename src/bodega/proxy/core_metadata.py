"""Core metadata for wheels whose upstream page offers none (PEP 658), extracted by bodega.

Where the bytes come from, cheapest first: the cached wheel; HTTP Range requests for the
zip's tail and then the METADATA member alone (two or three small requests, however large
the wheel); the whole wheel through the file cache's single-flight, verified download.
The METADATA is stored as a blob under its own sha256 and recorded per (project, filename)
before any page advertises it, so bodega never advertises what it cannot serve (spec 24).

When: right after a page is fetched from upstream, for the newest wheels lacking metadata,
a bounded number per page and a bounded number at once. A client only asks for
`<file>.metadata` when the page advertises it, so waiting for the first request would
never happen; the page request waits a few seconds for this work so its first client
already sees the metadata, and the rest goes on in the background.
"""

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from packaging.version import InvalidVersion, Version

from bodega.core.filenames import version_of
from bodega.core.model import DistributionFile, ProjectPage
from bodega.core.wheel_metadata import (
    TAIL_BYTES,
    Span,
    WheelMetadataError,
    extract_metadata,
    find_metadata_member,
    locate_central_directory,
)
from bodega.errors import BodegaError, UpstreamError
from bodega.proxy.files import FileCache
from bodega.proxy.singleflight import SingleFlight
from bodega.storage.blobs import BlobStore
from bodega.storage.metadata import MetadataStore
from bodega.upstream import UpstreamClient

log = logging.getLogger(__name__)

OnFound = Callable[[str, str, str], None]  # project, filename, metadata sha256
ReadSpan = Callable[[Span], Awaitable[bytes]]

# Bounds on the upstream work one page fetch can start, and on all of it at once.
WHEELS_PER_PAGE = 32
CONCURRENT_EXTRACTIONS = 4
# How long a page request waits for its first extractions before it is served without them.
PAGE_WAIT = 2.0
# A wheel that could not be read is not tried again for this long (it will not change).
RETRY_AFTER = 3600.0
_REMEMBERED_FAILURES = 10_000


class CoreMetadataExtractor:
    """Extracts, stores and records the METADATA of listed wheels, once per wheel."""

    def __init__(
        self,
        upstream: UpstreamClient,
        blobs: BlobStore,
        store: MetadataStore,
        files: FileCache,
        *,
        offline: bool,
        page_wait: float = PAGE_WAIT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._upstream = upstream
        self._blobs = blobs
        self._store = store
        self._files = files
        self._offline = offline
        self.page_wait = page_wait
        self._clock = clock
        self._flights: SingleFlight[str | None] = SingleFlight()
        self._limit = asyncio.Semaphore(CONCURRENT_EXTRACTIONS)
        self._failed: OrderedDict[str, float] = OrderedDict()
        self._background: set[asyncio.Task[None]] = set()

    def extract_for_page(
        self, project: str, page: ProjectPage, on_found: OnFound
    ) -> asyncio.Task[None] | None:
        """Starts extraction for the page's newest wheels that lack metadata; the task is
        owned here (cancelled by close()), `on_found` hears of each success. None when
        there is nothing to extract (upstream serves every wheel's metadata)."""
        # Sorting thousands of filenames by version takes a while: off the loop, in the task.
        is_large = len(page.files) > 200
        found = [] if is_large else candidates(page)
        if not is_large and not found:
            return None

        async def work() -> None:
            async def one(file: DistributionFile) -> None:
                sha256 = await self.obtain(project, file)
                if sha256 is not None:
                    on_found(project, file.filename, sha256)

            wheels = await asyncio.to_thread(candidates, page) if is_large else found
            await asyncio.gather(*(one(f) for f in wheels))

        task = asyncio.ensure_future(work())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def obtain(self, project: str, file: DistributionFile) -> str | None:
        """The sha256 of the wheel's METADATA, now stored as a blob; None if it cannot be had."""
        return await self._flights.call(file.filename, lambda: self._obtain(project, file))

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self._flights.close()

    async def _obtain(self, project: str, file: DistributionFile) -> str | None:
        failed_at = self._failed.get(file.filename)
        if failed_at is not None and self._clock() - failed_at < RETRY_AFTER:
            return None
        try:
            async with self._limit:
                metadata = await self._read(file)
            sha256 = await asyncio.to_thread(lambda: hashlib.sha256(metadata).hexdigest())
            # Blob first, then the record: a page only advertises what can be served.
            await self._blobs.put_bytes(sha256, metadata)
            await self._store.record_blob(sha256, len(metadata), self._clock())
            await self._store.put_core_metadata(project, file.filename, sha256)
        except BodegaError as error:
            log.info("no core metadata for %s: %s", file.filename, error)
            self._failed[file.filename] = self._clock()
            while len(self._failed) > _REMEMBERED_FAILURES:
                self._failed.popitem(last=False)
            return None
        return sha256

    async def _read(self, file: DistributionFile) -> bytes:
        if file.sha256 is not None and await self._blobs.size(file.sha256) is not None:
            return await self._from_blob(file.sha256, file.filename)
        try:
            found = await self._from_ranges(file)
        except UpstreamError as error:
            log.info("range requests for %s failed (%s); downloading it whole", file.url, error)
            found = None
        if found is not None:
            return found
        if file.sha256 is None:
            raise WheelMetadataError(f"{file.filename} has no hash to verify a download with")
        # Upstream ignores Range: fetch the wheel whole, verified, as a client would.
        download = self._files.download(file.sha256, file.url, file.size)
        await download.wait_until_done()
        return await self._from_blob(file.sha256, file.filename)

    async def _from_blob(self, key: str, filename: str) -> bytes:
        size = await self._blobs.size(key)
        if size is None:
            raise WheelMetadataError(f"{filename} left the cache while being read")

        async def read(span: Span) -> bytes:
            return b"".join([c async for c in self._blobs.read(key, span.start, span.end)])

        tail = await read(Span(max(0, size - TAIL_BYTES), size))
        return await _extract(read, tail, size, filename)

    async def _from_ranges(self, file: DistributionFile) -> bytes | None:
        if self._offline:
            raise WheelMetadataError(f"{file.filename} is not cached and bodega is offline")
        # A suffix range needs no HEAD first: Content-Range tells the total size.
        tail = await self._upstream.fetch_range(file.url, None, TAIL_BYTES)
        if tail is None:
            return None
        if file.size is not None and tail.total != file.size:
            raise WheelMetadataError(
                f"{file.filename} is {tail.total} bytes, the index says {file.size}"
            )

        async def read(span: Span) -> bytes:
            found = await self._upstream.fetch_range(file.url, span.start, span.end - 1)
            if found is None or len(found.body) != span.length:
                raise UpstreamError(f"upstream stopped answering ranges of {file.url}")
            return found.body

        return await _extract(read, tail.body, tail.total, file.filename)


def candidates(page: ProjectPage) -> list[DistributionFile]:
    """The wheels bodega should extract METADATA for: those of the newest release that lack
    it, which is what a resolver asks for first. Older releases are left to the clients'
    own fallbacks; extracting every release's wheels made a cold page fetch wait on dozens
    of upstream round trips. A quarantined project is left alone (PEP 792)."""
    if page.status is not None and page.status.status == "quarantined":
        return []
    wheels = [
        f
        for f in page.files
        if f.filename.endswith(".whl") and not f.core_metadata and not f.is_yanked
    ]
    if not wheels:
        return []
    newest = max(_version_key(f.filename) for f in wheels)
    return [f for f in wheels if _version_key(f.filename) == newest][:WHEELS_PER_PAGE]


def _version_key(filename: str) -> Version:
    try:
        return Version(version_of(filename) or "0")
    except InvalidVersion:
        return Version("0")


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
