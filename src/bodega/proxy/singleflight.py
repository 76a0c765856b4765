"""One piece of work per key, however many callers ask at once, and none of them can cancel it:
the in-process Flights (proxy/coordination.py)."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Runs `work()` once per key at a time; concurrent callers share its result.

    The work runs in a task owned by this object, so a caller that goes away (a client
    hanging up) does not cancel it for the others; `close()` cancels what is left.
    """

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Task[T]] = {}

    def run(self, key: str, work: Callable[[], Awaitable[T]]) -> asyncio.Task[T]:
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(work())
            self._running[key] = task
            task.add_done_callback(lambda _: self._running.pop(key, None))
        return task

    async def call(self, key: str, work: Callable[[], Awaitable[T]]) -> T:
        return await asyncio.shield(self.run(key, work))

    def running(self, key: str) -> asyncio.Task[T] | None:
        return self._running.get(key)

    async def close(self) -> None:
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
