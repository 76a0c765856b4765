"""Background duties (eviction, search sync, root refresh) held by one replica at a time,
through PostgreSQL: the coordination port `Duties` (proxy/coordination.py) for replicas
that share one database.

The lease is a session advisory lock on a connection of its own: the replica whose
connection holds it is the leader and runs every duty; the others' `run` says False. A
leader that dies lets go with its connection (kill -9 closes the socket at once; a machine
that vanishes is noticed by the server's TCP keepalives within about half a minute), and
the next replica to ask takes the lease over. A leader whose connection broke (a
PostgreSQL restart) asks again like any other.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeAlias

import asyncpg

from bodega.core.urls import shown_url
from bodega.errors import StorageError
from bodega.storage.postgres_schema import LEADER_LOCK

if TYPE_CHECKING:
    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
# The server drops a silent leader's connection, and so its lease, after about
# idle + interval * count seconds.
KEEPALIVES = {
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
}
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
)

_CLOSE_ERRORS: tuple[type[BaseException], ...] = (*_CONNECTION_ERRORS, asyncpg.PostgresError)


class PostgresDuties:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._connection: Connection | None = None
        self._is_leader = False
        self._asking = asyncio.Lock()  # one look at the lease at a time

    async def run(self, duty: str, work: Callable[[], Awaitable[object]]) -> bool:
        """Runs `work` if this replica holds the lease; False, without running it, if
        another does. StorageError if the database cannot be asked."""
        if not await self.holds_lease():
            return False
        await work()
        return True

    async def holds_lease(self) -> bool:
        async with self._asking:
            for attempt in (1, 2):
                try:
                    return await self._ask()
                except _CONNECTION_ERRORS as error:
                    # A broken connection took any lease with it: ask again on a new one.
                    if self._is_leader:
                        log.warning("duties: lost the lease with its connection (%s)", error)
                    await self._drop()
                    if attempt == 2:
                        raise StorageError(f"duties: {shown_url(self._dsn)}: {error}") from error
                except asyncpg.PostgresError as error:
                    raise StorageError(f"duties: {shown_url(self._dsn)}: {error}") from error
        raise AssertionError("unreachable")

    async def _ask(self) -> bool:
        if self._connection is None or self._connection.is_closed():
            self._is_leader = False
            self._connection = await asyncpg.connect(
                self._dsn, timeout=CONNECT_TIMEOUT, server_settings=KEEPALIVES
            )
        if self._is_leader:
            await self._connection.fetchval("SELECT 1")  # the lease lives with it
            return True
        held = await self._connection.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_LOCK)
        if held:
            log.info("duties: this replica holds the lease for the background duties")
        self._is_leader = bool(held)
        return self._is_leader

    async def _drop(self) -> None:
        connection, self._connection, self._is_leader = self._connection, None, False
        if connection is not None:
            connection.terminate()

    async def close(self) -> None:
        """Let go of the lease, for another replica to take."""
        async with self._asking:
            connection, self._connection, self._is_leader = self._connection, None, False
            if connection is not None:
                try:
                    await asyncio.wait_for(connection.close(), CONNECT_TIMEOUT)
                except _CLOSE_ERRORS:
                    connection.terminate()
