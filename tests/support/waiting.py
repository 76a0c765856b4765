"""Waiting, boundedly, for what bodega does behind a response (a page's store write, a blob's
commit, a background sync): polls instead of sleeping a guessed time."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
_POLL = 0.05


async def eventually(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], seconds: float = 30.0
) -> T:
    """The first value of `probe()` that `done` accepts, within `seconds`."""
    deadline = time.monotonic() + seconds
    while not done(value := await probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r} after {seconds:g} s")
        await asyncio.sleep(_POLL)
    return value


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Until `condition()` holds, within `seconds` (for sync tests)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(_POLL)
