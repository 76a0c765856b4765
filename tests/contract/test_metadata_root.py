"""The RootListStore contract: each index's root list, and its renderings' gzip copies."""

from dataclasses import replace

from bodega.storage.metadata import MetadataStore, SharedMetadataStore, StoredRoot

ROOT = StoredRoot("a" * 64, "b" * 64, 3, 100.0)
COMPRESSED = replace(ROOT, html_gzip_key="c" * 64, json_gzip_key="d" * 64)


async def test_gzip_copies_are_recorded_only_for_the_renderings_they_were_made_from(
    store: MetadataStore,
) -> None:
    assert await store.put_root(ROOT) == ROOT
    newer = StoredRoot("e" * 64, "f" * 64, 4, 200.0)
    await store.put_root(newer)
    assert not await store.add_root_gzip(COMPRESSED)  # made from a list replaced meanwhile
    assert await store.get_root() == newer


async def test_a_refresh_with_the_same_renderings_keeps_their_gzip_copies(
    store: MetadataStore,
) -> None:
    await store.put_root(ROOT)
    await store.add_root_gzip(COMPRESSED)
    refreshed = replace(ROOT, fetched_at=300.0)
    assert await store.put_root(refreshed) == replace(COMPRESSED, fetched_at=300.0)
    changed = StoredRoot("e" * 64, "f" * 64, 4, 400.0)
    assert await store.put_root(changed) == changed  # other renderings: no copies yet
    assert not (await store.get_root() or ROOT).is_compressed


async def test_each_index_has_its_own_root_list(database: SharedMetadataStore) -> None:
    pypi, torch = database.index("root/pypi"), database.index("team/torch")
    await pypi.put_root(ROOT)
    assert await torch.get_root() is None
    assert not await torch.add_root_gzip(COMPRESSED)
    assert await pypi.get_root() == ROOT
    other = StoredRoot("e" * 64, "f" * 64, 1, 200.0)
    assert await torch.put_root(other) == other
    assert await pypi.get_root() == ROOT
