"""Running the server: bind first (so a taken port is one clear line), then serve until a
signal asks to stop."""

import asyncio
import errno
import logging
import signal
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from bodega.config import Settings
from bodega.errors import ConfigError
from bodega.services import open_services
from bodega.web.app import create_app

log = logging.getLogger(__name__)

# The last field is the cache outcome the handler set (HIT, MISS, STALE, REVALIDATED; "-" for
# requests that are no cache lookup).
_ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tfs %{X-Bodega-Cache}o'


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} on {host} is already in use") from None
        raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


@asynccontextmanager
async def running_server(settings: Settings) -> AsyncIterator[str]:
    """bodega accepting requests for the duration of the block; yields its base URL."""
    sock = bind_socket(settings.host, settings.port)
    try:
        async with open_services(settings) as services:
            runner = web.AppRunner(
                create_app(services),
                access_log_format=_ACCESS_LOG_FORMAT,
                handle_signals=False,
                shutdown_timeout=5.0,
            )
            await runner.setup()
            try:
                await web.SockSite(runner, sock).start()
                host, port = sock.getsockname()[:2]
                yield f"http://{_url_host(host)}:{port}/"
            finally:
                await runner.cleanup()
    finally:
        sock.close()


async def serve(settings: Settings, on_ready: Callable[[str], None]) -> None:
    """Serve until SIGTERM or SIGINT; `on_ready` gets the URL once requests are accepted."""
    async with running_server(settings) as url:
        on_ready(url)
        await _until_signalled()


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
