"""Each column of the table: how to start it on a fresh data dir, where its index is, how to stop.

A server is started fresh (new data dir, new port) for every figure group that needs it cold, so
no column carries a warm cache from one group into the next.
"""

import base64
import json
import socket
import subprocess
import urllib.parse
import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING

from fetch import send
from processes import Process, spawn, wait_until_answers

if TYPE_CHECKING:  # the shared backends load the test suite's starters: only when used
    from backends import SharedBackends

START_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server(ABC):
    """A column: one proxy (or nginx itself) in front of the upstream."""

    name: str
    index_path: str  # the simple index under the server's root URL
    ready_path: str  # any HTTP answer here means the server is up
    tiny_path: str  # a cheap request whose latency under load shows a blocked event loop
    has_cache = True  # a warm run differs from a cold one

    def __init__(self, upstream_url: str, environment: dict[str, str]) -> None:
        self.upstream_url = upstream_url
        self.environment = environment
        self.port = 0
        self.process: Process | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def index_url(self) -> str:
        return self.base_url + self.index_path

    @property
    def peak_rss(self) -> int | None:
        return self.process.rss.peak if self.process else None

    def point_at(self, upstream_url: str) -> None:
        """The upstream the next `start` uses (loopback nginx or the networked one)."""
        self.upstream_url = upstream_url

    @abstractmethod
    def command(self, data_dir: Path) -> list[str]: ...

    def prepare(self, data_dir: Path) -> None:
        """Work done before the clock starts (e.g. initialising a database)."""
        return

    def configure(self) -> None:
        """Work done after the server answers (e.g. pointing a mirror at the upstream)."""
        return

    def extra_environment(self, data_dir: Path) -> dict[str, str]:
        return {}

    def start(self, data_dir: Path) -> float:
        """Start on a fresh data dir; returns seconds from exec to the first HTTP answer."""
        data_dir.mkdir(parents=True, exist_ok=True)
        self.prepare(data_dir)
        self.port = free_port()
        environment = {**self.environment, **self.extra_environment(data_dir)}
        self.process = spawn(
            self.name, self.command(data_dir), environment, data_dir.parent / f"{self.name}.log"
        )
        try:
            seconds = wait_until_answers(
                self.base_url + self.ready_path, self.process, START_TIMEOUT
            )
            self.configure()
        except BaseException:
            self.stop()
            raise
        return seconds

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def backend_cpu_seconds(self) -> float | None:
        """CPU time used so far by the backends this server shares with others, if any."""
        return None


class NginxDirect(Server):
    """The ceiling: clients talk to the upstream nginx itself. Nothing to start."""

    name = "nginx"
    index_path = "/simple/"
    ready_path = "/"
    tiny_path = "/"
    has_cache = False

    def __init__(self, upstream_url: str, environment: dict[str, str]) -> None:
        super().__init__(upstream_url, environment)
        self.point_at(upstream_url)

    def point_at(self, upstream_url: str) -> None:
        super().point_at(upstream_url)
        self.port = urllib.parse.urlsplit(upstream_url).port or 80

    def command(self, data_dir: Path) -> list[str]:
        return []

    def start(self, data_dir: Path) -> float:
        return 0.0

    def stop(self) -> None:
        pass


class Bodega(Server):
    name = "bodega"
    index_path = "/simple/"
    ready_path = "/-/health"
    tiny_path = "/-/health"

    def __init__(
        self,
        upstream_url: str,
        environment: dict[str, str],
        python: str,
        name: str = "bodega",
        workers: int = 1,
    ) -> None:
        super().__init__(upstream_url, environment)
        self.python = python
        self.name = name  # "bodega-base": a baseline checkout measured in the same run
        self.workers = workers  # --workers: more than 1 only for the bodega-workers column

    def command(self, data_dir: Path) -> list[str]:
        return [
            self.python,
            "-m",
            "bodega",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(data_dir),
            "--upstream",
            self.upstream_url,
            "--index-ttl",
            "1800",
            *(("--workers", str(self.workers)) if self.workers > 1 else ()),
        ]


class Proxpi(Server):
    """proxpi as its container image runs it: gunicorn --preload, one sync worker."""

    name = "proxpi"
    index_path = "/index/"
    ready_path = "/health"
    tiny_path = "/health"

    def __init__(self, upstream_url: str, environment: dict[str, str], bin_dir: Path) -> None:
        super().__init__(upstream_url, environment)
        self.bin_dir = bin_dir

    def extra_environment(self, data_dir: Path) -> dict[str, str]:
        # proxpi reads these at import time (proxpi/_cache.py).
        return {"PROXPI_INDEX_URL": self.upstream_url, "PROXPI_CACHE_DIR": str(data_dir)}

    def command(self, data_dir: Path) -> list[str]:
        return [
            str(self.bin_dir / "gunicorn"),
            "--preload",
            "--bind",
            f"127.0.0.1:{self.port}",
            "proxpi.server:app",
        ]


class Devpi(Server):
    """devpi-server with its root/pypi mirror pointed at the upstream (devpi-web if installed)."""

    index_path = "/root/pypi/+simple/"
    ready_path = "/+api"
    tiny_path = "/+api"

    def __init__(
        self, upstream_url: str, environment: dict[str, str], bin_dir: Path, name: str
    ) -> None:
        super().__init__(upstream_url, environment)
        self.bin_dir = bin_dir
        self.name = name
        self.password = uuid.uuid4().hex

    def prepare(self, data_dir: Path) -> None:
        subprocess.run(
            [
                str(self.bin_dir / "devpi-init"),
                "--serverdir",
                str(data_dir),
                "--root-passwd",
                self.password,
            ],
            check=True,
            env=self.environment,
            capture_output=True,
        )

    def command(self, data_dir: Path) -> list[str]:
        return [
            str(self.bin_dir / "devpi-server"),
            "--serverdir",
            str(data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]

    def configure(self) -> None:
        # What `devpi index root/pypi mirror_url=...` sends: a PATCH of key=value operations.
        credentials = base64.b64encode(f"root:{self.password}".encode()).decode()
        send(
            self.base_url + "/root/pypi",
            "PATCH",
            json.dumps([f"mirror_url={self.upstream_url}"]).encode(),
            {
                "Authorization": f"Basic {credentials}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )


class SharedBodega(Bodega):
    """bodega on the shared backends: metadata in PostgreSQL, files in a SeaweedFS bucket,
    as each replica of a cluster runs; a new database and bucket prefix for every start.
    `local_cache_size` (e.g. "1G"): hits also kept on the local disk, sent by sendfile."""

    def __init__(
        self,
        upstream_url: str,
        environment: dict[str, str],
        python: str,
        backends: "SharedBackends",
        *,
        name: str,
        local_cache_size: str = "",
    ) -> None:
        super().__init__(upstream_url, environment, python, name=name)
        self.backends = backends
        self.local_cache_size = local_cache_size
        self._database = ""
        self._blob_store = ""

    def prepare(self, data_dir: Path) -> None:
        self._database, self._blob_store = self.backends.fresh()

    def extra_environment(self, data_dir: Path) -> dict[str, str]:
        return self.backends.environment()

    def command(self, data_dir: Path) -> list[str]:
        shared = ["--database", self._database, "--blob-store", self._blob_store]
        if self.local_cache_size:
            shared += ["--local-cache-size", self.local_cache_size]
        return [*super().command(data_dir), *shared]

    def backend_cpu_seconds(self) -> float | None:
        return self.backends.cpu_seconds()
