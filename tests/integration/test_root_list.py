"""The root list (/simple/) as clients see it: validators, ranges and conditional requests."""

import hashlib

import httpx
import pytest

from tests.conftest import StartBodega
from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex

JSON = "application/vnd.pypi.simple.v1+json"
IDENTITY = {"Accept-Encoding": "identity"}


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
