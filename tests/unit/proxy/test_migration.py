"""The migration use case on in-memory stores: what is copied, what is skipped, what fails."""

import hashlib
from collections.abc import AsyncIterator

import pytest

from bodega.core.model import DistributionFile
from bodega.errors import StorageError
from bodega.proxy.migration import Migration, MigrationReport
from bodega.storage.blobs import read_bytes, store_bytes
from bodega.storage.memory_blobs import MemoryBlobStore, MemoryBlobWriter
from bodega.storage.memory_metadata import MemoryMetadataStore
from bodega.storage.metadata import (
    FIRST_INDEX,
    FileDigests,
    HostedFile,
    NewExemption,
    SearchDetails,
    StoredPage,
    StoredRoot,
    StoredToken,
    StoredUser,
)

HOSTED = "acme/private"


def _key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _filled() -> tuple[MemoryMetadataStore, MemoryBlobStore]:
    """A source holding one of every record, and the blobs they name."""
    store, blobs = MemoryMetadataStore(), MemoryBlobStore()
    wheel, html, json, metadata = b"wheel bytes", b"<html>", b"{}", b"Metadata-Version: 2.1"
    for data in (wheel, html, json, metadata):
        await store_bytes(blobs, _key(data), data)
    index = store.index(FIRST_INDEX)
    await index.put_page(StoredPage("demo", {"files": []}, '"e1"', None, 100.0))
    await store.record_blob(_key(wheel), len(wheel), 50.0)
    await store.touch_blobs({_key(wheel): 60.0})
    await store.put_file_digests(FileDigests(_key(wheel), "0" * 32, "1" * 64))
    await index.put_root(StoredRoot(_key(html), _key(json), 1, 100.0))
    sync = await index.start_search_sync()
    await sync.stage([("demo", "Demo"), ("other", "other")])
    while await sync.merge(None, 100) is not None:
        pass
    await sync.finish(_key(html))
    await index.put_search_details(SearchDetails("demo", "Demo", "1.0", "A demo", "1.0"))
    await index.add_downloads({"demo": 3})
    await index.put_core_metadata("demo", "demo-1.0-py3-none-any.whl", _key(metadata))
    hosted = store.hosted(HOSTED)
    upload = HostedFile(
        "mine", "1.0", "mine-1.0.tar.gz", _key(wheel), "0" * 32, "1" * 64, 11, 70.0, yanked=True
    )
    await hosted.add_hosted_file(upload, "Mine")
    deleted = HostedFile("mine", "0.9", "mine-0.9.tar.gz", _key(json), "0" * 32, "1" * 64, 2, 1.0)
    await hosted.add_hosted_file(deleted, "Mine")
    await hosted.delete_hosted_files("mine", "0.9", None)
    await hosted.set_project_status("mine", "quarantined", "checking")
    await hosted.reserve("taken")
    policy = store.policy()
    made = await policy.add_exemption(
        NewExemption(FIRST_INDEX, "demo", None, "why", "ops", 1, None)
    )
    await policy.revoke_exemption(made.id, 2.0)
    removed = DistributionFile("demo-0.9.tar.gz", "https://example.invalid/demo-0.9.tar.gz")
    await policy.put_removed_file(FIRST_INDEX, "demo", removed, 80.0)
    accounts = store.accounts()
    await accounts.add_user(StoredUser("ada", "hash", True, 1.0))
    await accounts.add_token(StoredToken("t1", "ada", "d" * 64, "upload", ("*",), 1.0, None))
    return store, blobs


async def _migrate(
    source: MemoryMetadataStore,
    blobs: MemoryBlobStore,
    target: MemoryMetadataStore,
    target_blobs: MemoryBlobStore,
) -> tuple[MigrationReport, list[str]]:
    lines: list[str] = []
    migration = Migration(source, blobs, target, target_blobs, say=lines.append)
    return await migration.run(), lines


