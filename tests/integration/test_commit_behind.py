"""No client waits for the cache's own commit (the fsync, the rename, the row): a verified
small file is answered from memory while it goes into the store. uv reads a cold wheel's
METADATA with Range requests, level by level of a tree, so each waited commit was on the
path of a whole resolution."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bodega.errors import IntegrityError
from bodega.proxy.file_requests import FileAsk, FromCache
from bodega.services import Services, open_services
from bodega.storage.blobs import BlobStore, store_file
from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.servers import make_settings

WHEEL = build_wheel("held", "1.0", payload_size=50_000)
HANG_GUARD = 30.0  # seconds: only a hang gets near it


@pytest.fixture
async def services(
    fake_index: FakeIndex, tmp_path: Path, database_url: str
) -> AsyncIterator[Services]:
    fake_index.add("held", WHEEL)
    settings = make_settings(
        data_dir=tmp_path / "data", upstream=fake_index.simple_url, database=database_url
    )
    async with open_services(settings) as services:
        yield services


@pytest.fixture
def commit_held(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Every blob's commit waits until the returned event is set."""
    release = asyncio.Event()

    async def held_store_file(blobs: BlobStore, key: str, path: Path) -> None:
        await release.wait()
        await store_file(blobs, key, path)

    monkeypatch.setattr("bodega.proxy.files.store_file", held_store_file)
    return release


def ask(*, ranged: bool) -> FileAsk:
    return FileAsk("", "held", WHEEL.filename, is_get=True, is_whole=not ranged, is_ranged=ranged)


async def test_a_range_of_a_cold_file_is_answered_before_its_commit(
    services: Services, commit_held: asyncio.Event, fake_index: FakeIndex
) -> None:
    answer = await asyncio.wait_for(services.file_requests.get(ask(ranged=True)), HANG_GUARD)
    assert isinstance(answer, FromCache)
    assert await services.files.open_stored(WHEEL.sha256) is None  # verified, not stored yet
    tail = b"".join([chunk async for chunk in answer.cached.read(WHEEL.size - 100, WHEEL.size)])
    assert tail == WHEEL.data[-100:]

    commit_held.set()
    download = services.files.in_progress(WHEEL.sha256)
    if download is not None:
        await download.wait_until_done()
    stored = await services.files.open_cached(WHEEL.sha256)
    assert stored is not None
    stored.release()
    assert fake_index.count("GET", WHEEL.filename) == 1


async def test_a_failed_download_is_never_answered_from_memory(
    services: Services, fake_index: FakeIndex
) -> None:
    fake_index.corrupt(WHEEL.filename)
    with pytest.raises(IntegrityError):
        await asyncio.wait_for(services.file_requests.get(ask(ranged=True)), HANG_GUARD)
    assert services.files.being_committed(WHEEL.sha256) is None
