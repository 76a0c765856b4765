"""Running the server: bind first (so a taken port is one clear line), then serve until a
signal asks to stop.

Stopping is graceful: the listening socket closes at once, responses in flight get up to
`shutdown_timeout` seconds to finish (then they are cut, never completed falsely; the
whole stop of the server is bounded by that setting), and
downloads that no response waits for any more are discarded with their spool files when the
services close; nothing unverified is ever published.
"""

import asyncio
import errno
import logging
import signal
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager

from aiohttp import web

from bodega.config import Settings
from bodega.errors import ConfigError
from bodega.services import Services, open_services
from bodega.web.access_log import AccessLogger
from bodega.web.app import create_app
from bodega.web.notify import notify
from bodega.web.protocol import Runner

log = logging.getLogger(__name__)

_IO_THREADS = 64  # threads mostly wait on the disk: many are cheap, too few serialize it


def bind_socket(
    host: str, port: int, *, reuse_port: bool = False, listen: bool = True
) -> socket.socket:
    """The server's socket, bound (a taken port is a ConfigError) and listening.
    `reuse_port`: one of several sockets on the port (--workers), the kernel spreading
    connections across those that listen."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} on {host} is already in use") from None
        raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    if listen:
        sock.listen(1024)
    sock.setblocking(False)
    return sock


@asynccontextmanager
async def running_server(settings: Settings) -> AsyncIterator[str]:
    """bodega accepting requests for the duration of the block; yields its base URL."""
    async with serving(settings) as (url, _):
        yield url


@asynccontextmanager
async def serving(settings: Settings, *, worker: int = 0) -> AsyncIterator[tuple[str, Services]]:
    """As running_server, with the services that answer the requests (for tests that
    hold or observe their background work). `worker`: this process is that one of
    --workers (web/workers.py), on a port the supervisor holds."""
    sock = bind_socket(settings.host, settings.port, reuse_port=bool(worker))
    # Every disk and database step runs in a worker thread; the default pool (cores + 4
    # threads) lets a burst of fsyncs stall the spool writes and reads of every download.
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=_IO_THREADS, thread_name_prefix="bodega-io")
    )
    try:
        async with open_services(settings, worker=worker) as services:
            runner = Runner(
                create_app(services),
                header_timeout=settings.header_timeout,
                access_log_class=AccessLogger,
                handle_signals=False,
                shutdown_timeout=settings.shutdown_timeout,
                # A handler whose client hung up stops at once instead of holding a shutdown
                # for the whole bound; the work it waited for is shielded (SingleFlight), so a
                # download goes on for everyone else (threat 28).
                handler_cancellation=True,
            )
            await runner.setup()
            try:
                await web.SockSite(runner, sock).start()
                host, port = sock.getsockname()[:2]
                yield f"http://{url_host(host)}:{port}/", services
            finally:
                await _cleanup_within(runner, settings.shutdown_timeout)
    finally:
        sock.close()


async def serve(
    settings: Settings, on_ready: Callable[[str, Services], None], *, worker: int = 0
) -> None:
    """Serve until SIGTERM or SIGINT; `on_ready` gets the URL (and what serves it) once
    requests are accepted."""
    stop = asyncio.Event()
    # Handlers go in before the socket is bound, so no signal can arrive with the default
    # (kill at once) action still in place; they stay during the bounded shutdown.
    with signals_call(stop.set):
        async with serving(settings, worker=worker) as (url, services):
            on_ready(url, services)
            await asyncio.to_thread(notify, f"READY=1\nSTATUS=serving at {url}simple/")
            await stop.wait()
            await asyncio.to_thread(notify, "STOPPING=1")
            log.info(
                "stopping: no new connections; responses in flight get up to %g s to finish",
                settings.shutdown_timeout,
            )


async def _cleanup_within(runner: Runner, bound: float) -> None:
    """runner.cleanup(), with the responses still in flight cut when `bound` seconds pass.

    aiohttp waits up to its shutdown_timeout for handlers in flight, then "cancels" them
    and waits as long again; but that cancel reaches only a request's body, so a handler
    blocked writing to a slow client used both waits: twice the setting. Aborting the
    connections at the bound makes any blocked write fail at once, and handler
    cancellation ends its handler.
    """
    cut = asyncio.get_running_loop().call_later(bound, _abort_connections, runner)
    try:
        await runner.cleanup()
    finally:
        cut.cancel()


def _abort_connections(runner: Runner) -> None:
    server = runner.server
    if server is None:
        return
    for connection in server.connections:
        if connection.transport is not None:
            connection.transport.abort()


@contextmanager
def signals_call(callback: Callable[[], None]) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, callback)
    try:
        yield
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
