"""The PageStore contract: an index's pages with their validators."""

import asyncio

from bodega.storage.metadata import MetadataStore, SharedMetadataStore, StoredPage

PAGE = StoredPage("demo", {"name": "demo", "files": []}, '"v1"', None, 100.0)


async def test_a_page_is_kept_confirmed_and_forgotten(store: MetadataStore) -> None:
    assert await store.get_page("demo") is None
    await store.put_page(PAGE)
    assert await store.get_page("demo") == PAGE
    assert await store.has_page("demo")
    assert await store.page_count() == 1
    await store.mark_page_fresh("demo", 200.0)
    assert (await store.get_page("demo")) == StoredPage("demo", PAGE.record, '"v1"', None, 200.0)
    assert await store.forget_page("demo")
    assert not await store.forget_page("demo")
    assert not await store.has_page("demo")


async def test_an_index_never_sees_another_ones_pages(database: SharedMetadataStore) -> None:
    pypi, torch = database.index("root/pypi"), database.index("team/torch")
    await pypi.put_page(PAGE)
    assert await torch.get_page("demo") is None
    assert not await torch.has_page("demo")
    assert await torch.page_count() == 0
    assert not await torch.forget_page("demo")
    await torch.mark_page_fresh("demo", 500.0)
    assert await pypi.get_page("demo") == PAGE
    other = StoredPage("demo", {"name": "demo", "files": ["x"]}, None, None, 200.0)
    await torch.put_page(other)
    assert await pypi.get_page("demo") == PAGE
    assert await torch.get_page("demo") == other
    assert await pypi.forget_page("demo")
    assert await torch.get_page("demo") == other


async def test_pages_written_behind_are_read_and_replaced_in_the_order_asked(
    store: MetadataStore,
) -> None:
    """proxy/pages.py writes a page behind its response and the next request reads it: a
    store with many connections must keep a project's page operations in order too."""
    # Large pages take a while to write: long enough for a read to overtake them.
    older = StoredPage("demo", {"name": "demo", "files": ["x" * 100] * 20_000}, None, None, 1)
    newer = StoredPage("demo", {"name": "demo", "files": ["y" * 100] * 20_000}, None, None, 2)
    await asyncio.gather(*(store.page_count() for _ in range(5)))  # busy: open connections
    writes = [asyncio.ensure_future(store.put_page(page)) for page in (older, newer)]
    await asyncio.sleep(0)  # the writes start, as they have by the time a request comes
    assert await store.has_page("demo")
    assert await store.get_page("demo") == newer
    await asyncio.gather(*writes)
