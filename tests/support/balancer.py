"""A loopback TCP load balancer for cluster tests: each new connection goes to the next
replica in turn (round robin), and to the one after when a replica refuses (a dead one), as a
load balancer's passive health check would. It runs on a thread and event loop of its own,
like FakeIndex, so tests on any loop (or none) can use it."""

import asyncio
import contextlib
import itertools
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

_CHUNK = 64 * 1024


class Balancer:
    def __init__(self, backends: list[tuple[str, int]]) -> None:
        self._backends = list(backends)
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self.connections: Counter[tuple[str, int]] = Counter()  # proxied, per replica
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def set_backends(self, backends: list[tuple[str, int]]) -> None:
        """The replicas new connections go to (open ones stay where they are)."""
        with self._lock:
            self._backends = list(backends)

    def start(self) -> None:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        self.port = future.result(timeout=10)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _order(self) -> list[tuple[str, int]]:
        with self._lock:
            backends = self._backends
            start = next(self._turn) % len(backends)
        return backends[start:] + backends[:start]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for host, port in self._order():
            try:
                backend_reader, backend_writer = await asyncio.open_connection(host, port)
            except OSError:
                continue  # a replica that is down: the next one
            self.connections[(host, port)] += 1
            await asyncio.gather(
                _pipe(reader, backend_writer),
                _pipe(backend_reader, writer),
                return_exceptions=True,
            )
            return
        writer.close()  # no replica answers


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.transport.abort()  # a replica killed mid-response: its client sees a cut
    finally:
        if reader.at_eof() or writer.is_closing():
            writer.close()


@contextmanager
def balancer(backends: list[tuple[str, int]]) -> Iterator[Balancer]:
    running = Balancer(backends)
    running.start()
    try:
        yield running
    finally:
        running.stop()
