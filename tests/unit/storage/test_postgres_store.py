"""What the PostgreSQL store does beyond the metadata contract: its schema is migrated once
whoever starts first, a newer schema is refused, and a server that went away is reached
again when it comes back."""

import asyncio

import asyncpg
import pytest

from bodega.errors import StorageError
from bodega.storage.metadata import FIRST_INDEX, StoredPage
from bodega.storage.postgres import PostgresMetadataStore
from bodega.storage.postgres_schema import MIGRATIONS
from tests.support.postgres import PostgresCluster, fresh_database


async def _version(dsn: str) -> list[int]:
    connection = await asyncpg.connect(dsn)
    try:
        return [row[0] for row in await connection.fetch("SELECT version FROM bodega_schema")]
    finally:
        await connection.close()


async def test_replicas_starting_together_migrate_the_schema_once(postgres_server: str) -> None:
    with fresh_database(postgres_server) as dsn:
        stores = await asyncio.gather(*(PostgresMetadataStore.open(dsn) for _ in range(4)))
        try:
            assert await _version(dsn) == [len(MIGRATIONS)]
            page = StoredPage("six", {"files": []}, None, None, 1)
            await stores[0].index(FIRST_INDEX).put_page(page)
            assert await stores[3].index(FIRST_INDEX).has_page("six")
        finally:
            for store in stores:
                await store.close()


async def test_a_schema_newer_than_this_bodega_is_refused(postgres_server: str) -> None:
    with fresh_database(postgres_server) as dsn:
        store = await PostgresMetadataStore.open(dsn)
        await store.close()
        connection = await asyncpg.connect(dsn)
        await connection.execute("UPDATE bodega_schema SET version = version + 1")
        await connection.close()
        with pytest.raises(StorageError, match="newer than this bodega"):
            await PostgresMetadataStore.open(dsn)


async def test_an_unreachable_server_is_a_clear_error_without_the_password(
    postgres_cluster: PostgresCluster,
) -> None:
    postgres_cluster.stop()
    dsn = f"postgresql://bodega:s3cret@127.0.0.1:{postgres_cluster.port}/bodega"
    with pytest.raises(StorageError, match="cannot open the metadata database") as raised:
        await PostgresMetadataStore.open(dsn)
    assert "s3cret" not in str(raised.value)
    assert f"127.0.0.1:{postgres_cluster.port}/bodega" in str(raised.value)


async def test_the_store_reconnects_when_the_server_comes_back(
    postgres_cluster: PostgresCluster,
) -> None:
    store = await PostgresMetadataStore.open(postgres_cluster.dsn)
    try:
        index = store.index(FIRST_INDEX)
        await index.put_page(StoredPage("six", {"files": []}, None, None, 1))
        postgres_cluster.stop()
        assert not await store.is_writable()
        with pytest.raises(StorageError):
            await index.get_page("six")
        postgres_cluster.start()
        # The pool's connections all broke: the first use replaces them, no error.
        assert await index.get_page("six") == StoredPage("six", {"files": []}, None, None, 1)
        assert await store.is_writable()
    finally:
        await store.close()


async def test_a_restart_between_uses_costs_no_request(postgres_cluster: PostgresCluster) -> None:
    store = await PostgresMetadataStore.open(postgres_cluster.dsn)
    try:
        index = store.index(FIRST_INDEX)
        await index.put_page(StoredPage("six", {"files": []}, None, None, 1))
        postgres_cluster.restart()
        assert await index.has_page("six")
    finally:
        await store.close()
