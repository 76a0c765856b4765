"""Distribution files and their core metadata (PEP 658): from the cache with sendfile, or
streamed to the client while the first download fills the cache."""

import contextlib
import logging

from aiohttp import web

from bodega.core.model import DistributionFile
from bodega.core.names import normalize_project_name, validate_filename
from bodega.errors import BodegaError, NotFound
from bodega.proxy.files import Download, Span
from bodega.proxy.telemetry import CacheOutcome
from bodega.services import Services
from bodega.web.cached_file import CachedResponse, SmallFileResponse
from bodega.web.headers import CACHE_OUTCOME, FILE_CACHE_CONTROL
from bodega.web.routing import Match
from bodega.web.sendfile import send_file_part

log = logging.getLogger(__name__)

_METADATA_SUFFIX = ".metadata"
_OCTET_STREAM = "application/octet-stream"
# Requests only CachedResponse answers (206, 304, 412): they are served from disk.
_CONDITIONS = (
    "Range",
    "If-Range",
    "If-Match",
    "If-None-Match",
    "If-Modified-Since",
    "If-Unmodified-Since",
)


async def distribution_file(
    request: web.Request, services: Services, match: Match
) -> web.StreamResponse:
    project = normalize_project_name(match.project)
    filename = validate_filename(match.filename)
    if project != match.project:
        raise web.HTTPMovedPermanently(f"{match.prefix}{project}/{filename}")
    is_metadata = filename.endswith(_METADATA_SUFFIX)
    listed_name = filename.removesuffix(_METADATA_SUFFIX) if is_metadata else filename
    file = await services.pages.find_file(project, listed_name)
    key: str | None
    if is_metadata:
        key = await _metadata_key(services, project, file)
        url, size = file.url + _METADATA_SUFFIX, None
    else:
        key, url, size = file.sha256, file.url, file.size
        if request.method == "GET":
            services.search.saw_download(project)  # search ranks what this bodega serves

    # A wheel whose page advertises no metadata gets it from the cached file, for free.
    wants_metadata = not is_metadata and key is not None and _lacks_metadata(file)
    hit = await _open_hit(request, services, key)
    if hit is not None:
        if is_metadata and key is not None:
            # Search learns summaries and latest versions from the metadata clients fetch.
            services.search.saw_metadata(project, key, None)
        if wants_metadata:
            services.core_metadata.extract_after_download(project, file, None)
        services.files.telemetry.count_outcome("file", CacheOutcome.HIT)
        return hit
    download = services.files.download(key, url, size)
    if wants_metadata:
        services.core_metadata.extract_after_download(project, file, download)
    services.files.telemetry.count_outcome("file", CacheOutcome.MISS)
    if is_metadata and key is not None:
        services.search.saw_metadata(project, key, download)
    if request.method == "HEAD":
        return await _head(download)
    if "Range" in request.headers and key is not None:
        # A slice of a file must come from verified bytes: fill the cache, then slice it.
        await download.wait_until_done()
        cached = await services.files.open_cached(key)
        if cached is None:
            raise NotFound(f"{filename} could not be cached")
        return CachedResponse(cached, services, CacheOutcome.MISS)
    return await _stream(request, services, download)


async def _metadata_key(services: Services, project: str, file: DistributionFile) -> str | None:
    if _lacks_metadata(file):
        # Not advertised (yet): bodega extracts it from the wheel on demand.
        key = await services.core_metadata.obtain(project, file)
        if key is None:
            raise NotFound(f"{file.filename} has no core metadata")
        return key
    if not file.core_metadata:
        raise NotFound(f"{file.filename} has no core metadata")
    return file.metadata_sha256


def _lacks_metadata(file: DistributionFile) -> bool:
    """A wheel whose page offers no METADATA (which bodega can extract)."""
    return not file.core_metadata and file.filename.endswith(".whl")


async def _open_hit(
    request: web.Request, services: Services, key: str | None
) -> web.StreamResponse | None:
    """The cached file's response: from memory for a small file asked for whole, else from
    disk (CachedResponse answers Range and conditional requests); None when not cached."""
    is_whole_get = request.method == "GET" and not any(h in request.headers for h in _CONDITIONS)
    if key is not None and is_whole_get:
        data = services.files.small_file(key)
        if data is not None:
            return SmallFileResponse(data, key, services)
    cached = await services.files.open_cached(key)
    return None if cached is None else CachedResponse(cached, services, CacheOutcome.HIT)


async def _head(download: Download) -> web.StreamResponse:
    total = await download.wait_for_total()
    if download.error is not None:
        raise download.error
    response = web.StreamResponse(headers=_live_headers())
    response.headers[CACHE_OUTCOME] = CacheOutcome.MISS
    if total is not None:
        response.content_length = total
    return response


async def _stream(
    request: web.Request, services: Services, download: Download
) -> web.StreamResponse:
    # Until upstream answers nothing is sent, so a failure is still a clean error status.
    await download.wait_until_started()
    response = web.StreamResponse(headers=_live_headers())
    response.headers[CACHE_OUTCOME] = CacheOutcome.MISS
    if download.total is not None:
        response.content_length = download.total
    await response.prepare(request)
    # With a Content-Length (no chunked framing) bytes already on disk go out by sendfile.
    spans = response.content_length is not None
    async with contextlib.aclosing(services.files.stream(download, spans=spans)) as chunks:
        try:
            async for chunk in chunks:
                if isinstance(chunk, Span):
                    await send_file_part(request, chunk.handle, chunk.offset, chunk.count)
                else:
                    await response.write(chunk)
        except ConnectionResetError:
            return response  # the client went away; the download goes on for the others
        except BodegaError as error:
            # The download failed after the headers went out: drop the connection so the
            # client can never take what it got for a complete file.
            log.warning("aborting %s: %s", request.path, error)
            if request.transport is not None:
                request.transport.abort()
            return response
    await response.write_eof()
    return response


def _live_headers() -> dict[str, str]:
    return {
        "Cache-Control": FILE_CACHE_CONTROL,
        "Content-Type": _OCTET_STREAM,
        "Accept-Ranges": "bytes",
    }
