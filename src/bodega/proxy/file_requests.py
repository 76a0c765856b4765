"""The use case behind an index's file URL: which mirror lists the file, then the verified
blob or the download that fills it, and what bodega learns on the way (search's signals,
a wheel's METADATA from the cached file). The web edge only translates the answer to HTTP.
"""

import hashlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass

from bodega.core.model import DistributionFile
from bodega.core.uploads import provenance_document
from bodega.errors import NotFound
from bodega.proxy.files import CachedFile, Download, FileCache, Span
from bodega.proxy.hosted import PROVENANCE_SUFFIX
from bodega.proxy.indexes import Indexes, Mirror
from bodega.proxy.telemetry import CacheOutcome, IndexTelemetry, Telemetry
from bodega.storage.metadata import HostedFile

METADATA_SUFFIX = ".metadata"


@dataclass(frozen=True, slots=True)
class FileAsk:
    """What the client asked for, as far as the cache cares."""

    index: str  # "<user>/<index>"; "": the default index
    project: str  # validated and normalized
    filename: str  # validated; a distribution file, or one with ".metadata" appended
    is_get: bool  # GET (a client taking the file), not HEAD
    is_whole: bool  # the whole file, unconditionally: a small one may come from memory
    is_ranged: bool  # a Range request


@dataclass(frozen=True, slots=True)
class InMemory:
    """A small verified file, from memory."""

    data: bytes
    key: str
    telemetry: IndexTelemetry  # the index asked, where the bytes sent count


@dataclass(frozen=True, slots=True)
class FromCache:
    """A verified blob, held against eviction until the response releases it."""

    cached: CachedFile
    outcome: CacheOutcome
    telemetry: IndexTelemetry  # the index asked, where the bytes sent count


@dataclass(frozen=True, slots=True)
class Live:
    """The download that fills the cache, streamed while it runs."""

    download: Download


@dataclass(frozen=True, slots=True)
class Elsewhere:
    """A verified blob the client fetches from the object store itself (--redirect-files)."""

    url: str  # presigned: no credentials needed, and it expires


FileAnswer = InMemory | FromCache | Live | Elsewhere
Presign = Callable[[str], Awaitable[str]]  # a blob key -> a short-lived URL of its bytes


