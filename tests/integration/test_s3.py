"""bodega on an S3-compatible object store (`--blob-store s3://...`, a real SeaweedFS): files
cached into the bucket and served from it (Range, HEAD), the store down and back, and
`--redirect-files`. The store's own behaviour is the BlobStore contract suite's."""

import asyncio
import functools
import gc
import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from aiobotocore.session import get_session

from bodega.errors import IntegrityError
from bodega.storage.blobs import read_bytes, store_bytes, store_file
from bodega.storage.filesystem import FilesystemBlobStore
from bodega.storage.readthrough import ReadThroughBlobStore
from bodega.storage.s3blobs import S3BlobStore, open_s3_blobs
from tests.conftest import StartBodega
from tests.integration.test_cli import clean_environ, run_bodega
from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.seaweedfs import BUCKET, SeaweedFS, aws_environ, open_test_bucket
from tests.support.waiting import eventually

WHEEL = build_wheel("demo", "1.0", payload_size=300_000)
OTHER = build_wheel("demo", "1.1", payload_size=10_000)


@pytest.fixture
def blob_store(seaweedfs: SeaweedFS) -> Iterator[str]:
    """A fresh --blob-store URL, with the AWS variables that reach it set for the test.
    Requested before start_bodega, so the server stops before they are unset."""
    with aws_environ(seaweedfs):
        yield f"s3://{BUCKET}/{uuid.uuid4().hex}/cache"


@pytest.fixture
def index(fake_index: FakeIndex) -> FakeIndex:
    fake_index.add("demo", WHEEL)
    fake_index.add("demo", OTHER)
    return fake_index


@pytest.fixture
async def bucket(blob_store: str) -> AsyncIterator[S3BlobStore]:
    """The store bodega uses (--blob-store str(bucket.location)), opened beside it, to look
    at what it holds."""
    async with open_s3_blobs(blob_store) as store:
        yield store


def file_url(bodega: str, filename: str = WHEEL.filename) -> str:
    return f"{bodega}files/demo/{filename}"


def local_blobs(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "blobs").rglob("*") if p.is_file()]


async def test_files_are_cached_in_the_bucket_and_served_from_it(
    bucket: S3BlobStore,
    index: FakeIndex,
    start_bodega: StartBodega,
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    bodega = await start_bodega(blob_store=str(bucket.location))
    first = await client.get(file_url(bodega))
    assert first.status_code == 200
    assert first.content == WHEEL.data
    # The last byte goes out once verified; the commit follows.
    await eventually(lambda: bucket.size(WHEEL.sha256), lambda size: size == len(WHEEL.data))
    assert local_blobs(tmp_path / "data") == []  # nothing of it on the local disk

    again = await client.get(file_url(bodega))
    assert again.headers["X-Bodega-Cache"] == "HIT"
    assert again.content == WHEEL.data
    assert again.headers["ETag"] == f'"{WHEEL.sha256}"'

    part = await client.get(file_url(bodega), headers={"Range": "bytes=1000-266143"})
    assert part.status_code == 206
    assert part.content == WHEEL.data[1000:266144]
    assert part.headers["Content-Range"] == f"bytes 1000-266143/{len(WHEEL.data)}"
    tail = await client.get(file_url(bodega), headers={"Range": "bytes=-10"})
    assert tail.content == WHEEL.data[-10:]

    head = await client.head(file_url(bodega))
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(WHEEL.data))
    assert head.content == b""
    unchanged = await client.get(file_url(bodega), headers={"If-None-Match": f'"{WHEEL.sha256}"'})
    assert unchanged.status_code == 304
    assert index.count("GET", WHEEL.filename) == 1