async def test_every_record_and_blob_is_copied_and_a_second_run_copies_nothing() -> None:
    source, blobs = await _filled()
    target, target_blobs = MemoryMetadataStore(), MemoryBlobStore()
    report, _ = await _migrate(source, blobs, target, target_blobs)
    assert report.is_complete, report.failures
    assert report.tallies["blobs"].copied == 4
    async for key in blobs.keys():
        assert await read_bytes(target_blobs, key) == await read_bytes(blobs, key)
    index, copied = source.index(FIRST_INDEX), target.index(FIRST_INDEX)
    assert await copied.get_page("demo") == await index.get_page("demo")
    assert await copied.get_root() == await index.get_root()
    assert await copied.search_root_key() == await index.search_root_key()
    assert ("other", "other") in await copied.match_names("other", 5)
    names = await target.export().search_names(FIRST_INDEX)
    assert names == await source.export().search_names(FIRST_INDEX)
    assert await copied.get_search_details(["demo"]) == await index.get_search_details(["demo"])
    assert await copied.get_downloads(["demo"]) == {"demo": 3}
    assert await copied.core_metadata_of("demo") == await index.core_metadata_of("demo")
    assert await target.blobs_by_access() == await source.blobs_by_access()
    assert await target.file_digests(await source.export().file_digest_keys()) == (
        await source.file_digests(await source.export().file_digest_keys())
    )
    hosted, hosted_copy = source.hosted(HOSTED), target.hosted(HOSTED)
    assert await hosted_copy.hosted_files("mine") == await hosted.hosted_files("mine")
    assert await hosted_copy.hosted_projects() == await hosted.hosted_projects()
    assert await hosted_copy.reservations() == {"taken"}
    assert await hosted_copy.was_accepted("mine-0.9.tar.gz")  # deleted, still taken
    assert await target.policy().exemptions() == await source.policy().exemptions()
    assert await target.export().removed_files() == await source.export().removed_files()
    assert await target.accounts().users() == await source.accounts().users()
    assert await target.accounts().tokens() == await source.accounts().tokens()

    again, _ = await _migrate(source, blobs, target, target_blobs)
    assert again.is_complete
    assert all(tally.copied == 0 for tally in again.tallies.values()), again.tallies
    assert again.tallies["blobs"].skipped == 4
    assert await copied.get_downloads(["demo"]) == {"demo": 3}  # not counted twice
    assert len(await target.policy().exemptions()) == 1


async def test_a_corrupted_blob_is_reported_and_not_copied_nor_its_record() -> None:
    source, blobs = await _filled()
    bad = _key(b"good bytes")
    await store_bytes(blobs, bad, b"rotten bytes")  # the store trusts its caller
    await source.record_blob(bad, 10, 1.0)
    target_blobs = MemoryBlobStore()
    report, lines = await _migrate(source, blobs, MemoryMetadataStore(), target_blobs)
    assert not report.is_complete
    assert report.tallies["blobs"].failed == 1
    assert report.tallies["blob records"].failed == 1
    assert await target_blobs.size(bad) is None
    assert any(bad in line and "hash" in line for line in lines)
    assert any(bad in failure for failure in report.failures)


async def test_a_page_the_target_fetched_since_is_kept() -> None:
    source, blobs = await _filled()
    target = MemoryMetadataStore()
    newer = StoredPage("demo", {"files": ["newer"]}, '"e2"', None, 200.0)
    await target.index(FIRST_INDEX).put_page(newer)
    report, _ = await _migrate(source, blobs, target, MemoryBlobStore())
    assert report.tallies["pages"].skipped == 1
    assert await target.index(FIRST_INDEX).get_page("demo") == newer


async def test_progress_is_said_every_n_items() -> None:
    source, blobs = await _filled()
    lines: list[str] = []
    migration = Migration(
        source, blobs, MemoryMetadataStore(), MemoryBlobStore(), say=lines.append, progress_every=2
    )
    await migration.run()
    assert "blobs: 2 (copied 2, already there 0, failed 0)" in lines
    assert "blobs: 4 (copied 4, already there 0, failed 0)" in lines


class _LateBlobs(MemoryBlobStore):
    """A source whose listing misses the blobs stored after it began (a serving server)."""

    def __init__(self, late: set[str]) -> None:
        super().__init__()
        self.late = late

    async def keys(self) -> AsyncIterator[str]:
        async for key in super().keys():
            if key not in self.late:
                yield key


async def test_a_blob_stored_at_the_source_during_the_run_is_copied_with_its_record() -> None:
    source, blobs = await _filled()
    late_data = b"cached while the copy ran"
    late = _LateBlobs({_key(late_data)})
    async for key in blobs.keys():
        await store_bytes(late, key, await read_bytes(blobs, key))
    await store_bytes(late, _key(late_data), late_data)
    await source.record_blob(_key(late_data), len(late_data), 90.0)
    target, target_blobs = MemoryMetadataStore(), MemoryBlobStore()
    report, _ = await _migrate(source, late, target, target_blobs)
    assert report.is_complete, report.failures
    assert await read_bytes(target_blobs, _key(late_data)) == late_data
    assert _key(late_data) in await target.blob_keys()


class _BrokenStore(MemoryBlobStore):
    def open_writer(self, key: str) -> MemoryBlobWriter:
        raise StorageError("the object store is unavailable: connection refused")


async def test_the_target_failing_ends_the_run_with_its_reason() -> None:
    source, blobs = await _filled()
    with pytest.raises(StorageError, match="connection refused"):
        await _migrate(source, blobs, MemoryMetadataStore(), _BrokenStore())


async def test_a_token_only_the_target_has_is_pointed_out() -> None:
    source, blobs = await _filled()
    target = MemoryMetadataStore()
    await _migrate(source, blobs, target, MemoryBlobStore())
    await source.accounts().revoke_token("t1")
    _, lines = await _migrate(source, blobs, target, MemoryBlobStore())
    assert any("t1 (of ada) is at the target but no longer at the source" in x for x in lines)