class FileRequests:
    def __init__(
        self,
        indexes: Indexes,
        files: FileCache,
        telemetry: Telemetry,
        *,
        presign: Presign | None = None,
    ) -> None:
        self._indexes = indexes
        self._files = files
        self._telemetry = telemetry
        self._presign = presign  # set: hits are redirected to the object store

    async def get(self, ask: FileAsk) -> FileAnswer:
        if ask.filename.endswith(PROVENANCE_SUFFIX):
            return await self._provenance(ask)
        is_metadata = ask.filename.endswith(METADATA_SUFFIX)
        listed_name = ask.filename.removesuffix(METADATA_SUFFIX) if is_metadata else ask.filename
        source, listed = await self._indexes.file(ask.index, ask.project, listed_name)
        # Requests are counted for the index asked; upstream's bytes for the mirror's.
        counted = self._telemetry.index(self._indexes.spec(ask.index).name)
        if isinstance(listed, HostedFile):
            return await self._hosted(listed, is_metadata, ask, counted)
        assert isinstance(source, Mirror)
        return await self._mirrored(source, listed, ask, is_metadata, counted)

    async def _mirrored(
        self,
        mirror: Mirror,
        file: DistributionFile,
        ask: FileAsk,
        is_metadata: bool,
        counted: IndexTelemetry,
    ) -> FileAnswer:
        """A mirror's file: the verified blob, or the download that fills it."""
        key: str | None
        if is_metadata:
            key = await _metadata_key(mirror, ask.project, file)
            url, size = file.url + METADATA_SUFFIX, None
        else:
            key, url, size = file.sha256, file.url, file.size
            if ask.is_get:
                mirror.search.saw_download(ask.project)  # search ranks what bodega serves
        # A wheel whose page advertises no metadata gets it from the cached file, for free.
        wants_metadata = not is_metadata and key is not None and _lacks_metadata(file)
        hit = await self._hit(key, ask.is_get and ask.is_whole, counted)
        if hit is not None:
            if is_metadata and key is not None:
                # Search learns summaries and latest versions from the metadata clients fetch.
                mirror.search.saw_metadata(ask.project, key, None)
            if wants_metadata:
                mirror.core_metadata.extract_after_download(ask.project, file, None)
            counted.count_outcome("file", CacheOutcome.HIT)
            return await self._elsewhere_if_asked(hit)
        download = self._files.download(
            key, url, size, upstream=mirror.upstream, telemetry=mirror.pages.telemetry
        )
        if wants_metadata:
            mirror.core_metadata.extract_after_download(ask.project, file, download)
        counted.count_outcome("file", CacheOutcome.MISS)
        if is_metadata and key is not None:
            mirror.search.saw_metadata(ask.project, key, download)
        if ask.is_ranged and ask.is_get and key is not None:
            # A slice of a file must come from verified bytes: the whole file, verified, from
            # memory while it is committed (a small one), else from the filled cache. (Only
            # this first, partial answer: a hit meanwhile waits for the commit, so that it
            # has the stored blob's Last-Modified, or its presigned URL.)
            await download.wait_until_verified()
            cached = self._files.being_committed(key)
            if cached is not None:
                return FromCache(cached, CacheOutcome.MISS, counted)
            await download.wait_until_done()
            cached = await self._files.open_cached(key)
            if cached is None:
                raise NotFound(f"{ask.filename} could not be cached")
            return FromCache(cached, CacheOutcome.MISS, counted)
        return Live(download)

    async def _elsewhere_if_asked(self, hit: "InMemory | FromCache") -> FileAnswer:
        """With --redirect-files, a stored hit as the object store's presigned URL."""
        if self._presign is not None and isinstance(hit, FromCache):
            # Checked to be stored just now; the URL outlives that check by its expiry.
            hit.cached.release()
            return Elsewhere(await self._presign(hit.cached.key))
        return hit

    def stream(self, download: Download, *, spans: bool) -> AsyncGenerator[bytes | Span, None]:
        """A live download's bytes as they arrive (see FileCache.stream)."""
        return self._files.stream(download, spans=spans)

    async def _provenance(self, ask: FileAsk) -> InMemory:
        """PEP 740: the provenance of an uploaded file that came with attestations."""
        listed_name = ask.filename.removesuffix(PROVENANCE_SUFFIX)
        _, listed = await self._indexes.file(ask.index, ask.project, listed_name)
        if not isinstance(listed, HostedFile) or listed.attestations is None:
            raise NotFound(f"{listed_name} has no provenance here")
        document = provenance_document(listed.attestations)
        counted = self._telemetry.index(self._indexes.spec(ask.index).name)
        counted.count_outcome("file", CacheOutcome.HIT)
        return InMemory(document, hashlib.sha256(document).hexdigest(), counted)

    async def _hosted(
        self, file: HostedFile, is_metadata: bool, ask: FileAsk, counted: IndexTelemetry
    ) -> InMemory | FromCache:
        """An uploaded file or its METADATA: pinned blobs, always there."""
        key = file.metadata_sha256 if is_metadata else file.sha256
        if key is None:
            raise NotFound(f"{file.filename} has no core metadata")
        hit = await self._hit(key, ask.is_get and ask.is_whole, counted)
        if hit is None:
            raise NotFound(f"the bytes of {ask.filename} are missing from the blob store")
        counted.count_outcome("file", CacheOutcome.HIT)
        return hit

    async def _hit(
        self, key: str | None, is_whole_get: bool, counted: IndexTelemetry
    ) -> InMemory | FromCache | None:
        """The cached file: from memory for a small file asked for whole, else from the
        blob store (the response answers Range and conditional requests); None: not cached."""
        if key is not None and is_whole_get:
            data = self._files.small_file(key)
            if data is not None:
                return InMemory(data, key, counted)
        cached = await self._files.open_cached(key)
        return None if cached is None else FromCache(cached, CacheOutcome.HIT, counted)


async def _metadata_key(mirror: Mirror, project: str, file: DistributionFile) -> str | None:
    if _lacks_metadata(file):
        # Not advertised (yet): bodega extracts it from the wheel on demand.
        key = await mirror.core_metadata.obtain(project, file)
        if key is None:
            raise NotFound(f"{file.filename} has no core metadata")
        return key
    if not file.core_metadata:
        raise NotFound(f"{file.filename} has no core metadata")
    return file.metadata_sha256


def _lacks_metadata(file: DistributionFile) -> bool:
    """A wheel whose page offers no METADATA (which bodega can extract)."""
    return not file.core_metadata and file.filename.endswith(".whl")
