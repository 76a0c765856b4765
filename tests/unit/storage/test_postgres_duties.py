"""The leader lease on PostgreSQL: one replica at a time runs the background duties, and
another takes them over when it goes away or loses its connection."""

import asyncio

from bodega.proxy.coordination import EVICTION
from bodega.storage.postgres_duties import PostgresDuties
from tests.support.postgres import PostgresCluster, admin


async def _nothing() -> None:
    await asyncio.sleep(0)


async def test_one_replica_holds_the_duties_until_it_lets_go(postgres_dsn: str) -> None:
    first, second = PostgresDuties(postgres_dsn), PostgresDuties(postgres_dsn)
    try:
        assert await first.run(EVICTION, _nothing)
        assert not await second.run(EVICTION, _nothing)
        assert await first.run(EVICTION, _nothing)  # still held
        await first.close()
        assert await second.run(EVICTION, _nothing)
        assert not await first.run(EVICTION, _nothing)
    finally:
        await first.close()
        await second.close()


async def test_a_leader_whose_connection_breaks_loses_the_lease(postgres_dsn: str) -> None:
    first, second = PostgresDuties(postgres_dsn), PostgresDuties(postgres_dsn)
    try:
        assert await first.run(EVICTION, _nothing)
        # As a crashed leader's connection ends: the server drops the lock with it.
        admin(
            postgres_dsn,
            "SELECT pg_terminate_backend(pid) FROM pg_locks"
            " WHERE locktype = 'advisory' AND granted",
        )
        await asyncio.sleep(0.1)
        assert await second.run(EVICTION, _nothing)
        assert not await first.run(EVICTION, _nothing)  # reconnected, as a follower
    finally:
        await first.close()
        await second.close()


async def test_the_leader_takes_the_lease_again_after_postgresql_restarts(
    postgres_cluster: PostgresCluster,
) -> None:
    duties = PostgresDuties(postgres_cluster.dsn)
    try:
        assert await duties.run(EVICTION, _nothing)
        postgres_cluster.restart()
        assert await duties.run(EVICTION, _nothing)
    finally:
        await duties.close()
