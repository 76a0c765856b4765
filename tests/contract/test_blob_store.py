"""What every BlobStore does, the filesystem one and the in-memory fake alike: bytes become
visible only whole and on commit, ranged reads, deletion, listing, and keys checked."""

import asyncio
import gc
import hashlib
import os
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path

import pytest

from bodega.errors import InvalidName
from bodega.storage.blobs import BlobStore, LocalBlobs, read_bytes, store_bytes, store_file
from bodega.storage.filesystem import FilesystemBlobStore
from bodega.storage.memory_blobs import MemoryBlobStore
from bodega.storage.readthrough import ReadThroughBlobStore
from bodega.storage.s3blobs import S3BlobStore
from tests.support.seaweedfs import SeaweedFS, open_test_bucket

# Several of the stores' read chunks (256 KiB and 64 KiB), and not a multiple of either.
DATA = bytes(range(256)) * 4_000 + b"tail"
KEY = hashlib.sha256(DATA).hexdigest()
OTHER = b"other bytes"
OTHER_KEY = hashlib.sha256(OTHER).hexdigest()


@pytest.fixture(params=["filesystem", "memory", "s3", "s3-with-local-copies"])
async def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    if request.param == "filesystem":
        yield FilesystemBlobStore(tmp_path / "blobs", tmp_path / "tmp")
    elif request.param == "memory":
        yield MemoryBlobStore()
    else:
        # A real object store (SeaweedFS); its multipart uploads: tests/integration/test_s3.py.
        seaweedfs: SeaweedFS = request.getfixturevalue("seaweedfs")
        async with open_test_bucket(seaweedfs) as store:
            if request.param == "s3":
                yield store
            else:  # --local-cache-size: room for a few blobs the size of DATA
                copies = FilesystemBlobStore(tmp_path / "copies", tmp_path / "tmp")
                yield await ReadThroughBlobStore.open(store, copies, 3 * len(DATA))


def leftovers(tmp_path: Path) -> list[str]:
    """Files the store left outside its blobs (temp files), for the filesystem store."""
    temp = tmp_path / "tmp"
    return sorted(os.listdir(temp)) if temp.exists() else []


async def write_in_pieces(blobs: BlobStore, key: str, data: bytes, *, commit: bool) -> None:
    writer = blobs.open_writer(key)
    for start in range(0, len(data), 300_000):
        await writer.write(data[start : start + 300_000])
    if commit:
        await writer.commit()
    else:
        await writer.abort()


async def all_keys(blobs: BlobStore) -> list[str]:
    return [key async for key in blobs.keys()]  # noqa: SIM118 - an async iterator, no dict


async def test_a_committed_blob_is_visible_whole(blobs: BlobStore, tmp_path: Path) -> None:
    await write_in_pieces(blobs, KEY, DATA, commit=True)
    assert await blobs.size(KEY) == len(DATA)
    assert await read_bytes(blobs, KEY) == DATA
    assert await all_keys(blobs) == [KEY]
    assert leftovers(tmp_path) == []


async def test_nothing_is_visible_before_the_commit(blobs: BlobStore) -> None:
    writer = blobs.open_writer(KEY)
    await writer.write(DATA)
    assert await blobs.size(KEY) is None
    assert await all_keys(blobs) == []
    with pytest.raises(FileNotFoundError):
        await read_bytes(blobs, KEY)
    await writer.commit()
    assert await read_bytes(blobs, KEY) == DATA


async def test_an_aborted_writer_leaves_nothing(blobs: BlobStore, tmp_path: Path) -> None:
    await write_in_pieces(blobs, KEY, DATA, commit=False)
    assert await blobs.size(KEY) is None
    assert await all_keys(blobs) == []
    assert leftovers(tmp_path) == []


async def test_an_abandoned_writer_leaves_nothing(blobs: BlobStore, tmp_path: Path) -> None:
    writer = blobs.open_writer(KEY)
    await writer.write(DATA)
    await writer.write(DATA)
    del writer
    gc.collect()
    assert await blobs.size(KEY) is None
    assert leftovers(tmp_path) == []


async def test_a_cancelled_write_then_abort_leaves_nothing(
    blobs: BlobStore, tmp_path: Path
) -> None:
    writer = blobs.open_writer(KEY)
    await writer.write(DATA)
    task = asyncio.ensure_future(writer.write(DATA * 2))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await writer.abort()
    assert await blobs.size(KEY) is None
    assert leftovers(tmp_path) == []


async def test_abort_after_commit_keeps_the_blob_and_a_closed_writer_takes_no_more(
    blobs: BlobStore,
) -> None:
    writer = blobs.open_writer(OTHER_KEY)
    await writer.write(OTHER)
    await writer.commit()
    await writer.abort()
    assert await read_bytes(blobs, OTHER_KEY) == OTHER
    with pytest.raises(ValueError, match="committed or aborted"):
        await writer.write(b"more")
    with pytest.raises(ValueError, match="committed or aborted"):
        await writer.commit()


async def test_an_empty_blob_is_a_blob(blobs: BlobStore) -> None:
    empty_key = hashlib.sha256(b"").hexdigest()
    writer = blobs.open_writer(empty_key)
    await writer.commit()
    assert await blobs.size(empty_key) == 0
    assert await read_bytes(blobs, empty_key) == b""


