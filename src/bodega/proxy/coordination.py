"""Coordination as ports: what keeps bodega's concurrent work from doing a thing twice or
undoing another's, with the in-process implementations one bodega process needs.

    Flights     one piece of work per key, however many callers ask at once
                (in process: SingleFlight, proxy/singleflight.py)
    BlobLeases  a blob being read is not deleted; a blob being deleted is not served, nor
                committed again, until the deletion is over (in process: LocalBlobLeases)
    Duties      a background duty (eviction, search sync, root refresh) runs only where this
                process holds it (in process: LocalDuties, which holds every duty)
    FetchLocks  one upstream fetch of a blob at a time across the processes sharing a cache
                (in process: LocalFetchLocks, which holds nothing: Flights is enough there)

The data dir's flock (storage/datadir.py) keeps a second process off the same cache; replicas
sharing one cache (issue 14) will implement these ports on the shared database instead. So
the ports speak of string keys and awaitable steps, and none hands out a lock object.
"""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol, TypeVar

T = TypeVar("T")

# The background duties, by name.
EVICTION = "eviction"  # keeping the cache under its size limit
SEARCH_SYNC = "search-sync"  # merging the root list's names into search
ROOT_REFRESH = "root-refresh"  # refreshing the root list when it is older than search's interval


class Flights(Protocol[T]):
    """Runs `work()` once per key at a time; callers that ask meanwhile share its outcome.
    The work belongs to the flights, not to a caller: a caller that goes away does not
    cancel it for the others, and `close()` cancels what is left."""

    def run(self, key: str, work: Callable[[], Awaitable[T]]) -> "asyncio.Future[T]":
        """The work under way for `key`, started now if there is none."""
        ...

    async def call(self, key: str, work: Callable[[], Awaitable[T]]) -> T:
        """run(), awaited without a caller's cancellation reaching the work."""
        ...

    def running(self, key: str) -> "asyncio.Future[T] | None": ...

    async def close(self) -> None: ...


class BlobLeases(Protocol):
    """Who may delete a blob: nobody while it is leased (being read), and while it is being
    deleted nobody leases it and no download of it commits."""

    def is_deleting(self, key: str) -> bool: ...

    async def acquire(self, key: str) -> bool:
        """Leases the blob until `release(key)`; False, leasing nothing, while it is being
        deleted. Leases count: each acquire needs its release."""
        ...

    def release(self, key: str) -> None: ...

    def deleting(self, key: str) -> AbstractAsyncContextManager[bool]:
        """Holds the blob for deletion while the block runs, if nobody leases it: yields
        True; yields False, holding nothing, when it is leased."""
        ...

    async def wait_until_deleted(self, key: str) -> None:
        """Returns once no deletion of the blob is under way (at once when none is)."""
        ...


class Duties(Protocol):
    async def run(self, duty: str, work: Callable[[], Awaitable[object]]) -> bool:
        """Runs `work` if this process holds `duty` (EVICTION, SEARCH_SYNC, ROOT_REFRESH):
        True once it has run (its exception, if any, raised); False, without running it,
        where another process holds the duty."""
        ...


class FetchLocks(Protocol):
    def fetching(self, key: str) -> AbstractAsyncContextManager[bool]:
        """Waits until no other process fetches blob `key`, then keeps the others off it
        while the block runs. Yields whether another process may have stored the blob
        meanwhile: if so, look in the store before fetching it again."""
        ...


class LocalFetchLocks:
    """One process is the whole cache: its Flights already fetch each blob once."""

    @asynccontextmanager
    async def fetching(self, key: str) -> AsyncIterator[bool]:
        yield False


class LocalBlobLeases:
    """Blob leases of one process: counts in memory, deletions as events."""

    def __init__(self) -> None:
        self._leased: Counter[str] = Counter()
        self._deleting: dict[str, asyncio.Event] = {}  # set once the deletion is over

    def is_deleting(self, key: str) -> bool:
        return key in self._deleting

    async def acquire(self, key: str) -> bool:
        if key in self._deleting:
            return False
        self._leased[key] += 1
        return True

    def release(self, key: str) -> None:
        self._leased[key] -= 1
        if self._leased[key] <= 0:
            del self._leased[key]

    @asynccontextmanager
    async def deleting(self, key: str) -> AsyncIterator[bool]:
        # No await before the key is marked: nothing can lease it between the check and
        # the mark.
        if self._leased[key] > 0 or key in self._deleting:
            yield False
            return
        done = asyncio.Event()
        self._deleting[key] = done
        try:
            yield True
        finally:
            del self._deleting[key]
            done.set()

    async def wait_until_deleted(self, key: str) -> None:
        if (deleting := self._deleting.get(key)) is not None:
            await deleting.wait()


class LocalDuties:
    """One process is the whole of bodega: it holds every duty."""

    async def run(self, duty: str, work: Callable[[], Awaitable[object]]) -> bool:
        await work()
        return True