async def test_a_restart_serves_what_the_bucket_holds(
    blob_store: str,
    index: FakeIndex,
    start_bodega: StartBodega,
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    """Another bodega on the same bucket and database finds the blob there."""
    first = await start_bodega(blob_store=blob_store, data_dir=tmp_path / "one")
    assert (await client.get(file_url(first))).content == WHEEL.data
    # A second data dir, so its own empty database: the blob is found, the file fetched
    # by no one but the first.
    second = await start_bodega(blob_store=blob_store, data_dir=tmp_path / "two")
    response = await client.get(file_url(second))
    assert response.content == WHEEL.data
    assert index.count("GET", WHEEL.filename) == 1


async def test_the_object_store_down_fails_files_with_a_reason_and_pages_still_serve(
    bucket: S3BlobStore,
    seaweedfs: SeaweedFS,
    index: FakeIndex,
    start_bodega: StartBodega,
    client: httpx.AsyncClient,
) -> None:
    bodega = await start_bodega(blob_store=str(bucket.location))
    assert (await client.get(file_url(bodega))).status_code == 200
    await eventually(lambda: bucket.size(WHEEL.sha256), lambda size: size is not None)
    assert (await client.get(f"{bodega}simple/demo/")).status_code == 200
    assert (await client.get(f"{bodega}-/ready")).json()["blobs"] == "ok"
    seaweedfs.stop()
    try:
        page = await client.get(f"{bodega}simple/demo/")
        assert page.status_code == 200
        assert OTHER.filename in page.text
        for filename in (WHEEL.filename, OTHER.filename):  # cached, and not
            response = await client.get(file_url(bodega, filename))
            assert response.status_code == 503
            assert "object store is unavailable" in response.text
        ready = await client.get(f"{bodega}-/ready")
        assert ready.status_code == 503
        assert "the object store " in ready.json()["blobs"]  # unavailable, or silent
    finally:
        seaweedfs.start()
    # Back (a store just started may refuse for a moment, which readiness reports): the
    # cached file is a hit, the other downloaded now (nothing was recorded of it).
    readiness = functools.partial(client.get, f"{bodega}-/ready")
    await eventually(readiness, lambda answer: answer.status_code == 200)
    hit = await client.get(file_url(bodega))
    assert hit.headers["X-Bodega-Cache"] == "HIT"
    assert hit.content == WHEEL.data
    assert (await client.get(file_url(bodega, OTHER.filename))).content == OTHER.data
    assert index.count("GET", OTHER.filename) == 1


async def test_redirect_files_sends_hits_to_a_presigned_url(
    blob_store: str,
    index: FakeIndex,
    start_bodega: StartBodega,
    client: httpx.AsyncClient,
    seaweedfs: SeaweedFS,
) -> None:
    bodega = await start_bodega(blob_store=blob_store, redirect_files=True)
    miss = await client.get(file_url(bodega))  # streamed as always while it is cached
    assert miss.status_code == 200
    assert miss.content == WHEEL.data
    hit = await client.get(file_url(bodega))
    assert hit.status_code == 302
    assert hit.headers["Cache-Control"] == "no-store"
    location = hit.headers["Location"]
    assert location.startswith(seaweedfs.endpoint)
    assert "X-Amz-Signature=" in location
    assert "X-Amz-Expires=300" in location
    # The URL needs no credentials of the client's.
    followed = await client.get(location)
    assert followed.status_code == 200
    assert hashlib.sha256(followed.content).hexdigest() == WHEEL.sha256


# ------------------------------------------------------------------------ the store itself

BIG = bytes(range(256)) * 48 * 1024  # 12 MiB: two parts and a smaller last one
BIG_KEY = hashlib.sha256(BIG).hexdigest()


async def open_uploads(seaweedfs: SeaweedFS, store: S3BlobStore) -> list[str]:
    """Multipart uploads still open under the store's prefix."""
    with aws_environ(seaweedfs):
        async with get_session().create_client("s3") as s3:
            listed = await s3.list_multipart_uploads(Bucket=BUCKET, Prefix=store.location.prefix)
    return [upload["Key"] for upload in listed.get("Uploads", [])]


async def write(store: S3BlobStore, data: bytes, *, commit: bool) -> None:
    writer = store.open_writer(hashlib.sha256(data).hexdigest())
    for start in range(0, len(data), 1_000_000):
        await writer.write(data[start : start + 1_000_000])
    if commit:
        await writer.commit()
    else:
        await writer.abort()


async def test_a_large_blob_goes_up_in_parts_and_is_visible_only_at_commit(
    seaweedfs: SeaweedFS,
) -> None:
    async with open_test_bucket(seaweedfs, part_bytes=5 * 1024 * 1024) as store:
        writer = store.open_writer(BIG_KEY)
        await writer.write(BIG[:11_000_000])  # two parts uploaded
        assert await open_uploads(seaweedfs, store) != []
        assert await store.size(BIG_KEY) is None
        await writer.write(BIG[11_000_000:])
        await writer.commit()
        assert await store.size(BIG_KEY) == len(BIG)
        assert b"".join([c async for c in store.read(BIG_KEY)]) == BIG
        assert (
            b"".join([c async for c in store.read(BIG_KEY, 5_242_000, 5_243_000)])
            == (BIG[5_242_000:5_243_000])
        )
        assert await open_uploads(seaweedfs, store) == []


async def test_an_aborted_or_dropped_multipart_writer_leaves_no_upload(
    seaweedfs: SeaweedFS,
) -> None:
    async with open_test_bucket(seaweedfs, part_bytes=5 * 1024 * 1024) as store:
        await write(store, BIG, commit=False)
        assert await open_uploads(seaweedfs, store) == []
        writer = store.open_writer(BIG_KEY)
        await writer.write(BIG)
        assert await open_uploads(seaweedfs, store) != []
        del writer  # dropped: its upload is aborted in the background, awaited at close
        gc.collect()
        assert [k async for k in store.keys()] == []  # noqa: SIM118 - an async iterator
    assert await open_uploads(seaweedfs, store) == []


# ------------------------------------------------------------- local copies of hot blobs


def copies(data_dir: Path) -> list[str]:
    return sorted(p.name for p in (data_dir / "blob-copies").rglob("*") if p.is_file())


async def test_local_cache_size_serves_hits_from_local_copies(
    bucket: S3BlobStore,
    index: FakeIndex,
    start_bodega: StartBodega,
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    blob_store = str(bucket.location)
    first = await start_bodega(blob_store=blob_store, local_cache_size=1_000_000)
    assert (await client.get(file_url(first))).content == WHEEL.data
    await eventually(lambda: bucket.size(WHEEL.sha256), lambda size: size is not None)
    assert copies(tmp_path / "data") == [WHEEL.sha256]  # the spool, kept after its upload
    hit = await client.get(file_url(first), headers={"Range": "bytes=5-9"})
    assert hit.headers["X-Bodega-Cache"] == "HIT"
    assert hit.content == WHEEL.data[5:10]

    # Another bodega on the bucket copies the blob on its first hit, then serves the copy.
    second = await start_bodega(
        blob_store=blob_store, local_cache_size=1_000_000, data_dir=tmp_path / "two"
    )
    assert copies(tmp_path / "two") == []
    response = await client.get(file_url(second))
    assert response.headers["X-Bodega-Cache"] == "HIT"
    assert response.content == WHEEL.data
    assert copies(tmp_path / "two") == [WHEEL.sha256]
    assert index.count("GET", WHEEL.filename) == 1


def plant_copy(folder: Path, data: bytes) -> Path:
    key = hashlib.sha256(data).hexdigest()
    path = folder / key[:2] / key[2:4] / key
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    return path


async def test_copies_a_start_will_not_use_are_removed_and_its_own_kept(
    bucket: S3BlobStore,
    index: FakeIndex,
    start_bodega: StartBodega,
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    """Copies left by a start with --workers (a folder per worker), which nothing would count
    against --local-cache-size again, go when bodega starts alone; its own stay. With the
    local cache off, every copy goes."""
    data_dir = tmp_path / "data"
    own = plant_copy(data_dir / "blob-copies", WHEEL.data)
    plant_copy(data_dir / "blob-copies" / "worker-2", OTHER.data)
    bodega = await start_bodega(blob_store=str(bucket.location), local_cache_size=1_000_000)
    assert not (data_dir / "blob-copies" / "worker-2").exists()
    assert own.read_bytes() == WHEEL.data
    assert (await client.get(file_url(bodega, OTHER.filename))).content == OTHER.data

    other_dir = tmp_path / "off"
    plant_copy(other_dir / "blob-copies", WHEEL.data)
    plant_copy(other_dir / "blob-copies" / "worker-1", OTHER.data)
    await start_bodega(blob_store=str(bucket.location), data_dir=other_dir)
    assert list((other_dir / "blob-copies").iterdir()) == []


async def test_a_blob_larger_than_the_local_cache_is_streamed_from_the_bucket(
    bucket: S3BlobStore,
    index: FakeIndex,
    start_bodega: StartBodega,
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    bodega = await start_bodega(blob_store=str(bucket.location), local_cache_size=100_000)
    assert (await client.get(file_url(bodega))).content == WHEEL.data
    await eventually(lambda: bucket.size(WHEEL.sha256), lambda size: size is not None)
    hit = await client.get(file_url(bodega))
    assert hit.headers["X-Bodega-Cache"] == "HIT"
    assert hit.content == WHEEL.data
    assert copies(tmp_path / "data") == []
    assert index.count("GET", WHEEL.filename) == 1


async def test_the_least_recently_used_copies_go_when_the_budget_is_passed(
    seaweedfs: SeaweedFS, tmp_path: Path
) -> None:
    now = [1000.0]
    small, large = b"s" * 40_000, b"l" * 70_000
    small_key, large_key = (hashlib.sha256(d).hexdigest() for d in (small, large))
    async with open_test_bucket(seaweedfs) as remote:
        local = FilesystemBlobStore(tmp_path / "copies", tmp_path / "tmp")
        store = await ReadThroughBlobStore.open(remote, local, 100_000, clock=lambda: now[0])
        for data in (small, large):
            spool = tmp_path / "spool"
            spool.write_bytes(data)
            await store_file(store, hashlib.sha256(data).hexdigest(), spool)
            now[0] += 60
        # 110 kB of copies: the older one went, the other stays; the bucket has both.
        assert await local.local_path(small_key) is None
        assert await local.local_path(large_key) is not None
        assert store.local_bytes == len(large)
        assert await read_bytes(store, small_key) == small
        # A hit on the small one copies it back, and the large one makes room.
        now[0] += 60
        path = await store.local_path(small_key)
        assert path is not None
        assert path.read_bytes() == small
        assert await local.local_path(large_key) is None
        assert await read_bytes(store, large_key) == large
        # A copy used within the last seconds stays, over budget, until it is older.
        assert await store.local_path(large_key) is not None
        assert store.local_bytes == len(small) + len(large)


async def test_a_copy_that_does_not_match_its_key_is_refused(
    seaweedfs: SeaweedFS, tmp_path: Path
) -> None:
    """The object store's bytes are checked against the blob's name on their way to the
    local disk: a corrupted object is never kept nor sent from a copy."""
    async with open_test_bucket(seaweedfs) as remote:
        forged_key = hashlib.sha256(b"the real bytes").hexdigest()
        await store_bytes(remote, forged_key, b"other bytes")
        local = FilesystemBlobStore(tmp_path / "copies", tmp_path / "tmp")
        store = await ReadThroughBlobStore.open(remote, local, 100_000)
        with pytest.raises(IntegrityError):
            await store.local_path(forged_key)
        assert await local.local_path(forged_key) is None
        assert store.local_bytes == 0


@pytest.mark.usefixtures("index")
async def test_the_cache_commands_work_on_the_bucket(
    bucket: S3BlobStore,
    start_bodega: StartBodega,
    client: httpx.AsyncClient,
    tmp_path: Path,
    database_url: str,
) -> None:
    """`bodega cache` reads BODEGA_BLOB_STORE (and the AWS variables, set for the test by
    the bucket's fixture) as serve does."""
    bodega = await start_bodega(blob_store=str(bucket.location))
    assert (await client.get(file_url(bodega))).content == WHEEL.data
    await eventually(lambda: bucket.size(WHEEL.sha256), lambda size: size is not None)
    environ = clean_environ(
        BODEGA_DATA_DIR=str(tmp_path / "data"),
        BODEGA_UPSTREAM="http://127.0.0.1:9/",
        BODEGA_BLOB_STORE=str(bucket.location),
        BODEGA_DATABASE=database_url,  # the server's: PostgreSQL, or "" for the data dir's
    )
    verified = await asyncio.to_thread(run_bodega, "cache", "verify", env=environ)
    assert (verified.returncode, verified.stdout) == (
        0,
        "checked 1 files: 0 quarantined, 0 missing, 0 adopted, 0 unknown\n",
    )
    stats = await asyncio.to_thread(run_bodega, "cache", "stats", env=environ)
    assert stats.returncode == 0
    assert "files:  1 (" in stats.stdout
