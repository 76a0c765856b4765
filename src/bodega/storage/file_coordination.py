"""Coordination between the worker processes of one bodega (`--workers`) on one machine:
the ports `FetchLocks` and `Duties` (proxy/coordination.py) on file locks in the data dir.

Both use locks of an open file description (flock, and Linux's OFD record locks), never
POSIX process locks: those of one process never conflict with each other and all go when
any descriptor of the file closes. A lock goes with its holder: a worker killed with -9
lets go of everything at once, so no lock outlives a crash and none needs a lease.

A blob's fetch lock is one byte of `fetches.lock`, at an offset made of its hash. A
worker that finds the byte locked polls (2 ms, doubling up to 20 ms: there is no
notification between processes here) and waits WAIT_MOST at most, as a replica does on
PostgreSQL (storage/postgres_fetches.py), because its clients get no byte meanwhile.
Then it looks in the store: the holder commits and records the blob before it lets go.

Taking or freeing a lock that is free is one fcntl call that never waits for a disk, so
it runs on the event loop, as reading the clock does; waiting is done by polling.
"""

import asyncio
import fcntl
import hashlib
import logging
import os
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

log = logging.getLogger(__name__)

FETCHES_FILE = "fetches.lock"
DUTIES_FILE = "duties.lock"
RETRY_FIRST = 0.002  # seconds before a waiter tries the lock again
RETRY_MOST = 0.02  # ... and at most between tries: the most a waiter loses to polling
WAIT_MOST = 10.0  # seconds a worker waits for another's download before fetching itself
_OFFSETS = 1 << 62  # offsets a blob's byte may take: collisions are out of reach

# struct flock (fcntl(2)) on 64-bit Linux: type, whence, start, length, pid, padding.
_FLOCK = struct.Struct("@hhqqi4x")


def lock_offset(key: str) -> int:
    """The byte of `fetches.lock` that stands for blob `key`."""
    digest = hashlib.sha256(b"bodega fetch " + key.encode()).digest()
    return int.from_bytes(digest[:8], "big") % _OFFSETS


class FileFetchLocks:
    def __init__(self, directory: Path, *, wait_most: float = WAIT_MOST) -> None:
        self._fd = os.open(directory / FETCHES_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._wait_most = wait_most

    @asynccontextmanager
    async def fetching(self, key: str) -> AsyncIterator[bool]:
        offset = lock_offset(key)
        if not await self._take(key, offset):
            yield True  # fetched beside the other worker: nothing to let go of
            return
        try:
            yield True  # another worker may have stored it before this one took the lock
        finally:
            _set_lock(self._fd, fcntl.F_UNLCK, offset)

    async def _take(self, key: str, offset: int) -> bool:
        delay = RETRY_FIRST
        deadline = time.monotonic() + self._wait_most
        while not _set_lock(self._fd, fcntl.F_WRLCK, offset):
            left = deadline - time.monotonic()
            if left <= 0:
                log.info("fetching %s beside another worker: its download is slow", key)
                return False
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, RETRY_MOST)
        return True

    async def close(self) -> None:
        """Let go of every lock: closing the descriptor frees them (no disk is waited for).
        Closing again does nothing."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


class FileDuties:
    """The worker that holds `duties.lock` runs every duty; the others try again at each
    run, so when it dies the next worker to run a duty takes them over."""

    def __init__(self, directory: Path) -> None:
        self._fd = os.open(directory / DUTIES_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._is_holder = False

    async def run(self, duty: str, work: Callable[[], Awaitable[object]]) -> bool:
        if not self._is_holder:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            self._is_holder = True
            log.info("duties: this worker runs the background duties")
        await work()
        return True

    async def close(self) -> None:
        """Let go of the duties, for another worker to take. Closing again does nothing."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


def _set_lock(fd: int, kind: int, offset: int) -> bool:
    """Lock (F_WRLCK) or free (F_UNLCK) one byte without waiting: False when another open
    of the file holds it."""
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _FLOCK.pack(kind, os.SEEK_SET, offset, 1, 0))
    except (BlockingIOError, PermissionError):
        return False
    return True
