"""Keeping the order of one process's operations on a key over a pool of connections."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager


class InOrder:
    """Operations on one key run one at a time, in the order they were asked (asyncio's
    locks are fair). SQLite's store has this from its one connection; a pool loses it, and
    bodega writes some records behind the answer (a page, a file upstream removed) that
    the next request reads."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._holders: Counter[Hashable] = Counter()

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._holders[key] += 1
        try:
            async with lock:
                yield
        finally:
            self._holders[key] -= 1
            if not self._holders[key]:
                del self._holders[key], self._locks[key]
