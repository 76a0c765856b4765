"""The Upstream port's contract: HttpUpstream against a real fake index on loopback, and
OfflineUpstream wherever the contract applies to an upstream that contacts nothing."""

import hashlib
from collections.abc import AsyncIterator

import pytest

from bodega.errors import NotFound, UpstreamError
from bodega.upstream import Upstream, UpstreamRange
from bodega.upstream.http import HttpUpstream
from bodega.upstream.offline import OfflineUpstream
from tests.support.distributions import BuiltFile, build_wheel
from tests.support.fake_index import FakeIndex

KINDS = ["http", "offline"]


@pytest.fixture
def wheel(fake_index: FakeIndex) -> BuiltFile:
    built = build_wheel("demo", "1.0")
    fake_index.add("demo", built)
    return built


async def open_upstream(kind: str, url: str) -> Upstream:
    if kind == "http":
        return await HttpUpstream.open(url, 5.0, "contract-test")
    return OfflineUpstream(url)


@pytest.fixture(params=KINDS)
async def upstream(
    request: pytest.FixtureRequest, fake_index: FakeIndex
) -> AsyncIterator[Upstream]:
    opened = await open_upstream(request.param, fake_index.simple_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def http(fake_index: FakeIndex) -> AsyncIterator[Upstream]:
    opened = await open_upstream("http", fake_index.simple_url)
    try:
        yield opened
    finally:
        await opened.close()


async def read_all(upstream: Upstream, url: str) -> bytes:
    async with upstream.open_file(url) as remote:
        return b"".join([chunk async for chunk in remote.chunks()])


# ------------------------------------------------------------------- every implementation


async def test_a_project_upstream_does_not_have_is_not_found(upstream: Upstream) -> None:
    with pytest.raises(NotFound):
        await upstream.fetch_project_page("no-such-project")


@pytest.mark.parametrize("kind", KINDS)
async def test_the_description_names_the_upstream_without_its_credentials(
    kind: str, fake_index: FakeIndex
) -> None:
    url = fake_index.simple_url.replace("http://", "http://reader:s3cret@")
    opened = await open_upstream(kind, url)
    try:
        assert opened.description == fake_index.simple_url
        assert "s3cret" not in opened.description
    finally:
        await opened.close()


async def test_the_probe_passes_when_upstream_is_there_or_none_is_needed(
    upstream: Upstream,
) -> None:
    await upstream.probe(5.0)


async def test_closing_twice_is_harmless(upstream: Upstream) -> None:
    await upstream.close()
    await upstream.close()


# ------------------------------------------------------------------------------ HttpUpstream


async def test_http_upstream_is_online(http: Upstream) -> None:
    assert http.is_offline is False


async def test_a_page_comes_with_its_validators_and_a_304_when_they_match(
    http: Upstream, wheel: BuiltFile
) -> None:
    page = await http.fetch_project_page("demo")
    assert page.status == 200
    assert wheel.filename.encode() in page.body
    assert page.etag is not None
    again = await http.fetch_project_page("demo", etag=page.etag)
    assert (again.status, again.body) == (304, b"")


async def test_the_root_list_streams_every_name(http: Upstream, fake_index: FakeIndex) -> None:
    fake_index.list_names(["alpha", "beta"])
    async with http.open_root() as listing:
        body = b"".join([chunk async for chunk in listing.chunks()])
    assert listing.url == fake_index.simple_url
    assert b"alpha" in body
    assert b"beta" in body


async def test_a_file_streams_as_published(
    http: Upstream, fake_index: FakeIndex, wheel: BuiltFile
) -> None:
    url = fake_index.file_url(wheel.filename)
    async with http.open_file(url) as remote:
        assert remote.content_length == wheel.size
        data = b"".join([chunk async for chunk in remote.chunks()])
    assert hashlib.sha256(data).hexdigest() == wheel.sha256


async def test_ranges_of_a_file_come_as_asked(
    http: Upstream, fake_index: FakeIndex, wheel: BuiltFile
) -> None:
    url = fake_index.file_url(wheel.filename)
    assert http.serves_ranges(url)
    async with http.open_range(url, None, 10) as tail:
        assert tail == UpstreamRange(wheel.data[-10:], wheel.size - 10, wheel.size)
    found = await http.fetch_range(url, 2, 5)
    assert found == UpstreamRange(wheel.data[2:6], 2, wheel.size)


async def test_a_host_that_ignores_ranges_sends_the_file_and_is_remembered(
    http: Upstream, fake_index: FakeIndex, wheel: BuiltFile
) -> None:
    fake_index.serves_ranges = False
    url = fake_index.file_url(wheel.filename)
    async with http.open_range(url, None, 10) as answer:
        assert not isinstance(answer, UpstreamRange)
        assert b"".join([chunk async for chunk in answer.chunks()]) == wheel.data
    assert not http.serves_ranges(url)
    with pytest.raises(UpstreamError):
        await http.fetch_range(url, 0, 9)


async def test_an_upstream_that_is_down_fails_the_probe(fake_index: FakeIndex) -> None:
    opened = await open_upstream("http", fake_index.simple_url)
    try:
        fake_index.set_down(True)
        with pytest.raises(UpstreamError):
            await opened.probe(5.0)
    finally:
        await opened.close()


# --------------------------------------------------------------------------- OfflineUpstream


async def test_offline_every_fetch_is_not_found_and_nothing_is_contacted(
    fake_index: FakeIndex, wheel: BuiltFile
) -> None:
    offline = OfflineUpstream(fake_index.simple_url)
    url = fake_index.file_url(wheel.filename)
    assert offline.is_offline is True
    assert not offline.serves_ranges(url)
    with pytest.raises(NotFound, match="demo is not cached and bodega is offline"):
        await offline.fetch_project_page("demo")
    with pytest.raises(NotFound, match="the root list is not cached and bodega is offline"):
        async with offline.open_root():
            pass
    with pytest.raises(NotFound, match="file not cached and bodega is offline"):
        await read_all(offline, url)
    with pytest.raises(NotFound, match="bodega is offline"):
        async with offline.open_range(url, None, 10):
            pass
    with pytest.raises(NotFound, match="bodega is offline"):
        await offline.fetch_range(url, 0, 9)
    assert fake_index.requests == []
