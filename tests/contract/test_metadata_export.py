"""The MetadataExport contract: everything a store holds, listed whole, on the stores
`bodega migrate` copies from (SQLite, and the in-memory fake that stands for it)."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bodega.core.model import DistributionFile
from bodega.storage.memory_metadata import MemoryMetadataStore
from bodega.storage.metadata import (
    FIRST_INDEX,
    ExportableMetadataStore,
    FileDigests,
    HostedFile,
    RemovedFile,
    SearchDetails,
    StoredBlob,
    StoredPage,
    StoredRoot,
)
from bodega.storage.sqlite import SqliteMetadataStore

OTHER = "team/mirror"
HOSTED = "acme/private"
KEY_A, KEY_B = "a" * 64, "b" * 64


@pytest.fixture(params=["sqlite", "memory"])
async def source(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[ExportableMetadataStore]:
    opened: ExportableMetadataStore
    if request.param == "sqlite":
        opened = await SqliteMetadataStore.open(tmp_path / "db.sqlite3")
    else:
        opened = MemoryMetadataStore()
    try:
        yield opened
    finally:
        await opened.close()


async def test_an_empty_store_lists_nothing(source: ExportableMetadataStore) -> None:
    export = source.export()
    assert await export.index_names() == []
    assert await export.blob_records() == []
    assert await export.file_digest_keys() == []
    assert await export.removed_files() == []
    assert await export.page_projects(FIRST_INDEX) == []
    assert await export.search_names(FIRST_INDEX) == []
    assert await export.download_counts(FIRST_INDEX) == {}
    assert await export.accepted_filenames(HOSTED) == []


async def test_each_index_lists_its_own_rows(source: ExportableMetadataStore) -> None:
    first, other = source.index(FIRST_INDEX), source.index(OTHER)
    await first.put_page(StoredPage("six", {}, None, None, 1.0))
    await first.put_page(StoredPage("demo", {}, None, None, 1.0))
    await other.put_page(StoredPage("torch", {}, None, None, 1.0))
    await first.put_search_details(SearchDetails("demo", "Demo", "1.0", "a demo", "1.0"))
    sync = await other.start_search_sync()
    await sync.stage([("zope", "zope"), ("attrs", "attrs")])
    while await sync.merge(None, 100) is not None:
        pass
    await sync.finish(KEY_A)
    await first.add_downloads({"demo": 2, "six": 1})
    await first.put_core_metadata("demo", "demo-1.0-py3-none-any.whl", KEY_B)
    export = source.export()
    assert await export.index_names() == [FIRST_INDEX, OTHER]
    assert await export.page_projects(FIRST_INDEX) == ["demo", "six"]
    assert await export.page_projects(OTHER) == ["torch"]
    assert await export.search_names(FIRST_INDEX) == [("demo", "Demo")]
    assert await export.search_names(OTHER) == [("attrs", "attrs"), ("zope", "zope")]
    assert await export.search_detail_keys(FIRST_INDEX) == ["demo"]
    assert await export.search_detail_keys(OTHER) == []
    assert await export.download_counts(FIRST_INDEX) == {"demo": 2, "six": 1}
    assert await export.core_metadata_projects(FIRST_INDEX) == ["demo"]
    assert await export.core_metadata_projects(OTHER) == []


async def test_an_index_with_only_a_root_list_or_hosted_rows_is_listed(
    source: ExportableMetadataStore,
) -> None:
    await source.index(OTHER).put_root(StoredRoot(KEY_A, KEY_B, 2, 1.0))
    hosted = source.hosted(HOSTED)
    file = HostedFile("mine", "1.0", "mine-1.0.tar.gz", KEY_A, "0" * 32, "1" * 64, 3, 1.0)
    await hosted.add_hosted_file(file, "Mine")
    await hosted.add_hosted_file(
        HostedFile("mine", "0.9", "mine-0.9.tar.gz", KEY_B, "0" * 32, "1" * 64, 3, 1.0), "Mine"
    )
    await hosted.delete_hosted_files("mine", "0.9", None)
    export = source.export()
    assert await export.index_names() == [HOSTED, OTHER]
    assert await export.accepted_filenames(HOSTED) == ["mine-0.9.tar.gz", "mine-1.0.tar.gz"]


async def test_every_blob_record_digest_and_removed_file_is_listed(
    source: ExportableMetadataStore,
) -> None:
    await source.record_blob(KEY_B, 20, 5.0)
    await source.record_blob(KEY_A, 10, 1.0)
    await source.touch_blobs({KEY_A: 3.0})
    await source.index(FIRST_INDEX).put_root(StoredRoot(KEY_B, KEY_B, 1, 1.0))
    await source.put_file_digests(FileDigests(KEY_A, "0" * 32, "1" * 64))
    removed = DistributionFile("demo-0.9.tar.gz", "https://example.invalid/demo-0.9.tar.gz")
    await source.policy().put_removed_file(FIRST_INDEX, "demo", removed, 7.0)
    export = source.export()
    # The root list's blob too, which eviction's listing leaves out.
    assert await export.blob_records() == [StoredBlob(KEY_A, 10, 3.0), StoredBlob(KEY_B, 20, 5.0)]
    assert await export.file_digest_keys() == [KEY_A]
    assert await export.removed_files() == [RemovedFile(FIRST_INDEX, "demo", removed, 7.0)]
