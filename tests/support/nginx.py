"""A real nginx (Debian's package, which ./dev test installs) run by a test on loopback with
a site configuration of the test's, in a prefix folder of its own; stopped by its pid.

The site is included in an http block, as the nginx image's nginx.conf includes
/etc/nginx/conf.d/*.conf, where a compose file mounts one."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_START_SECONDS = 15.0
_STOP_SECONDS = 10.0


def find_nginx() -> Path | None:
    """Debian puts it in /usr/sbin, which a user's PATH may lack."""
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    return Path(found) if Path(found).is_file() else None


def main_config(prefix: Path, site: Path) -> str:
    """An nginx.conf of the prefix's own: its pid, logs and temporary files in `prefix`,
    `site` included in the http block."""
    # As root the workers would run as nobody, who cannot enter pytest's private folders.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"daemon off;\n{user}worker_processes 1;\npid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'error.log'} notice;\nevents {{}}\n"
        "http {\n"
        f"    access_log {prefix / 'access.log'};\n"
        f"    client_body_temp_path {prefix / 'body'};\n"
        f"    proxy_temp_path {prefix / 'proxy'};\n"
        f"    fastcgi_temp_path {prefix / 'fastcgi'};\n"
        f"    uwsgi_temp_path {prefix / 'uwsgi'};\n"
        f"    scgi_temp_path {prefix / 'scgi'};\n"
        f"    include {site};\n"
        "}\n"
    )


class Nginx:
    """nginx in the foreground (daemon off), so its pid is the Popen's and SIGTERM to it
    stops it and its worker."""

    def __init__(self, binary: Path, prefix: Path, site: str, port: int) -> None:
        """`port`: the one `site` listens on, on 127.0.0.1 (start() waits for it)."""
        self.binary = binary
        self.prefix = prefix
        self.port = port
        self.prefix.mkdir(parents=True, exist_ok=True)
        (self.prefix / "site.conf").write_text(site)
        self.config = self.prefix / "nginx.conf"
        self.config.write_text(main_config(self.prefix, self.prefix / "site.conf"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> None:
        command = [str(self.binary), "-p", str(self.prefix), "-c", str(self.config)]
        with (self.prefix / "stderr.log").open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + _START_SECONDS
        while not _accepts(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nginx did not start:\n{self.error_log()}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # fast shutdown, workers included
            try:
                self.process.wait(timeout=_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                # Its own session (start_new_session): the group is its pid's, workers and all.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=_STOP_SECONDS)
        self.process = None

    def error_log(self) -> str:
        """What nginx said: its error log, then anything it wrote before opening it."""
        said = ""
        for name in ("error.log", "stderr.log"):
            path = self.prefix / name
            if path.exists():
                said += path.read_text(errors="replace")
        return said


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def running_nginx(binary: Path, prefix: Path, site: str, port: int) -> Iterator[Nginx]:
    server = Nginx(binary, prefix, site, port)
    try:
        server.start()
        yield server
    finally:
        server.stop()
