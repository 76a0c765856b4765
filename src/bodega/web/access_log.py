"""The access log: one line per request, ending with the cache outcome the handler set (HIT,
MISS, STALE, REVALIDATED; "-" for requests that are no cache lookup).

    127.0.0.1 "GET /simple/demo/ HTTP/1.1" 200 2478 0.000669s HIT

Formatted directly: aiohttp's generic format interpreter cost a quarter of the CPU of
serving a cached page.
"""

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from bodega.web.headers import CACHE_OUTCOME


class AccessLogger(AbstractAccessLogger):
    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        version = request.version
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %d %.6fs %s',
            request.remote,
            request.method,
            request.path_qs,
            version.major,
            version.minor,
            response.status,
            response.body_length,
            time,
            response.headers.get(CACHE_OUTCOME, "-"),
        )
