"""The root list (/simple/) as clients see it: validators, ranges, conditional requests,
and its gzip variant (issue 6), served once the background compression has made it."""

import asyncio
import gzip
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bodega.services import Services
from tests.conftest import StartBodega, needs_file_blobs
from tests.integration.test_cache_cli import cache
from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.servers import bodega_and_services, make_settings

JSON = "application/vnd.pypi.simple.v1+json"
IDENTITY = {"Accept-Encoding": "identity"}
GZIP = {"Accept-Encoding": "gzip"}


@pytest.fixture
def index(fake_index: FakeIndex) -> FakeIndex:
    for name in ("alpha", "beta", "gamma"):
        fake_index.add(name, build_wheel(name, "1.0"))
    return fake_index


def tag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@pytest.mark.parametrize("accept", ["text/html", JSON])
async def test_the_etag_is_the_renderings_hash_and_answers_304(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient, accept: str
) -> None:
    url = f"{await start_bodega()}simple/"
    first = await client.get(url, headers={**IDENTITY, "Accept": accept})
    assert first.headers["ETag"] == tag_of(first.content)
    again = await client.get(
        url, headers={**IDENTITY, "Accept": accept, "If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 304
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Vary"] == "Accept, Accept-Encoding"
    assert "max-age=" in again.headers["Cache-Control"]


@needs_file_blobs
async def test_if_range_sends_a_slice_only_of_the_rendering_it_names(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    url = f"{await start_bodega()}simple/"
    whole = await client.get(url, headers=IDENTITY)
    etag = whole.headers["ETag"]
    same = await client.get(url, headers={**IDENTITY, "Range": "bytes=10-19", "If-Range": etag})
    assert same.status_code == 206
    assert same.content == whole.content[10:20]
    assert same.headers["Content-Range"] == f"bytes 10-19/{len(whole.content)}"
    # A slice of another rendering would corrupt what the client resumes: all of this one.
    other = await client.get(
        url, headers={**IDENTITY, "Range": "bytes=10-19", "If-Range": '"0123456789abcdef"'}
    )
    assert other.status_code == 200
    assert other.content == whole.content
    assert other.headers["ETag"] == etag


async def test_if_match_is_judged_against_the_renderings_etag(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    url = f"{await start_bodega()}simple/"
    etag = (await client.get(url, headers=IDENTITY)).headers["ETag"]
    assert (await client.get(url, headers={**IDENTITY, "If-Match": etag})).status_code == 200
    stale = await client.get(url, headers={**IDENTITY, "If-Match": '"0123456789abcdef"'})
    assert stale.status_code == 412


async def get_raw(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], method: str = "GET"
) -> tuple[httpx.Response, bytes]:
    """The response and its body as sent, never decoded (httpx would gunzip it). Only the
    Accept-Encoding in `headers` is sent: none if none is there (httpx adds its own)."""
    request = client.build_request(method, url, headers=headers)
    if "Accept-Encoding" not in headers:
        del request.headers["Accept-Encoding"]
    response = await client.send(request, stream=True)
    try:
        return response, b"".join([chunk async for chunk in response.aiter_raw()])
    finally:
        await response.aclose()


@pytest.fixture
async def bodega(
    index: FakeIndex, tmp_path: Path, database_url: str
) -> AsyncIterator[tuple[str, Services, asyncio.Event]]:
    """bodega with its root-list compression held until the event is set."""
    settings = make_settings(
        data_dir=tmp_path / "data", upstream=index.simple_url, database=database_url
    )
    async with bodega_and_services(settings) as (url, services):
        release = asyncio.Event()
        services.indexes.mirror("root/pypi").root.before_compressing = release.wait
        yield f"{url}simple/", services, release


@pytest.mark.parametrize("accept", ["text/html", JSON])
async def test_both_formats_come_gzipped_once_compressed_and_as_they_are_before(
    bodega: tuple[str, Services, asyncio.Event], client: httpx.AsyncClient, accept: str
) -> None:
    url, services, release = bodega
    asked = {"Accept": accept, **GZIP}
    while_compressing = [await get_raw(client, url, asked) for _ in range(2)]
    identity, body = await get_raw(client, url, {"Accept": accept, **IDENTITY})
    for response, raw in while_compressing:
        assert "Content-Encoding" not in response.headers
        assert raw == body
        assert response.headers["ETag"] == tag_of(body)

    release.set()
    await services.indexes.mirror("root/pypi").root.compressed()
    gzipped, raw = await get_raw(client, url, asked)
    assert gzipped.headers["Content-Encoding"] == "gzip"
    assert gzipped.headers["Content-Type"] == identity.headers["Content-Type"]
    assert gzipped.headers["Vary"] == "Accept, Accept-Encoding"
    assert int(gzipped.headers["Content-Length"]) == len(raw) < len(body)
    assert gzip.decompress(raw) == body
    assert gzipped.headers["ETag"] == tag_of(raw) != identity.headers["ETag"]
    # No Accept-Encoding: the rendering as it is, as before.
    plain, again = await get_raw(client, url, {"Accept": accept})
    assert "Content-Encoding" not in plain.headers
    assert again == body
    head, empty = await get_raw(client, url, asked, method="HEAD")
    assert head.headers["Content-Encoding"] == "gzip"
    assert head.headers["Content-Length"] == str(len(raw))
    assert empty == b""


async def test_each_variant_answers_304_with_its_own_etag(
    bodega: tuple[str, Services, asyncio.Event], client: httpx.AsyncClient
) -> None:
    url, services, release = bodega
    identity_etag = (await client.get(url, headers=GZIP)).headers["ETag"]
    release.set()
    await services.indexes.mirror("root/pypi").root.compressed()
    gzip_etag = (await client.get(url, headers=GZIP)).headers["ETag"]
    assert gzip_etag != identity_etag
    for etag, headers in [(gzip_etag, GZIP), (identity_etag, IDENTITY), (identity_etag, GZIP)]:
        # The last: a client that got the list before its copy was made keeps it.
        again = await client.get(url, headers={**headers, "If-None-Match": etag})
        assert again.status_code == 304
        assert again.headers["ETag"] == etag
        assert "Content-Encoding" not in again.headers
    # A gzip tag is no validator for a client that takes no gzip: it gets the rendering.
    plain = await client.get(url, headers={**IDENTITY, "If-None-Match": gzip_etag})
    assert plain.status_code == 200
    assert plain.headers["ETag"] == identity_etag


async def test_a_range_of_the_gzip_variant_is_a_slice_of_the_compressed_bytes(
    bodega: tuple[str, Services, asyncio.Event], client: httpx.AsyncClient
) -> None:
    url, services, release = bodega
    identity_etag = (await client.get(url, headers=IDENTITY)).headers["ETag"]
    release.set()
    await services.indexes.mirror("root/pypi").root.compressed()
    whole, raw = await get_raw(client, url, GZIP)
    etag = whole.headers["ETag"]
    part, sliced = await get_raw(client, url, {**GZIP, "Range": "bytes=0-99", "If-Range": etag})
    assert part.status_code == 206
    assert part.headers["Content-Encoding"] == "gzip"
    assert part.headers["Content-Range"] == f"bytes 0-99/{len(raw)}"
    assert sliced == raw[:100]
    rest, tail = await get_raw(client, url, {**GZIP, "Range": "bytes=100-"})
    assert rest.status_code == 206
    assert gzip.decompress(sliced + tail) == gzip.decompress(raw)
    # Resuming the other variant: its bytes are not these, so all of these.
    other, full = await get_raw(
        client, url, {**GZIP, "Range": "bytes=100-", "If-Range": identity_etag}
    )
    assert other.status_code == 200
    assert full == raw


async def test_the_gzip_copies_survive_a_restart_and_cache_verify_finds_them_sound(
    index: FakeIndex, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    settings = make_settings(data_dir=tmp_path / "data", upstream=index.simple_url)
    async with bodega_and_services(settings) as (url, services):
        body = (await client.get(f"{url}simple/", headers=IDENTITY)).content
        await services.indexes.mirror("root/pypi").root.compressed()
    async with bodega_and_services(settings) as (url, services):
        response, raw = await get_raw(client, f"{url}simple/", GZIP)
        assert response.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(raw) == body
    assert index.count("GET", "/simple/") == 1
    code, out, _ = cache(tmp_path / "data", "verify")
    assert (code, out) == (
        0,
        "checked 0 files and 4 renderings of the root list:"
        " 0 quarantined, 0 missing, 0 adopted, 0 unknown\n",
    )
