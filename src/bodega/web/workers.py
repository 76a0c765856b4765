"""`bodega serve --workers N`: one supervisor process, and N worker processes that serve
one port and one cache.

One process is CPU-bound during a cold install's burst (bench/README.md): a second one on
the machine's other core serves it faster. The supervisor does what must happen once
(services.hold_data_dir: the data dir's lock, spool clean-up, the database's migration,
the first admin), reserves the port, starts the workers, says the server is ready once
all of them are, restarts a worker that ends, and on SIGTERM or SIGINT stops them all.

Each worker is `bodega serve` again, with the same options, told by WORKER_ENV who it is.
It binds a socket of its own on the port with SO_REUSEPORT, so the kernel spreads
connections across the workers; one that dies takes only the connections queued on its
own socket with it. Workers share the cache's store and one upstream download per file
(storage/file_coordination.py, or PostgreSQL's locks with --database). Workers inherit the
data dir's lock, so the dir stays locked until the last of them has ended, and each ends
with the supervisor (PR_SET_PDEATHSIG), even one killed with -9.
"""

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bodega.config import Settings
from bodega.errors import ConfigError
from bodega.services import DataDirHold, Services, hold_data_dir
from bodega.web.notify import notify
from bodega.web.server import bind_socket, serve, signals_call, url_host
from bodega.web.worker_metrics import METRICS_DIR, clear_worker_metrics

log = logging.getLogger(__name__)

WORKER_ENV = "_BODEGA_WORKER"  # "number port ready-fd supervisor-pid", set for workers only
START_MOST = 60.0  # seconds a worker gets to accept requests (a database may be slow to answer)
LIVED_LONG = 10.0  # seconds: a worker that ran this long is restarted at once
RESTART_MOST = 10.0  # seconds between restarts of a worker that keeps failing at start
STOP_MARGIN = 5.0  # seconds beyond --shutdown-timeout before a stopping worker is killed
_PR_SET_PDEATHSIG = 1

OnReady = Callable[[str, str | None, bool], None]  # URL, first admin token, open to all


@dataclass(frozen=True, slots=True)
class WorkerRole:
    """This process as one worker of a supervisor."""

    number: int  # 1..N
    port: int
    ready_fd: int  # written to and closed once requests are accepted
    supervisor_pid: int

    def environment(self) -> str:
        return f"{self.number} {self.port} {self.ready_fd} {self.supervisor_pid}"


def worker_role(environ: Mapping[str, str]) -> WorkerRole | None:
    """Who this process is, when a supervisor started it."""
    raw = environ.get(WORKER_ENV)
    if not raw:
        return None
    number, port, ready_fd, supervisor_pid = (int(part) for part in raw.split())
    return WorkerRole(number, port, ready_fd, supervisor_pid)


async def serve_as_worker(settings: Settings, role: WorkerRole) -> None:
    """Serve on the supervisor's port until SIGTERM; the supervisor's end is a SIGTERM."""
    _end_with_parent(role.supervisor_pid)

    def ready(url: str, services: Services) -> None:
        os.write(role.ready_fd, b"ready\n")
        os.close(role.ready_fd)

    os.environ.pop(WORKER_ENV, None)  # never handed on to what this process starts
    await serve(settings, ready, worker=role.number)


