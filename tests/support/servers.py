"""bodega itself, started for tests: in this process on a real socket, or as a subprocess."""

import dataclasses
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from bodega.config import Settings
from bodega.services import Services
from bodega.web.server import running_server, serving

_READY = re.compile(r"at (http://\S+/)simple/")


def make_settings(*, data_dir: Path, upstream: str, **overrides: Any) -> Settings:
    settings = Settings(
        host="127.0.0.1",
        port=0,
        data_dir=data_dir,
        upstream=upstream,
        index_ttl=600.0,
        revalidate_after=30.0,
        offline=False,
        upstream_timeout=5.0,
        download_deadline=600.0,
        search_refresh=0.0,  # no background root-list fetches unless a test asks
        search_first_refresh=0.0,  # and none waits a minute when one does
        shutdown_timeout=5.0,
        header_timeout=20.0,
        max_cache_size=0,
    )
    return dataclasses.replace(settings, **overrides)


@asynccontextmanager
async def bodega_in_process(settings: Settings) -> AsyncIterator[str]:
    """The real server on 127.0.0.1, in the test's event loop; yields its base URL."""
    async with running_server(settings) as url:
        yield url


@asynccontextmanager
async def bodega_and_services(settings: Settings) -> AsyncIterator[tuple[str, Services]]:
    """As bodega_in_process, with the services behind it, for tests that hold or wait for
    its background work."""
    async with serving(settings) as started:
        yield started


class BodegaProcess:
    """`python -m bodega serve` as a child process, for tests that kill or restart it."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str] | None = None,
        command: list[str] | None = None,
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        """`command` replaces `python -m bodega serve --port 0` (e.g. a container's CMD);
        `base_env` replaces the test process's environment underneath `env` (e.g. one with
        no BODEGA_* settings, as a container starts)."""
        command = [*(command or [sys.executable, "-m", "bodega", "serve", "--port", "0"]), *args]
        self.process = subprocess.Popen(
            command,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            # No background root-list fetches for search unless a test asks for them, and
            # then no minute's wait for the first.
            env={
                **(os.environ if base_env is None else base_env),
                "BODEGA_SEARCH_REFRESH": "0",
                "BODEGA_SEARCH_FIRST_REFRESH": "0",
                **(env or {}),
            },
        )
        self.banner = ""  # the line bodega announced itself with
        self.url = self._wait_until_ready()
        self.log: list[str] = []
        # Keep draining stderr so the child never blocks on a full pipe.
        self._drain = threading.Thread(target=self._read_rest, daemon=True)
        self._drain.start()

    def _wait_until_ready(self) -> str:
        assert self.process.stderr is not None
        seen = []
        for line in self.process.stderr:
            seen.append(line)
            found = _READY.search(line)
            if found:
                self.banner = line
                return found.group(1)
        self.process.wait(timeout=10)
        raise RuntimeError("bodega did not start:\n" + "".join(seen))

    def _read_rest(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self._drain.join(timeout=5)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._drain.join(timeout=5)
        if self.process.stderr is not None:
            self.process.stderr.close()
        return self.process.returncode


@contextmanager
def bodega_process(
    data_dir: Path, upstream: str, *extra: str, env: dict[str, str] | None = None
) -> Iterator[BodegaProcess]:
    server = BodegaProcess(["--data-dir", str(data_dir), "--upstream", upstream, *extra], env)
    try:
        yield server
    finally:
        server.stop()
