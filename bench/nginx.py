"""nginx serving the tree on 127.0.0.1: the upstream of every proxy and the ceiling column.

Two server blocks share the tree. The loopback one answers at once: the ceiling. The networked
one looks like the real upstream: every request waits `latency_ms` (default 30 ms) before nginx
answers it (`bench/latency.py`), its project pages carry no core-metadata unless asked (as many
corporate mirrors serve them), and it can ignore `Range` (`max_ranges 0`) like some mirrors do.

Its access log is the upstream's ledger: a figure notes the log's size before it runs and reads
the lines added after it, which gives the upstream requests and bytes that figure caused.
"""

import contextlib
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from processes import Process, spawn, wait_until_answers
from tree import PLAIN

# Flushed at least every 100 ms; `UpstreamLog.since` waits that long before it reads.
_FLUSH_SECONDS = 0.1
_CONFIG = """\
daemon off;
{user}
worker_processes auto;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    types {{
        text/html html;
        application/vnd.pypi.simple.v1+json json;
        application/octet-stream whl gz metadata;
    }}
    default_type application/octet-stream;
    # PEP 691: content negotiation picks the JSON or the HTML page, as the real index does.
    map $http_accept $simple_index {{
        "~application/vnd\\.pypi\\.simple\\.(v1|latest)\\+json" index.json;
        default index.html;
    }}
    log_format bench '$request_uri $status $body_bytes_sent';
    access_log {prefix}/access.log bench buffer=64k flush=100ms;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        root {tree};
        location /simple/ {{
            index $simple_index;
            gzip_static on;
            add_header Vary "Accept, Accept-Encoding";
        }}
    }}
{network}}}
"""
_NETWORK = """    upstream latency {{
        server 127.0.0.1:{latency_port};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
        {delay}
        {ranges}
        location /simple/ {{
            # Not `index`: its internal redirect would run the access phase, and so the delay,
            # a second time.
            try_files $uri$simple_index $uri =404;
            gzip_static on;
            add_header Vary "Accept, Accept-Encoding";
        }}
        location = /_latency {{
            internal;
            auth_request off;
            proxy_pass http://latency;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }}
    }}
"""


@dataclass(frozen=True)
class Network:
    """How the networked upstream behaves."""

    latency_ms: float = 30.0
    core_metadata: bool = False  # whether its pages advertise PEP 658 metadata
    ignores_range: bool = False

    def describe(self) -> str:
        metadata = "with" if self.core_metadata else "no"
        ranges = ", ignores Range" if self.ignores_range else ""
        return f"{self.latency_ms:g} ms per request, {metadata} core-metadata{ranges}"


@dataclass(frozen=True)
class LogTotals:
    requests: int
    bytes: int
    paths: tuple[str, ...]

    def count(self, suffix: str) -> int:
        return sum(1 for path in self.paths if path.endswith(suffix))

    def count_under(self, prefix: str) -> int:
        return sum(1 for path in self.paths if path.startswith(prefix))


class UpstreamLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        time.sleep(_FLUSH_SECONDS * 3)
        return self.path.stat().st_size if self.path.exists() else 0

    def since(self, offset: int) -> LogTotals:
        time.sleep(_FLUSH_SECONDS * 3)
        with self.path.open("rb") as log:
            log.seek(offset)
            lines = log.read().decode(errors="replace").splitlines()
        paths: list[str] = []
        total_bytes = 0
        for line in lines:
            parts = line.split(" ")
            if len(parts) == 3:
                paths.append(parts[0])
                total_bytes += int(parts[2]) if parts[2].isdigit() else 0
        return LogTotals(requests=len(paths), bytes=total_bytes, paths=tuple(paths))


def _wait_for_port(port: int, process: Process, timeout: float = 15) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if not process.is_running:
            raise RuntimeError(f"{process.name} exited early:\n{process.log_tail()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.02)
    raise RuntimeError(f"{process.name} not listening after {timeout:.0f} s")


class Nginx:
    """One nginx for the whole run; `url` is the upstream's simple index."""

    def __init__(
        self,
        binary: str,
        tree: Path,
        prefix: Path,
        ports: tuple[int, int, int],
        network: Network | None = None,
    ) -> None:
        """`ports`: loopback, networked, the latency server; `network=None`: loopback only."""
        self.binary = binary
        self.tree = tree
        self.prefix = prefix
        self.port, self.network_port, self.latency_port = ports
        self.network = network
        self.log = UpstreamLog(prefix / "access.log")
        self.process: Process | None = None
        self.latency: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/simple/"

    @property
    def network_url(self) -> str:
        return f"http://127.0.0.1:{self.network_port}/simple/"

    def _network_block(self) -> str:
        if self.network is None:
            return ""
        # Its own root of links: simple/ to the pages it serves, files/ to the same files.
        root = self.prefix / "network-root"
        root.mkdir()
        has_plain = (self.tree / PLAIN).is_dir()
        pages = "simple" if self.network.core_metadata or not has_plain else PLAIN
        (root / "simple").symlink_to(self.tree.resolve() / pages)
        (root / "files").symlink_to(self.tree.resolve() / "files")
        return _NETWORK.format(
            port=self.network_port,
            latency_port=self.latency_port,
            root=root,
            delay="auth_request /_latency;" if self.network.latency_ms > 0 else "",
            ranges="max_ranges 0;" if self.network.ignores_range else "",
        )

    def start(self, environment: dict[str, str]) -> None:
        shutil.rmtree(self.prefix, ignore_errors=True)
        (self.prefix / "tmp").mkdir(parents=True)
        if self.network is not None and self.network.latency_ms > 0:
            script = str(Path(__file__).with_name("latency.py"))
            argv = [sys.executable, script, str(self.latency_port), str(self.network.latency_ms)]
            self.latency = spawn("latency", argv, environment, self.prefix / "latency.log")
            _wait_for_port(self.latency_port, self.latency)
        user = "user root;" if os.geteuid() == 0 else ""
        config = _CONFIG.format(
            user=user,
            prefix=self.prefix,
            port=self.port,
            tree=self.tree.resolve(),
            network=self._network_block(),
        )
        config_path = self.prefix / "nginx.conf"
        config_path.write_text(config)
        argv = [self.binary, "-p", str(self.prefix), "-c", str(config_path)]
        self.process = spawn("nginx", argv, environment, self.prefix / "stderr.log")
        wait_until_answers(f"http://127.0.0.1:{self.port}/", self.process, timeout=15)
        if self.network is not None:
            wait_until_answers(self.network_url, self.process, timeout=15)

    def stop(self) -> None:
        for process in (self.process, self.latency):
            if process is not None:
                process.stop()
        self.process = self.latency = None
