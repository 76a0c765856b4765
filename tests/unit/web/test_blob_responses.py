"""A cached file and a root list rendering from a blob store without local files (the
in-memory fake): streamed from read() with the answers sendfile gives from a file (ranges,
conditional requests), instead of a second download or a 503."""

import hashlib
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bodega.errors import StorageError
from bodega.proxy.files import CachedFile
from bodega.proxy.telemetry import CacheOutcome, Telemetry
from bodega.storage.blobs import store_bytes
from bodega.storage.memory_blobs import MemoryBlobStore
from bodega.web.cached_file import CachedResponse
from bodega.web.simple import _StreamedRendering

DATA = bytes(range(256)) * 1_000  # several of the fake's 64 KiB chunks
KEY = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
async def server() -> AsyncIterator[httpx.AsyncClient]:
    blobs = MemoryBlobStore()
    await store_bytes(blobs, KEY, DATA)
    telemetry = Telemetry().index("root/pypi")

    async def cached_file(request: web.Request) -> web.StreamResponse:
        cached = CachedFile(blobs, KEY, None, len(DATA))
        return CachedResponse(cached, telemetry, CacheOutcome.HIT)

    async def rendering(request: web.Request) -> web.StreamResponse:
        stored = CachedFile(blobs, KEY, None, len(DATA))
        return _StreamedRendering(stored, f'"{KEY[:32]}"', {"Content-Type": "text/html"})

    async def verified_bytes(request: web.Request) -> web.StreamResponse:
        # A verified download whose commit is under way: answered from memory.
        cached = CachedFile.verified_bytes(KEY, DATA)
        return CachedResponse(cached, telemetry, CacheOutcome.MISS)

    app = web.Application()
    app.router.add_get("/file", cached_file)
    app.router.add_get("/memory", verified_bytes)
    app.router.add_get("/root", rendering)
    async with TestServer(app, host="127.0.0.1") as test_server:
        base = str(test_server.make_url("/"))
        async with httpx.AsyncClient(base_url=base, trust_env=False) as client:
            yield client


@pytest.mark.parametrize("path", ["/file", "/memory"])
async def test_a_cached_file_streams_whole_under_its_hash(
    server: httpx.AsyncClient, path: str
) -> None:
    response = await server.get(path)
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["ETag"] == f'"{KEY}"'
    assert "Last-Modified" not in response.headers  # a store without files has no date


@pytest.mark.parametrize("path", ["/file", "/memory"])
async def test_a_range_of_a_cached_file_streams_that_range(
    server: httpx.AsyncClient, path: str
) -> None:
    response = await server.get(path, headers={"Range": "bytes=70000-140000"})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes 70000-140000/{len(DATA)}"
    assert response.content == DATA[70_000:140_001]


async def test_conditional_requests_on_a_streamed_file(server: httpx.AsyncClient) -> None:
    unchanged = await server.get("/file", headers={"If-None-Match": f'"{KEY}"'})
    assert unchanged.status_code == 304
    other = await server.get("/file", headers={"If-Match": '"other"'})
    assert other.status_code == 412
    # No modification date to compare with: the date conditions are ignored (RFC 9110 13.1.3).
    dated = await server.get(
        "/file", headers={"If-Modified-Since": "Fri, 04 Dec 2026 00:00:00 GMT"}
    )
    assert dated.status_code == 200
    assert dated.content == DATA


@pytest.mark.parametrize("path", ["/file", "/memory"])
async def test_a_head_of_a_streamed_file_sends_its_length_only(
    server: httpx.AsyncClient, path: str
) -> None:
    response = await server.head(path)
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(DATA))
    assert response.content == b""


async def test_a_root_rendering_streams_whole(server: httpx.AsyncClient) -> None:
    response = await server.get("/root", headers={"Range": "bytes=0-9"})
    assert response.status_code == 200  # Range ignored, as a server may
    assert response.headers["Accept-Ranges"] == "none"
    assert response.headers["ETag"] == f'"{KEY[:32]}"'
    assert response.content == DATA
    head = await server.head("/root")
    assert head.headers["Content-Length"] == str(len(DATA))


class _FailingStore(MemoryBlobStore):
    """A store whose reads fail at once, as an object store does when it is down."""

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        raise StorageError("the object store is unreachable")
        yield b""  # an async generator, as the real stores' read is


async def test_a_store_that_fails_before_the_first_byte_answers_503_with_the_reason() -> None:
    blobs = _FailingStore()
    await store_bytes(blobs, KEY, DATA)
    telemetry = Telemetry().index("root/pypi")

    async def cached_file(request: web.Request) -> web.StreamResponse:
        return CachedResponse(CachedFile(blobs, KEY, None, len(DATA)), telemetry, CacheOutcome.HIT)

    app = web.Application()
    app.router.add_get("/file", cached_file)
    async with (
        TestServer(app, host="127.0.0.1") as test_server,
        httpx.AsyncClient(trust_env=False) as client,
    ):
        response = await client.get(str(test_server.make_url("/file")))
    assert response.status_code == 503
    assert "the object store is unreachable" in response.text
    assert "ETag" not in response.headers  # no validator for bytes that were never sent
    assert response.headers["Cache-Control"] == "no-store"
