"""One upstream fetch of a blob across the replicas sharing one database: the coordination
port `FetchLocks` (proxy/coordination.py) on PostgreSQL session advisory locks.

A replica fetching a blob holds the advisory lock keyed by the blob's sha256 on one
connection of its own, which every fetch of that replica shares (session locks are taken and
let go per key), so a replica uses one connection however many files it fetches or waits
for. A replica that finds the lock taken waits: the holder sends a notification as it lets
go, and the waiter also tries again every second or so, which covers a holder that died
without a word (kill -9 closes its socket and PostgreSQL frees its locks at once; a host
that vanishes is noticed by the server's TCP keepalives within about 25 seconds). Then the
waiter looks in the store: the blob is there (the holder commits and records it before it
lets go), or not (the holder failed or died) and this replica fetches it.

A waiter's clients get no byte while it waits (the other replica's download is not readable
from here until it is in the store), and installers give up on a silent server (pip after
15 seconds). So a waiter waits WAIT_MOST at most, then fetches the file itself: a file that
takes longer than that to download may be fetched once per replica, as without the lock,
and every shorter one once in all.

The lock only saves upstream traffic; correctness never depends on it (blobs are put whole,
after verification, under their own hash). So a database that cannot be asked is logged
and the fetch goes ahead without it: PostgreSQL restarting costs duplicate fetches, not
failed requests.
"""

import asyncio
import contextlib
import enum
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeAlias

import asyncpg

from bodega.core.urls import shown_url
from bodega.storage.postgres_duties import CONNECT_TIMEOUT, KEEPALIVES

if TYPE_CHECKING:
    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record]

log = logging.getLogger(__name__)

CHANNEL = "bodega_fetched"  # a holder's notification as it lets go; the payload is the key
RETRY_FIRST = 0.05  # seconds before a waiter first tries again without a notification
RETRY_MOST = 1.0  # ... and at most between tries: how soon a dead holder's lock is taken
WAIT_MOST = 10.0  # seconds a replica waits for another's download before fetching itself
QUERY_TIMEOUT = 5.0  # a lock query is a round trip; longer means the connection is gone
_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


def lock_id(key: str) -> int:
    """The advisory lock's bigint for a blob: 64 bits of a hash of the key, in a space of
    their own (a blob key never collides with the leader's or migration's constant)."""
    digest = hashlib.sha256(b"bodega fetch " + key.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class _Answer(enum.Enum):
    TAKEN = "taken"
    HELD = "held by another fetch"
    UNKNOWN = "the database cannot be asked"


class PostgresFetchLocks:
    def __init__(self, dsn: str, *, wait_most: float = WAIT_MOST) -> None:
        self._dsn = dsn
        self._wait_most = wait_most
        self._connection: Connection | None = None
        self._talking = asyncio.Lock()  # one query at a time on the one connection
        self._held: set[str] = set()  # keys this replica fetches now
        self._released: dict[str, asyncio.Event] = {}  # keys waited for, set when let go

    @asynccontextmanager
    async def fetching(self, key: str) -> AsyncIterator[bool]:
        if not await self._take(key):  # fetched beside the lock: nothing to let go of
            yield True
            return
        self._held.add(key)
        try:
            yield True
        finally:
            self._held.discard(key)
            # Shielded: a fetch cancelled at shutdown must still let go at once, not when
            # its connection closes.
            await asyncio.shield(self._let_go(key))

    async def _take(self, key: str) -> bool:
        """Until the lock is taken (True), or it is time to fetch without it (False)."""
        delay = RETRY_FIRST
        deadline = time.monotonic() + self._wait_most
        try:
            while True:
                # Made before asking, so a notification that comes between the answer and
                # the wait is not lost.
                released = self._released.setdefault(key, asyncio.Event())
                # Another fetch of this key here is not expected (flights run one per key);
                # were there one, it must not share the session's reentrant lock.
                answer = _Answer.HELD if key in self._held else await self._try_lock(key)
                if answer is not _Answer.HELD:
                    return answer is _Answer.TAKEN  # or fetch without it: nobody can say
                left = deadline - time.monotonic()
                if left <= 0:
                    log.info("fetching %s beside another replica: its download is slow", key)
                    return False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(released.wait(), min(delay, left))
                if released.is_set():
                    del self._released[key]
                delay = min(delay * 2, RETRY_MOST)
        finally:
            self._released.pop(key, None)

    async def _try_lock(self, key: str) -> "_Answer":
        for attempt in (1, 2):
            try:
                async with self._talking:
                    connection = await self._connect()
                    taken = await connection.fetchval(
                        "SELECT pg_try_advisory_lock($1)", lock_id(key), timeout=QUERY_TIMEOUT
                    )
                return _Answer.TAKEN if taken else _Answer.HELD
            except _ERRORS as error:
                # A connection broken since its last use (PostgreSQL restarted) is only
                # found out now: one more try, on a new one.
                await self._drop()
                if attempt == 2:
                    label = shown_url(self._dsn)
                    log.warning("fetching %s without the cluster lock: %s: %s", key, label, error)
        return _Answer.UNKNOWN

    async def _let_go(self, key: str) -> None:
        self._wake(key)  # waiters of this replica
        try:
            async with self._talking:
                if self._connection is None or self._connection.is_closed():
                    return  # gone with its connection: nothing left to let go of
                await self._connection.execute(
                    "SELECT pg_advisory_unlock($1), pg_notify($2, $3)",
                    lock_id(key),
                    CHANNEL,
                    key,
                    timeout=QUERY_TIMEOUT,
                )
        except _ERRORS as error:
            # The lock went with the connection; other replicas find it free.
            log.warning("letting go of the cluster lock of %s: %s", key, error)
            await self._drop()

    async def _connect(self) -> "Connection":
        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(
                self._dsn, timeout=CONNECT_TIMEOUT, server_settings=KEEPALIVES
            )
            await self._connection.add_listener(CHANNEL, self._notified)
        return self._connection

    def _notified(self, connection: object, pid: int, channel: str, key: object) -> None:
        self._wake(str(key))

    def _wake(self, key: str) -> None:
        if (released := self._released.get(key)) is not None:
            released.set()

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.terminate()

    async def close(self) -> None:
        """Let go of every lock (the connection's end frees them in the server)."""
        async with self._talking:
            connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await asyncio.wait_for(connection.close(), CONNECT_TIMEOUT)
            except _ERRORS:
                connection.terminate()