def _end_with_parent(supervisor_pid: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != supervisor_pid:  # it ended before the line above: end now
        sys.exit(1)


async def supervise(settings: Settings, on_ready: OnReady) -> None:
    """Run settings.workers workers until SIGTERM or SIGINT."""
    if not sys.platform.startswith("linux"):
        # Elsewhere SO_REUSEPORT need not spread connections, and OFD locks do not exist.
        raise ConfigError("--workers above 1 needs Linux")
    stop = asyncio.Event()
    with signals_call(stop.set):
        async with hold_data_dir(settings) as held:
            # The numbers of an earlier start's workers are not this start's.
            await asyncio.to_thread(clear_worker_metrics, settings.data_dir / METRICS_DIR)
            reservation = _reserve_port(settings.host, settings.port)
            try:
                port = reservation.getsockname()[1]
                workers = _Workers(settings, port, held)
                try:
                    await workers.start()
                    url = f"http://{url_host(settings.host)}:{port}/"
                    on_ready(url, held.first_admin_token, held.is_open_to_everyone)
                    await asyncio.to_thread(notify, f"READY=1\nSTATUS=serving at {url}simple/")
                    await workers.keep_running(stop)
                    await asyncio.to_thread(notify, "STOPPING=1")
                finally:
                    await workers.stop()
            finally:
                reservation.close()


def _reserve_port(host: str, port: int) -> socket.socket:
    """The port, checked free and held for the workers: a socket bound with SO_REUSEPORT
    that never listens, so the kernel never hands it a connection.

    A port bound with SO_REUSEPORT can be shared by any process of the same user that asks
    for it so too; bound first without it, a port some other server holds (a second bodega
    on another data dir included) is the clear error it is without --workers."""
    probe = bind_socket(host, port, listen=False)
    chosen = probe.getsockname()[1]
    probe.close()
    return bind_socket(host, chosen, reuse_port=True, listen=False)


@dataclass(slots=True)
class _Worker:
    number: int
    process: "asyncio.subprocess.Process"
    started_at: float


class _Workers:
    def __init__(self, settings: Settings, port: int, held: DataDirHold) -> None:
        self._settings = settings
        self._port = port
        self._held = held
        self._running: dict[int, _Worker] = {}
        self._stopping = False

    async def start(self) -> None:
        """Every worker started and accepting requests; ConfigError if one ends first (its
        own error is on stderr, above)."""
        numbers = range(1, self._settings.workers + 1)
        started = await asyncio.gather(*(self._start(n) for n in numbers), return_exceptions=True)
        for outcome in started:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _start(self, number: int) -> None:
        read_end, write_end = os.pipe()
        role = WorkerRole(number, self._port, write_end, os.getpid())
        environment = {**os.environ, WORKER_ENV: role.environment()}
        environment.pop("NOTIFY_SOCKET", None)  # systemd hears from the supervisor alone
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bodega",
                *sys.argv[1:],
                env=environment,
                stdin=subprocess.DEVNULL,
                pass_fds=(write_end, self._held.lock_fd),
            )
        except OSError:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self._running[number] = _Worker(number, process, time.monotonic())
        # The pipe's end comes when the worker is ready (it closes its end) or has ended.
        reading = asyncio.ensure_future(asyncio.to_thread(_read_to_end, read_end))
        try:
            said = await asyncio.wait_for(asyncio.shield(reading), START_MOST)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await reading
            raise ConfigError(f"worker {number} did not start within {START_MOST:g} s") from None
        if b"ready" not in said:
            status = await process.wait()
            raise ConfigError(f"worker {number} ended as it started (exit status {status})")
        log.info("worker %d (pid %d) is serving", number, process.pid)

    async def keep_running(self, stop: asyncio.Event) -> None:
        """Until `stop`: a worker that ends is started again, at once if it had served a
        while, else after a pause that grows, so a worker that cannot start does not spin."""
        watchers = [asyncio.ensure_future(self._watch(n, stop)) for n in list(self._running)]
        try:
            await stop.wait()
        finally:
            self._stopping = True
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)

    async def _watch(self, number: int, stop: asyncio.Event) -> None:
        pause = 0.0
        while True:
            worker = self._running[number]
            status = await worker.process.wait()
            if self._stopping or stop.is_set():
                return
            lived = time.monotonic() - worker.started_at
            pause = 0.0 if lived >= LIVED_LONG else min(max(pause * 2, 0.5), RESTART_MOST)
            log.warning(
                "worker %d (pid %d) ended (exit status %d) after %.0f s; starting it again",
                number,
                worker.process.pid,
                status,
                lived,
            )
            await asyncio.sleep(pause)
            try:
                await self._start(number)
            except ConfigError as error:
                log.warning("%s; trying again", error)

    async def stop(self) -> None:
        """SIGTERM to every worker; those still running after --shutdown-timeout and a
        margin are killed."""
        self._stopping = True
        running = [w.process for w in self._running.values() if w.process.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        bound = self._settings.shutdown_timeout + STOP_MARGIN
        waits = [asyncio.wait_for(process.wait(), bound) for process in running]
        for outcome, process in zip(
            await asyncio.gather(*waits, return_exceptions=True), running, strict=True
        ):
            if isinstance(outcome, TimeoutError):
                log.warning("worker pid %d did not stop in time: killed", process.pid)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()


def _read_to_end(fd: int) -> bytes:
    """What a worker wrote to its end of the pipe before it closed it (or ended)."""
    said = b""
    try:
        while chunk := os.read(fd, 64):
            said += chunk
    finally:
        os.close(fd)
    return said
