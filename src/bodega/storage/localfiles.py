"""Opening local files without blocking the event loop, and without leaking them."""

import asyncio
from pathlib import Path
from typing import IO


async def open_off_loop(path: Path, mode: str) -> IO[bytes]:
    """`open(path, mode)` in a worker thread.

    When the awaiting task is cancelled (a client hanging up, a shutdown), the open still
    completes in its thread; the handle is then closed there instead of being dropped
    open (a leaked descriptor, and a ResourceWarning).
    """
    loop = asyncio.get_running_loop()
    opening = loop.run_in_executor(None, open, path, mode)
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        opening.add_done_callback(_close_result)
        raise


def _close_result(opening: "asyncio.Future[IO[bytes]]") -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()
