"""Distribution files and their core metadata (PEP 658): from the cache with sendfile, or
streamed to the client while the first download fills the cache."""

import contextlib
import logging

from aiohttp import web

from bodega.core.names import normalize_project_name, validate_filename
from bodega.errors import BodegaError
from bodega.proxy.file_requests import Elsewhere, FileAsk, FileRequests, FromCache, InMemory
from bodega.proxy.files import Download, Span
from bodega.proxy.telemetry import CacheOutcome
from bodega.web.cached_file import CachedResponse, SmallFileResponse
from bodega.web.headers import CACHE_OUTCOME, FILE_CACHE_CONTROL
from bodega.web.routing import Match
from bodega.web.sendfile import send_file_part

log = logging.getLogger(__name__)

_OCTET_STREAM = "application/octet-stream"
# Requests only CachedResponse answers (206, 304, 412): they are served from the blob store.
_CONDITIONS = (
    "Range",
    "If-Range",
    "If-Match",
    "If-None-Match",
    "If-Modified-Since",
    "If-Unmodified-Since",
)


class FileEndpoint:
    def __init__(self, requests: FileRequests) -> None:
        self._requests = requests

    async def distribution_file(self, request: web.Request, match: Match) -> web.StreamResponse:
        project = normalize_project_name(match.project)
        filename = validate_filename(match.filename)
        if project != match.project:
            raise web.HTTPMovedPermanently(f"{match.prefix}{project}/{filename}")
        is_get = request.method == "GET"
        ask = FileAsk(
            match.index,
            project,
            filename,
            is_get=is_get,
            is_whole=not any(h in request.headers for h in _CONDITIONS),
            is_ranged="Range" in request.headers,
        )
        answer = await self._requests.get(ask)
        if isinstance(answer, InMemory):
            return SmallFileResponse(answer.data, answer.key, answer.telemetry)
        if isinstance(answer, FromCache):
            return CachedResponse(answer.cached, answer.telemetry, answer.outcome)
        if isinstance(answer, Elsewhere):
            # The URL expires: no cache may keep this redirect past it (the file's own
            # immutable Cache-Control would say a year).
            headers = {"Cache-Control": "no-store", CACHE_OUTCOME: CacheOutcome.HIT}
            raise web.HTTPFound(answer.url, headers=headers)
        if not is_get:
            return await self._head(answer.download)
        return await self._stream(request, answer.download)

    @staticmethod
    async def _head(download: Download) -> web.StreamResponse:
        total = await download.wait_for_total()
        if download.error is not None:
            raise download.error
        response = web.StreamResponse(headers=_live_headers())
        response.headers[CACHE_OUTCOME] = CacheOutcome.MISS
        if total is not None:
            response.content_length = total
        return response

    async def _stream(self, request: web.Request, download: Download) -> web.StreamResponse:
        # Until upstream answers nothing is sent, so a failure is still a clean error status.
        await download.wait_until_started()
        response = web.StreamResponse(headers=_live_headers())
        response.headers[CACHE_OUTCOME] = CacheOutcome.MISS
        if download.total is not None:
            response.content_length = download.total
        await response.prepare(request)
        # With a Content-Length (no chunked framing) bytes already on disk go out by sendfile.
        spans = response.content_length is not None
        async with contextlib.aclosing(self._requests.stream(download, spans=spans)) as chunks:
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
