"""Connections: aiohttp's request handler, with what it lacks in front of untrusted clients.

- A header-read timeout (slow loris): a request's header must arrive complete within
  `header_timeout` seconds of the connection opening or of its first byte, or the
  connection is closed. aiohttp has only its keep-alive timeout (an hour by default; 75 s
  here, for idle connections between requests), and trickled bytes do not reset it.
- A request its parser refuses is one log line, not an ERROR with a traceback, and a short
  fixed answer that never echoes the request: 431 (RFC 6585) for a header field over 8 KiB
  or too many fields, 414 for a request line over 8 KiB, 400 for the rest.

aiohttp has no parameter for the handler class, so the runner builds its server with one;
the overrides are few and tested (tests/hardening/test_client_inputs.py, test_resources.py).
"""

import asyncio
import logging
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger(__name__)

# A request line over this is 414, a header field over _MAX_FIELD 431. Different sizes, so
# the parser's LineTooLong, which carries the limit it passed, tells the two apart.
_MAX_LINE = 8190  # aiohttp's default
_MAX_FIELD = 8 * 1024
_MAX_HEADERS = 128  # aiohttp's default; one more is 431 too
# An idle kept-alive connection is closed after this (aiohttp's default is an hour, so
# idle connections could pile up); nginx's default, far longer than an install's pauses.
_KEEPALIVE = 75.0


class Runner(web.AppRunner):
    """An AppRunner whose connections are bodega's `Connection`."""

    def __init__(self, app: web.Application, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(
            app,
            max_line_size=_MAX_LINE,
            max_field_size=_MAX_FIELD,
            max_headers=_MAX_HEADERS,
            keepalive_timeout=_KEEPALIVE,
            **kwargs,
        )
        self._header_timeout = header_timeout

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()  # starts the app, as aiohttp does
        return _Server(made, self._header_timeout)


class _Server(web.Server):
    def __init__(self, made: web.Server, header_timeout: float) -> None:
        super().__init__(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            **made._kwargs,
        )
        self._header_timeout = header_timeout

    def __call__(self) -> RequestHandler:
        return Connection(self, self._header_timeout, loop=self._loop, **self._kwargs)


class Connection(RequestHandler):
    def __init__(self, manager: web.Server, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = header_timeout
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._start_header_clock()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_header_clock()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._messages:  # a whole header arrived (and waits for its handler)
            self._stop_header_clock()
        elif data and not self._request_in_progress:
            self._start_header_clock()  # the first bytes of the next request's header

    def _start_header_clock(self) -> None:
        if self._header_deadline is None and self._header_timeout > 0:
            self._header_deadline = self._loop.call_later(
                self._header_timeout, self._header_too_slow
            )

    def _stop_header_clock(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _header_too_slow(self) -> None:
        self._header_deadline = None
        if self._messages or self._request_in_progress or self.transport is None:
            return  # a request is being answered: its body is not the header's business
        log.info(
            "closed a connection from %s: no complete request header within %g s",
            _peer(self.transport),
            self._header_timeout,
        )
        self.transport.abort()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)  # a handler's bug
        status, reason = _refusal(exc)
        log.info("refused a request from %s: %d, %s", request.remote, status, reason)
        phrase = HTTPStatus(status).phrase
        response = web.Response(
            status=status, text=f"{phrase}\n", headers={"Cache-Control": "no-store"}
        )
        response.force_close()
        return response


def _refusal(error: HttpProcessingError) -> tuple[int, str]:
    """The status for what the parser refused, and why in words (never the client's bytes)."""
    if isinstance(error, LineTooLong):
        limit = error.args[1] if len(error.args) > 1 else None
        if limit == _MAX_FIELD:
            return HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, f"a header field over {limit} bytes"
        if limit == _MAX_LINE:
            return HTTPStatus.REQUEST_URI_TOO_LONG, f"a request line over {limit} bytes"
    if isinstance(error, BadHttpMessage) and "too many headers" in str(error).lower():
        return HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, f"over {_MAX_HEADERS} header fields"
    return HTTPStatus.BAD_REQUEST, f"malformed ({type(error).__name__})"


def _peer(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else "?"
