"""A whole search sync, as ProjectSearch runs it, for the store tests."""

from bodega.storage.metadata import MetadataStore


async def sync_names(
    store: MetadataStore, names: list[tuple[str, str]], limit: int = 2, root_key: str = "root"
) -> None:
    """A whole sync as ProjectSearch runs it, staged in two parts and merged `limit` at a time."""
    sync = await store.start_search_sync()
    await sync.stage(names[: len(names) // 2])
    await sync.stage(names[len(names) // 2 :])
    after = await sync.merge(None, limit)
    while after is not None:
        after = await sync.merge(after, limit)
    await sync.finish(root_key)
