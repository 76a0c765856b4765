"""Whether this bodega can do its work: its store takes writes, its object store (if its
blobs are in one) answers, and upstream answers (or bodega is offline and needs none). For
`/-/ready`, which orchestrators poll often, so the upstream probe's result is kept for a few
seconds rather than asked every time."""

import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bodega.errors import StorageError, UpstreamError
from bodega.storage.blobs import BlobStore, RemoteBlobs
from bodega.storage.metadata import StoreHealth
from bodega.upstream import Upstream

_PROBE_TIMEOUT = 3.0


class Readiness:
    def __init__(
        self,
        store: StoreHealth,
        upstream: Upstream,
        spool_dir: Path,
        *,
        remember: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        blobs: BlobStore | None = None,
    ) -> None:
        self._store = store
        # Only a store across a network is probed: the data dir's is the spool's disk.
        self._remote = blobs if isinstance(blobs, RemoteBlobs) else None
        self._upstream = upstream
        self._spool_dir = spool_dir
        self._remember = remember
        self._clock = clock
        self._upstream_state: tuple[float, str] | None = None  # (when, "ok" or the problem)

    async def check(self) -> dict[str, str]:
        """Each part's state: "ok", "offline", or what is wrong with it."""
        states = {"store": await self._store_state()}
        if self._remote is not None:
            states["blobs"] = await self._blobs_state(self._remote)
        states["upstream"] = await self._upstream_state_now()
        return states

    async def _blobs_state(self, blobs: RemoteBlobs) -> str:
        try:
            await asyncio.wait_for(blobs.probe(), _PROBE_TIMEOUT)
        except StorageError as error:
            return str(error)
        except TimeoutError:
            return f"the object store did not answer in {_PROBE_TIMEOUT:g}s"
        return "ok"

    async def _store_state(self) -> str:
        if not await asyncio.to_thread(_can_write_in, self._spool_dir):
            return f"cannot write in {self._spool_dir}"
        if not await self._store.is_writable():
            return "the metadata store does not take writes"
        return "ok"

    async def _upstream_state_now(self) -> str:
        if self._upstream.is_offline:
            return "offline"
        now = self._clock()
        if self._upstream_state is None or now - self._upstream_state[0] > self._remember:
            try:
                await self._upstream.probe(_PROBE_TIMEOUT)
                state = "ok"
            except UpstreamError as error:
                state = str(error)
            self._upstream_state = (now, state)
        return self._upstream_state[1]


def _can_write_in(directory: Path) -> bool:
    # The spool dir is on the blobs' filesystem: a download that cannot be spooled fails.
    try:
        with tempfile.TemporaryFile(dir=directory):
            return True
    except OSError:
        return False