async def test_a_reader_never_sees_a_partial_blob(blobs: BlobStore) -> None:
    """Readers racing a writer see no blob, or all of it: never some of its bytes."""
    seen: set[int | None] = set()
    is_done = False

    async def watch() -> None:
        while not is_done:
            try:
                seen.add(len(await read_bytes(blobs, KEY)))
            except FileNotFoundError:
                seen.add(None)
            seen.add(await blobs.size(KEY))
            await asyncio.sleep(0)

    watcher = asyncio.ensure_future(watch())
    await write_in_pieces(blobs, KEY, DATA, commit=True)
    is_done = True
    await watcher
    assert seen <= {None, len(DATA)}
    assert await read_bytes(blobs, KEY) == DATA


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, None),
        (0, 1),
        (1, 2),
        (0, len(DATA)),
        (len(DATA) - 1, None),
        (len(DATA) - 4, len(DATA)),
        (100_000, 700_001),  # across the stores' chunks
        (256 * 1024, 512 * 1024),  # on their boundaries
        (5, len(DATA) + 100),  # past the end: to the end
        (len(DATA), None),  # at the end: nothing
        (len(DATA) + 10, None),  # beyond it: nothing
        (7, 7),  # empty
    ],
)
async def test_ranged_reads(blobs: BlobStore, start: int, end: int | None) -> None:
    await write_in_pieces(blobs, KEY, DATA, commit=True)
    assert await read_bytes(blobs, KEY, start, end) == DATA[start:end]


async def test_reading_a_missing_blob_raises_file_not_found(blobs: BlobStore) -> None:
    with pytest.raises(FileNotFoundError):
        await read_bytes(blobs, KEY)
    assert await blobs.size(KEY) is None


async def test_delete_forgets_the_blob_and_a_second_delete_is_harmless(blobs: BlobStore) -> None:
    await store_bytes(blobs, OTHER_KEY, OTHER)
    await write_in_pieces(blobs, KEY, DATA, commit=True)
    await blobs.delete(KEY)
    await blobs.delete(KEY)
    assert await blobs.size(KEY) is None
    assert await all_keys(blobs) == [OTHER_KEY]
    with pytest.raises(FileNotFoundError):
        await read_bytes(blobs, KEY)


async def test_a_read_under_way_when_the_blob_is_deleted_ends_whole_or_fails(
    blobs: BlobStore,
) -> None:
    """Never a short read taken for the whole blob: what a reader gets is every byte, or
    an error."""
    await write_in_pieces(blobs, KEY, DATA, commit=True)
    got = bytearray()
    reading = blobs.read(KEY)
    try:
        got += await anext(reading)
        await blobs.delete(KEY)
        async for chunk in reading:
            got += chunk
    except FileNotFoundError:
        assert len(got) < len(DATA)
    else:
        assert bytes(got) == DATA
    finally:
        if isinstance(reading, AsyncGenerator):
            await reading.aclose()


async def test_keys_lists_every_committed_blob(blobs: BlobStore) -> None:
    await store_bytes(blobs, OTHER_KEY, OTHER)
    await write_in_pieces(blobs, KEY, DATA, commit=True)
    await write_in_pieces(blobs, hashlib.sha256(b"x").hexdigest(), b"x", commit=False)
    assert sorted(await all_keys(blobs)) == sorted([KEY, OTHER_KEY])


@pytest.mark.parametrize(
    "bad",
    ["", "A" * 64, "a" * 63, "a" * 65, "../" + "a" * 61, "g" * 64, "a" * 63 + "/", "a" * 63 + "\n"],
)
async def test_bad_keys_are_refused(blobs: BlobStore, bad: str) -> None:
    with pytest.raises(InvalidName):
        blobs.open_writer(bad)
    with pytest.raises(InvalidName):
        await blobs.size(bad)
    with pytest.raises(InvalidName):
        await read_bytes(blobs, bad)
    with pytest.raises(InvalidName):
        await blobs.delete(bad)


async def test_concurrent_writers_of_one_key_make_one_whole_blob(
    blobs: BlobStore, tmp_path: Path
) -> None:
    """Two downloads of the same file commit the same bytes: the blob is whole whichever
    lands last, and an aborted one does not take the committed one away."""
    await asyncio.gather(*(write_in_pieces(blobs, KEY, DATA, commit=True) for _ in range(3)))
    await write_in_pieces(blobs, KEY, DATA, commit=False)
    assert await read_bytes(blobs, KEY) == DATA
    assert await all_keys(blobs) == [KEY]
    assert leftovers(tmp_path) == []


async def test_a_spool_file_is_stored_and_consumed(blobs: BlobStore, tmp_path: Path) -> None:
    spool = tmp_path / "spool.part"
    spool.write_bytes(DATA)
    await store_file(blobs, KEY, spool)
    assert not spool.exists()
    assert await read_bytes(blobs, KEY) == DATA


async def test_only_local_stores_say_where_a_blob_lies(blobs: BlobStore) -> None:
    await store_bytes(blobs, OTHER_KEY, OTHER)
    if isinstance(blobs, LocalBlobs):
        path = await blobs.local_path(OTHER_KEY)
        assert path is not None
        assert path.read_bytes() == OTHER
        assert await blobs.local_path(KEY) is None
    else:
        assert isinstance(blobs, MemoryBlobStore | S3BlobStore)
