"""nginx serving the tree on 127.0.0.1: the upstream of every proxy and the ceiling column.

Its access log is the upstream's ledger: a figure notes the log's size before it runs and reads
the lines added after it, which gives the upstream requests and bytes that figure caused.
"""

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from processes import Process, spawn, wait_until_answers

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
}}
"""


@dataclass(frozen=True)
class LogTotals:
    requests: int
    bytes: int
    paths: tuple[str, ...]

    def count(self, suffix: str) -> int:
        return sum(1 for path in self.paths if path.endswith(suffix))


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


class Nginx:
    """One nginx for the whole run; `url` is the upstream's simple index."""

    def __init__(self, binary: str, tree: Path, prefix: Path, port: int) -> None:
        self.binary = binary
        self.tree = tree
        self.prefix = prefix
        self.port = port
        self.log = UpstreamLog(prefix / "access.log")
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/simple/"

    def start(self, environment: dict[str, str]) -> None:
        shutil.rmtree(self.prefix, ignore_errors=True)
        (self.prefix / "tmp").mkdir(parents=True)
        user = "user root;" if os.geteuid() == 0 else ""
        config = _CONFIG.format(
            user=user, prefix=self.prefix, port=self.port, tree=self.tree.resolve()
        )
        config_path = self.prefix / "nginx.conf"
        config_path.write_text(config)
        argv = [self.binary, "-p", str(self.prefix), "-c", str(config_path)]
        self.process = spawn("nginx", argv, environment, self.prefix / "stderr.log")
        wait_until_answers(f"http://127.0.0.1:{self.port}/", self.process, timeout=15)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
