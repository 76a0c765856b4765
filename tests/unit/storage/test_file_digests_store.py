"""The digests bodega computed of verified files, kept in the real SQLite store."""

from bodega.storage.metadata import FileDigests
from bodega.storage.sqlite import SqliteIndexStore


async def test_digests_are_found_by_sha256_many_at_once_and_outlive_the_blob(
    store: SqliteIndexStore,
) -> None:
    kept = [FileDigests(f"{n:064x}", f"{n:032x}", f"{n + 1:064x}") for n in range(1200)]
    for digests in kept:
        await store.put_file_digests(digests)
    await store.record_blob(kept[0].sha256, 10, 1.0)
    await store.forget_blob(kept[0].sha256)
    wanted = [d.sha256 for d in kept] + ["f" * 64]
    found = await store.file_digests(wanted)  # more keys than one IN batch
    assert found == {d.sha256: d for d in kept}
