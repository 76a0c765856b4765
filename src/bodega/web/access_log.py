"""The access log: one line per request, ending with the cache outcome the handler set (HIT,
MISS, STALE, REVALIDATED; "-" for requests that are no cache lookup).

    127.0.0.1 "GET /simple/demo/ HTTP/1.1" 200 2478 0.000669s HIT

The byte count is what went out on the connection, headers and body, including what the
kernel sent by sendfile (aiohttp counts only what passed through its own writer). A response
cut before it ended (bodega stopping, the client hanging up) gets a line too, with what was
sent until then and `cut` at the end; its status is "-" when not even the headers went out.

Formatted directly: aiohttp's generic format interpreter cost a quarter of the CPU of
serving a cached page. Under `bodega serve`'s own logging the line also skips the LogRecord
and handler chain (logs.direct_writer), which cost half of what was left of the access log.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from bodega import logs
from bodega.web.headers import CACHE_OUTCOME

_access_log = logging.getLogger("aiohttp.access")  # where aiohttp writes its own lines

_STARTED = web.RequestKey("access_log_started", float)
_RESPONSE = web.RequestKey("access_log_response", web.StreamResponse)
_SENT_BY_SENDFILE = web.RequestKey("access_log_sent_by_sendfile", int)


_LINE = '%s "%s %s HTTP/%d.%d" %d %d %.6fs %s'


class AccessLogger(AbstractAccessLogger):
    """aiohttp makes one per connection."""

    def __init__(self, logger: logging.Logger, log_format: str) -> None:
        super().__init__(logger, log_format)
        self._write = logs.direct_writer(logger)  # under `bodega serve`'s own logging

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        version = request.version
        fields = (
            request.remote,
            request.method,
            request.path_qs,
            version.major,
            version.minor,
            response.status,
            bytes_sent(request),
            time,
            response.headers.get(CACHE_OUTCOME, "-"),
        )
        if self._write is not None:
            self._write(_LINE % fields)
        else:
            self.logger.info(_LINE, *fields)


def count_sendfile(request: BaseRequest, sent: int) -> None:
    """Add bytes the kernel sent for this request, past aiohttp's writer."""
    request[_SENT_BY_SENDFILE] = request.get(_SENT_BY_SENDFILE, 0) + sent


def bytes_sent(request: BaseRequest) -> int:
    written: int = request.writer.output_size  # headers and body through aiohttp's writer
    by_sendfile: int = request.get(_SENT_BY_SENDFILE, 0)
    return written + by_sendfile


async def note_response(request: BaseRequest, response: StreamResponse) -> None:
    """An on_response_prepare hook: the status a cut response had already sent."""
    request[_RESPONSE] = response


def log_cut(request: BaseRequest) -> None:
    """The line of a request whose response was cut (its handler cancelled): aiohttp
    writes none for those."""
    response = request.get(_RESPONSE)
    started = request.get(_STARTED)
    elapsed = asyncio.get_running_loop().time() - started if started is not None else 0.0
    version = request.version
    _access_log.info(
        '%s "%s %s HTTP/%d.%d" %s %d %.6fs %s cut',
        request.remote,
        request.method,
        request.path_qs,
        version.major,
        version.minor,
        response.status if response is not None else "-",
        bytes_sent(request),
        elapsed,
        response.headers.get(CACHE_OUTCOME, "-") if response is not None else "-",
    )


@web.middleware
async def log_cut_responses(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    request[_STARTED] = asyncio.get_running_loop().time()
    try:
        return await handler(request)
    except asyncio.CancelledError:
        log_cut(request)
        raise
