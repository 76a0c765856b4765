"""The BlobRecords and FileDigestStore contracts: shared by every index, and eviction never
offered a blob any index's root list is served from."""

import pytest

from bodega.storage.metadata import FileDigests, MetadataStore, SharedMetadataStore, StoredRoot

ROOT = StoredRoot("a" * 64, "b" * 64, 3, 100.0)
COMPRESSED = StoredRoot("a" * 64, "b" * 64, 3, 100.0, "c" * 64, "d" * 64)


async def test_blobs_are_offered_least_recently_used_first(store: MetadataStore) -> None:
    await store.record_blob("1" * 64, 10, 1.0)
    await store.record_blob("2" * 64, 20, 2.0)
    await store.record_blob("3" * 64, 30, 3.0)
    await store.touch_blobs({"1" * 64: 5.0, "2" * 64: 1.5})  # never back in time
    assert [b.key for b in await store.blobs_by_access()] == ["2" * 64, "3" * 64, "1" * 64]
    assert [b.key for b in await store.blobs_by_access(unused_since=3.0)] == ["2" * 64]
    assert len(await store.blobs_by_access(limit=1)) == 1
    assert await store.blob_usage() == (3, 60)
    await store.forget_blob("3" * 64)
    assert await store.blob_keys() == {"1" * 64, "2" * 64}
    assert await store.cached_keys(["1" * 64, "3" * 64]) == {"1" * 64}


@pytest.mark.parametrize("root", [ROOT, COMPRESSED])
async def test_eviction_never_offers_a_blob_the_root_list_is_served_from(
    store: MetadataStore, root: StoredRoot
) -> None:
    await store.put_root(root)
    # Rows for them as `cache verify` could once have adopted; the other blob is a file.
    for key in [*root.blob_keys, "9" * 64]:
        await store.record_blob(key, 10, 1.0)
    assert [blob.key for blob in await store.blobs_by_access()] == ["9" * 64]


async def test_eviction_never_offers_a_blob_any_index_serves_its_root_list_from(
    database: SharedMetadataStore,
) -> None:
    await database.index("root/pypi").put_root(ROOT)
    other = StoredRoot("e" * 64, "f" * 64, 1, 200.0)
    await database.index("team/torch").put_root(other)
    for key in [*ROOT.blob_keys, *other.blob_keys, "9" * 64]:
        await database.record_blob(key, 10, 1.0)
    assert [blob.key for blob in await database.blobs_by_access()] == ["9" * 64]
    assert await database.root_blob_keys() == ROOT.blob_keys | other.blob_keys


async def test_blob_records_are_the_same_for_every_index(database: SharedMetadataStore) -> None:
    await database.index("root/pypi").record_blob("1" * 64, 10, 1.0)
    assert await database.index("team/torch").cached_keys(["1" * 64]) == {"1" * 64}
    assert await database.blob_keys() == {"1" * 64}


async def test_digests_are_found_by_sha256_many_at_once_and_outlive_the_blob(
    store: MetadataStore,
) -> None:
    kept = [FileDigests(f"{n:064x}", f"{n:032x}", f"{n + 1:064x}") for n in range(1200)]
    for digests in kept:
        await store.put_file_digests(digests)
    await store.record_blob(kept[0].sha256, 10, 1.0)
    await store.forget_blob(kept[0].sha256)
    wanted = [d.sha256 for d in kept] + ["f" * 64]
    found = await store.file_digests(wanted)  # more keys than one IN batch
    assert found == {d.sha256: d for d in kept}


async def test_the_store_is_writable(database: SharedMetadataStore) -> None:
    assert await database.is_writable()
