"""Opening local files without blocking the event loop, and without leaking them."""

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

T = TypeVar("T")


async def acquire_off_loop(acquire: Callable[[], T], release: Callable[[T], None]) -> T:
    """`acquire()` in a worker thread.

    When the awaiting task is cancelled (a client hanging up, a shutdown), the call still
    completes in its thread; what it acquired is then released (a file closed, a spool file
    removed) instead of being dropped open (a leaked descriptor, and a ResourceWarning).
    """
    loop = asyncio.get_running_loop()
    acquiring = loop.run_in_executor(None, acquire)
    try:
        return await asyncio.shield(acquiring)
    except asyncio.CancelledError:

        def release_result(done: "asyncio.Future[T]") -> None:
            if not done.cancelled() and done.exception() is None:
                release(done.result())

        acquiring.add_done_callback(release_result)
        raise


async def open_off_loop(path: Path, mode: str) -> IO[bytes]:
    """`open(path, mode)` in a worker thread, closed again if the caller is cancelled."""
    handle: IO[bytes] = await acquire_off_loop(lambda: open(path, mode), _close)  # noqa: SIM115
    return handle


def _close(handle: IO[bytes]) -> None:
    handle.close()
