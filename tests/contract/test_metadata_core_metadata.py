"""The CoreMetadataRecords contract: METADATA bodega extracted, per index."""

from bodega.storage.metadata import MetadataStore, SharedMetadataStore

WHEEL = "demo-1.0-py3-none-any.whl"


async def test_extracted_metadata_is_listed_by_project(store: MetadataStore) -> None:
    assert await store.core_metadata_of("demo") == {}
    await store.put_core_metadata("demo", WHEEL, "1" * 64)
    await store.put_core_metadata("demo", WHEEL, "2" * 64)  # replaced
    await store.put_core_metadata("other", "other-1.0-py3-none-any.whl", "3" * 64)
    assert await store.core_metadata_of("demo") == {WHEEL: "2" * 64}


async def test_core_metadata_is_each_indexs_own(database: SharedMetadataStore) -> None:
    pypi, torch = database.index("root/pypi"), database.index("team/torch")
    await pypi.put_core_metadata("demo", WHEEL, "1" * 64)
    assert await torch.core_metadata_of("demo") == {}
    assert await pypi.core_metadata_of("demo") == {WHEEL: "1" * 64}
