"""The client suite: real installers, pinned in venvs of their own, through a real bodega
(a subprocess) in front of the fake upstream index."""

import time

from tests.support.servers import BodegaProcess


def served(server: BodegaProcess, request_line: str) -> bool:
    """Whether bodega's access log shows this request line answered 200. The log is read on
    another thread, so a line may land just after the client exits: wait a little for it."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(f'"{request_line} HTTP/1.1" 200' in line for line in list(server.log)):
            return True
        time.sleep(0.05)
    return False
