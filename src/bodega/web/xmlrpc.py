"""XML-RPC `search`, the call `pip search` still makes.

Always HTTP 200: pip answers any other status with a bare AssertionError (conformance 6),
so everything bodega cannot answer is an XML-RPC fault, as on the public index (-32500).
The body is capped before parsing and parsed without DTDs (threat 44).
"""

import logging

from aiohttp import web
from packaging.version import InvalidVersion, Version

from bodega.core.search import QueryError, parse_query
from bodega.core.xmlrpc import (
    APPLICATION_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    CallError,
    parse_call,
    render_fault,
    render_result,
)
from bodega.errors import BodegaError
from bodega.proxy.indexes import Indexes
from bodega.web.routing import Match

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024  # a search call is a few hundred bytes
# pip groups hits by name and picks the highest version, which must parse (PEP 440): a
# project known only by name (until its details are filled in) gets a local version that
# says so.
UNKNOWN_VERSION = "0+unknown"


class XmlRpc:
    def __init__(self, indexes: Indexes) -> None:
        self._indexes = indexes

    async def endpoint(self, request: web.Request, match: Match) -> web.StreamResponse:
        if request.method != "POST":
            raise web.HTTPMethodNotAllowed(request.method, ["POST"])
        try:
            body = await _read_capped(request)
        except CallError as error:
            return await _answer_and_hang_up(request, render_fault(error.code, str(error)))
        try:
            call = parse_call(body)
            if call.method != "search":
                raise CallError(
                    METHOD_NOT_FOUND, f"bodega answers only 'search', not {call.method!r}"
                )
            try:
                query = parse_query(call.params)
            except QueryError as error:
                raise CallError(INVALID_PARAMS, str(error)) from None
            hits = await self._indexes.search(match.index, query)
        except CallError as error:
            return _xml(render_fault(error.code, str(error)))
        except BodegaError as error:
            log.warning("XML-RPC search failed: %s", error)
            return _xml(render_fault(APPLICATION_ERROR, f"search failed: {error}"))
        results = [
            {"name": h.name, "summary": h.summary, "version": _version(h.version)} for h in hits
        ]
        return _xml(render_result(results))


def _version(version: str | None) -> str:
    # A release spelled outside PEP 440 (2004d) is still a project's latest; pip cannot parse it.
    try:
        return str(Version(version)) if version is not None else UNKNOWN_VERSION
    except InvalidVersion:
        return UNKNOWN_VERSION


async def _read_capped(request: web.Request) -> bytes:
    # Content-Length may lie or be absent (chunked): count what is read, stop past the cap.
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise CallError(INVALID_REQUEST, f"request body over {MAX_BODY_BYTES} bytes")
    body = bytearray()
    while chunk := await request.content.read(MAX_BODY_BYTES + 1 - len(body)):
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise CallError(INVALID_REQUEST, f"request body over {MAX_BODY_BYTES} bytes")
    return bytes(body)


async def _answer_and_hang_up(request: web.Request, body: bytes) -> web.StreamResponse:
    # aiohttp would otherwise read and discard the rest of the body for up to 10 s
    # ("lingering close"): a 50 MB body is cut off at the cap instead.
    response = _xml(body)
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()
    return response


def _xml(body: bytes) -> web.Response:
    return web.Response(
        body=body,
        content_type="text/xml",
        charset="utf-8",
        headers={"Cache-Control": "no-store"},
    )
