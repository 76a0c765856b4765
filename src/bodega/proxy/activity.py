"""Whether clients are being served, so that bodega's own background work waits its turn.

On a small machine the CPU that bodega spends on itself during an installer's burst is
taken from that burst: metadata extraction took a third of bodega's CPU in a cold
`uv pip compile` through a far upstream, and made it 1.3x slower, though no client waits
for its result (bench/README.md). So background work waits until the server is quiet: no
client request in flight for `QUIET` seconds. A server that is never quiet still gets it
done: each piece waits no longer than its own deadline.

Waiting costs nothing while clients are served: one event, set by one timer once the last
request has ended and nothing has started for `QUIET` seconds; no waiter polls.
"""

import asyncio
import contextlib
import math
import time
from collections.abc import Callable

# Long enough to span the gaps within an installer's burst (its requests come in waves a few
# milliseconds apart), short enough that work queued by a burst starts right after it.
QUIET = 0.05
# How long a piece of background work waits for quiet before it goes ahead anyway (a server
# that is never quiet): the backlog of one burst is a few seconds of work at most.
LONGEST_WAIT = 5.0


class ClientActivity:
    """Counts the client requests in flight; tells background work when none have been."""

    def __init__(self, *, quiet: float = QUIET, clock: Callable[[], float] = time.monotonic):
        self._quiet_for = quiet
        self._clock = clock
        self._in_flight = 0
        self._last_ended = -math.inf
        self._quiet = asyncio.Event()
        self._quiet.set()  # nothing has been served yet
        self._check: asyncio.TimerHandle | None = None

    def now(self) -> float:
        """The clock deadlines are read on."""
        return self._clock()

    def started(self) -> None:
        """A client request arrived."""
        self._in_flight += 1
        self._quiet.clear()

    def ended(self) -> None:
        """A client request was answered (or failed, or was cut)."""
        self._in_flight -= 1
        self._last_ended = self._clock()
        if self._in_flight == 0 and self._check is None:
            self._check = asyncio.get_running_loop().call_later(self._quiet_for, self._recheck)

    async def until_quiet(self, deadline: float) -> None:
        """Returns once no client request has been in flight for `QUIET` seconds, or once
        `now()` passes `deadline`, whichever comes first."""
        if self._quiet.is_set():
            return
        remaining = deadline - self._clock()
        if remaining <= 0:
            return
        with contextlib.suppress(TimeoutError):  # never quiet: the work goes ahead anyway
            await asyncio.wait_for(self._quiet.wait(), remaining)

    def _recheck(self) -> None:
        self._check = None
        if self._in_flight:
            return  # a request came in; its end schedules the next check
        still_to_wait = self._last_ended + self._quiet_for - self._clock()
        if still_to_wait > 0:
            self._check = asyncio.get_running_loop().call_later(still_to_wait, self._recheck)
        else:
            self._quiet.set()
