"""Files: streamed while cached, verified before visible, one upstream download per file."""

import asyncio
import hashlib
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from bodega.storage import sqlite as sqlite_store
from tests.conftest import StartBodega, needs_file_blobs
from tests.support.distributions import BuiltFile, build_sdist, build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.waiting import eventually

WHEEL = build_wheel("demo", "1.0", payload_size=200_000)


@pytest.fixture
def index(fake_index: FakeIndex) -> FakeIndex:
    fake_index.add("demo", WHEEL)
    return fake_index


def file_url(bodega: str, file: BuiltFile = WHEEL, project: str = "demo") -> str:
    return f"{bodega}files/{project}/{file.filename}"


def stored_blobs(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "blobs").rglob("*") if p.is_file()]


async def expect_broken_response(url: str) -> None:
    """A 502 when the failure is known before the headers go out; after that, a dropped
    connection: never a complete 200."""
    # A client of its own: a connection the server dropped must not be pooled for the next.
    async with httpx.AsyncClient(trust_env=False) as own:
        try:
            response = await own.get(url)
        except httpx.RemoteProtocolError:
            return
    assert response.status_code == 502


@needs_file_blobs
async def test_first_request_streams_and_caches_the_verified_file(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    bodega = await start_bodega()
    response = await client.get(file_url(bodega))
    assert response.status_code == 200
    assert response.content == WHEEL.data
    assert response.headers["Content-Length"] == str(len(WHEEL.data))
    # The last byte goes out once verified; the commit follows, and a request now waits
    # for it rather than fetch again.
    again = await client.get(file_url(bodega))
    assert again.content == WHEEL.data
    assert again.headers["X-Bodega-Cache"] == "HIT"
    assert [p.name for p in stored_blobs(tmp_path / "data")] == [WHEEL.sha256]
    assert index.count("GET", WHEEL.filename) == 1


async def test_client_receives_bytes_before_upstream_finishes(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    """No redirect to upstream and no wait for the whole file: the client holds the first
    bytes while upstream is still paused in the middle of the body."""
    half = len(WHEEL.data) // 2
    index.pause(WHEEL.filename, after_bytes=half)
    bodega = await start_bodega()
    async with client.stream("GET", file_url(bodega)) as response:
        assert response.status_code == 200
        chunks = response.aiter_raw()
        first = await anext(chunks)
        assert first
        assert WHEEL.data.startswith(first)
        assert len(first) <= half
        index.reset_faults()  # only now does upstream send the second half
        rest = b"".join([chunk async for chunk in chunks])
    assert first + rest == WHEEL.data


@pytest.mark.parametrize(
    "fault",
    ["corrupt", "truncate-with-length", "truncate-without-length"],
)
async def test_a_bad_download_is_never_cached_nor_a_clean_response(
    index: FakeIndex,
    start_bodega: StartBodega,
    client: httpx.AsyncClient,
    tmp_path: Path,
    fault: str,
) -> None:
    """Threats 14 and 15: a hash mismatch or a short body, with or without Content-Length."""
    if fault == "corrupt":
        index.corrupt(WHEEL.filename)
    else:
        index.truncate(WHEEL.filename, with_content_length=fault == "truncate-with-length")
    bodega = await start_bodega()
    await expect_broken_response(file_url(bodega))
    # The download is fetched a second time (issue 17) before it fails for good.
    await eventually(lambda: metric(client, bodega, "bodega_downloads_in_flight"), lambda n: n == 0)
    assert stored_blobs(tmp_path / "data") == []
    if fault != "truncate-with-length":  # that one is a broken transfer, not bad bytes
        assert index.count("GET", WHEEL.filename) == 2
        assert await metric(client, bodega, "bodega_integrity_failures_total") == 2
    index.reset_faults()
    healed = await client.get(file_url(bodega))
    assert healed.content == WHEEL.data


async def metric(client: httpx.AsyncClient, bodega: str, name: str) -> float:
    text = (await client.get(f"{bodega}-/metrics")).text
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


async def test_a_download_that_fails_verification_is_fetched_once_more(
    index: FakeIndex,
    start_bodega: StartBodega,
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 17 (threat 14): a hash mismatch is retried once, counted and reported. A client
    that took bytes of the bad attempt is cut; one that took none (a Range request waits for
    the verified file) gets the second attempt; nobody gets unverified bytes as complete."""
    index.corrupt(WHEEL.filename, times=1)
    bodega = await start_bodega()
    ranged = await client.get(file_url(bodega), headers={"Range": "bytes=10-19"})
    assert (ranged.status_code, ranged.content) == (206, WHEEL.data[10:20])
    assert index.count("GET", WHEEL.filename) == 2
    assert await metric(client, bodega, "bodega_integrity_failures_total") == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    assert "integrity failure, attempt 1 of 2" in errors[0]
    assert WHEEL.filename in errors[0]
    assert (await client.get(file_url(bodega))).content == WHEEL.data  # cached


async def test_a_client_streaming_the_bad_attempt_is_cut_and_the_retry_is_cached(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    index.corrupt(WHEEL.filename, times=1)
    bodega = await start_bodega()
    await expect_broken_response(file_url(bodega))
    await eventually(lambda: metric(client, bodega, "bodega_downloads_in_flight"), lambda n: n == 0)
    healed = await client.get(file_url(bodega))
    assert (healed.content, healed.headers["X-Bodega-Cache"]) == (WHEEL.data, "HIT")
    assert index.count("GET", WHEEL.filename) == 2


async def test_an_unsized_page_entry_still_catches_a_short_body(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Without a size on the page or a Content-Length, only the hash can tell (threat 15b)."""
    fake_index.add("demo", WHEEL, size_in_page=False)
    fake_index.truncate(WHEEL.filename, with_content_length=False)
    bodega = await start_bodega()
    await expect_broken_response(file_url(bodega))
    # Both attempts (a mismatch is fetched once more) end without a blob.
    await eventually(lambda: metric(client, bodega, "bodega_downloads_in_flight"), lambda n: n == 0)
    assert stored_blobs(tmp_path / "data") == []
    assert await metric(client, bodega, "bodega_integrity_failures_total") == 2


async def test_concurrent_cold_requests_share_one_upstream_download(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    index.throttle(WHEEL.filename, bytes_per_second=400_000, chunk=20_000)
    bodega = await start_bodega()
    responses = await asyncio.gather(*(client.get(file_url(bodega)) for _ in range(20)))
    assert {r.status_code for r in responses} == {200}
    assert {hashlib.sha256(r.content).hexdigest() for r in responses} == {WHEEL.sha256}
    assert index.count("GET", WHEEL.filename) == 1


async def test_a_client_hanging_up_does_not_stop_the_download_for_others(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    """Threat 28."""
    index.throttle(WHEEL.filename, bytes_per_second=200_000, chunk=10_000)
    bodega = await start_bodega()

    async def hang_up_early() -> None:
        async with (
            httpx.AsyncClient(trust_env=False) as other,  # its own connection
            other.stream("GET", file_url(bodega)) as response,
        ):
            await anext(response.aiter_raw())

    patient = asyncio.create_task(client.get(file_url(bodega)))
    await hang_up_early()
    response = await patient
    assert response.content == WHEEL.data
    assert index.count("GET", WHEEL.filename) == 1


@needs_file_blobs
async def test_when_every_client_hangs_up_the_download_still_completes(
    index: FakeIndex, start_bodega: StartBodega, tmp_path: Path
) -> None:
    """Threat 29: bodega's policy is to finish the download, so the next request hits."""
    index.throttle(WHEEL.filename, bytes_per_second=400_000, chunk=20_000)
    bodega = await start_bodega()
    async with (
        httpx.AsyncClient(trust_env=False) as other,
        other.stream("GET", file_url(bodega)) as response,
    ):
        await anext(response.aiter_raw())
    for _ in range(100):
        if stored_blobs(tmp_path / "data"):
            break
        await asyncio.sleep(0.05)
    assert [p.name for p in stored_blobs(tmp_path / "data")] == [WHEEL.sha256]
    assert list((tmp_path / "data" / "tmp").iterdir()) == []


async def test_core_metadata_files_are_cached_the_same_way(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    """PEP 658: the bytes whose hash the page advertises."""
    bodega = await start_bodega()
    url = file_url(bodega) + ".metadata"
    for _ in range(2):
        response = await client.get(url)
        assert response.status_code == 200
        assert response.content == WHEEL.metadata
    assert index.count("GET", WHEEL.filename + ".metadata") == 1
    assert index.count("GET", WHEEL.filename) == 0


@needs_file_blobs
async def test_a_small_cached_file_is_answered_from_memory_and_ranges_from_disk(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """A warm hit on a small file (core metadata, a small wheel) needs no file opened in a
    worker thread: the verified bytes are kept in memory. Shown by taking the blob away: a
    whole GET is still answered in full without upstream, while a Range request
    (FileResponse's business) finds no file on disk and fetches it again."""
    small = build_wheel("tiny", "1.0", payload_size=1_000)
    fake_index.add("tiny", small)
    bodega = await start_bodega()
    url = file_url(bodega, small, "tiny")
    assert (await client.get(url)).content == small.data
    # A hit waits for the commit that is just behind the cold response's last byte.
    assert (await client.get(url)).content == small.data
    [blob] = [p for p in stored_blobs(tmp_path / "data") if p.name == small.sha256]
    blob.unlink()
    again = await client.get(url)
    assert again.status_code == 200
    assert again.content == small.data
    assert again.headers["X-Bodega-Cache"] == "HIT"
    assert again.headers["Cache-Control"] == "max-age=31536000, immutable"
    assert again.headers["Content-Type"] == "application/octet-stream"
    assert fake_index.count("GET", small.filename) == 1
    ranged = await client.get(url, headers={"range": "bytes=0-9"})
    assert ranged.status_code == 206
    assert ranged.content == small.data[:10]
    assert fake_index.count("GET", small.filename) == 2


async def test_no_metadata_file_for_files_without_one(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    sdist = build_sdist("demo", "1.0")
    fake_index.add("demo", sdist)
    bodega = await start_bodega()
    response = await client.get(file_url(bodega, sdist) + ".metadata")
    assert response.status_code == 404


async def test_cached_files_answer_head_and_ranges(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    bodega = await start_bodega()
    url = file_url(bodega)
    await client.get(url)
    head = await client.head(url, headers={"Accept-Encoding": "gzip"})
    assert head.headers["Content-Length"] == str(len(WHEEL.data))
    assert head.headers["Accept-Ranges"] == "bytes"
    assert head.headers["Cache-Control"] == "max-age=31536000, immutable"
    assert "Content-Encoding" not in head.headers
    size = len(WHEEL.data)
    for header, expected in [
        ("bytes=0-99", WHEEL.data[:100]),
        ("bytes=1000-", WHEEL.data[1000:]),
        ("bytes=-10000", WHEEL.data[-10000:]),
    ]:
        response = await client.get(url, headers={"Range": header})
        assert response.status_code == 206
        assert response.content == expected
        assert response.headers["Content-Range"].endswith(f"/{size}")
    beyond = await client.get(url, headers={"Range": f"bytes={size + 10}-"})
    assert beyond.status_code == 416


async def test_cold_head_and_range_requests(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    """uv sends HEAD, Poetry a suffix range, before anything is cached."""
    bodega = await start_bodega()
    head = await client.head(file_url(bodega))
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(WHEEL.data))
    assert head.headers["Accept-Ranges"] == "bytes"
    response = await client.get(file_url(bodega), headers={"Range": "bytes=-10000"})
    assert response.status_code == 206
    assert response.content == WHEEL.data[-10000:]


async def test_gzip_is_never_applied_to_files(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    """Conformance 26: a .tar.gz is served as the same bytes, with no Content-Encoding."""
    sdist = build_sdist("demo", "1.0")
    fake_index.add("demo", sdist)
    bodega = await start_bodega()
    for _ in range(2):  # cold (streamed), then cached (sendfile)
        response = await client.get(file_url(bodega, sdist), headers={"Accept-Encoding": "gzip"})
        assert "Content-Encoding" not in response.headers
        assert response.content == sdist.data


async def test_only_files_listed_upstream_are_fetched(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    """bodega is never an open proxy: an unlisted filename is 404 without a file request."""
    bodega = await start_bodega()
    for path in [
        "files/demo/demo-9.9-py3-none-any.whl",
        "files/demo/..%2f..%2fetc%2fpasswd",
        "files/demo/a%00b.whl",
        "files/..%2f..%2fetc/passwd",
    ]:
        response = await client.get(bodega + path)
        assert response.status_code in (400, 404), path
    assert [r for r in index.requests if r.server == "files"] == []


async def test_files_without_a_declared_hash_are_streamed_but_never_cached(
    fake_index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """The cache never keeps a file whose hash it could not verify."""
    fake_index.add("demo", WHEEL, hash_in_page=False)
    bodega = await start_bodega()

    async def fetch() -> int:
        response = await client.get(file_url(bodega))
        assert response.content == WHEEL.data
        return fake_index.count("GET", WHEEL.filename)

    assert await fetch() == 1
    # A request right behind the first may still join its download; once that has ended, the
    # next one must go upstream again, since nothing was kept.
    await eventually(fetch, lambda upstream_gets: upstream_gets > 1)
    assert stored_blobs(tmp_path / "data") == []


async def test_cached_files_are_served_while_upstream_is_down(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    bodega = await start_bodega(index_ttl=0)
    await client.get(file_url(bodega))
    index.set_down(True)
    response = await client.get(file_url(bodega))
    assert response.content == WHEEL.data


async def test_a_cold_file_with_upstream_down_fails_fast_with_502(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    bodega = await start_bodega()
    await client.get(f"{bodega}simple/demo/")
    index.set_down(True)
    started = time.monotonic()
    response = await client.get(file_url(bodega))
    assert response.status_code == 502
    assert time.monotonic() - started < 5


@needs_file_blobs
async def test_a_client_behind_the_download_gets_the_rest_from_disk_whole(
    fake_index: FakeIndex, start_bodega: StartBodega, tmp_path: Path
) -> None:
    """A reader that falls more than the in-memory window behind a fast download is sent the
    spooled bytes with sendfile: they must join the streamed ones exactly."""
    # Incompressible and larger than the 2 MiB window plus what loopback socket buffers hold.
    big = build_wheel("big", "1.0", payload_size=32_000_000)
    fake_index.add("big", big)
    bodega = await start_bodega(data_dir=tmp_path / "data")
    async with (
        httpx.AsyncClient(trust_env=False, timeout=30) as client,
        client.stream("GET", file_url(bodega, big, "big")) as response,
    ):
        assert response.status_code == 200
        assert response.headers["X-Bodega-Cache"] == "MISS"
        chunks = response.aiter_raw()
        received = bytearray(await anext(chunks))
        # Hold back until the whole file is downloaded, verified and committed.
        blob = tmp_path / "data" / "blobs" / "sha256" / big.sha256[:2] / big.sha256[2:4]
        await eventually(
            lambda: asyncio.to_thread((blob / big.sha256).exists), lambda exists: exists
        )
        async for chunk in chunks:
            received += chunk
    assert len(received) == big.size
    assert hashlib.sha256(received).hexdigest() == big.sha256


async def test_warm_hits_run_no_database_statement(
    fake_index: FakeIndex,
    start_bodega: StartBodega,
    client: httpx.AsyncClient,
    backends: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 11: a warm page, core metadata or file is answered from memory and the blob
    store, never from the database. Watched through SQLite's own statement trace on every
    connection bodega opens."""
    if backends != "embedded":
        pytest.skip("watched through SQLite's statement trace")
    statements: list[str] = []
    connect = sqlite_store._connect

    def traced(path: Path) -> sqlite3.Connection:
        connection = connect(path)
        connection.set_trace_callback(statements.append)
        return connection

    monkeypatch.setattr(sqlite_store, "_connect", traced)
    small = build_wheel("demo", "1.1", payload_size=1_000)
    fake_index.add("demo", WHEEL)
    fake_index.add("demo", small)
    bodega = await start_bodega()
    page = f"{bodega}simple/demo/"
    requests = [
        (page, {"Accept": "text/html"}),
        (page, {"Accept": "application/vnd.pypi.simple.v1+json"}),
        (file_url(bodega) + ".metadata", {}),
        (file_url(bodega, small), {}),  # kept in memory
        (file_url(bodega), {}),  # sent from its blob
    ]
    for _ in range(2):  # cold, then a hit that may wait for the commit behind the first
        for url, headers in requests:
            assert (await client.get(url, headers=headers)).status_code == 200
    await settled(statements)
    statements.clear()
    for url, headers in requests:
        warm = await client.get(url, headers=headers)
        assert warm.headers["X-Bodega-Cache"] == "HIT", url
    assert statements == []


async def settled(statements: list[str]) -> None:
    """Until bodega's work behind the responses (page writes, commits, metadata) is done:
    half a second without a statement."""
    for _ in range(40):
        seen = len(statements)
        await asyncio.sleep(0.5)
        if len(statements) == seen:
            return
    raise AssertionError("bodega's database work did not settle within 20 s")
