"""Processes the bench starts: each in its own session, stopped as a group, its memory watched.

Every server runs as the leader of a new session, so its workers (gunicorn, nginx, waitress
threads) share its process group: one signal stops them all, and /proc tells which are its.
"""

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from fetch import answers

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


class Process:
    def __init__(self, name: str, popen: "subprocess.Popen[bytes]", log_path: Path) -> None:
        self.name = name
        self.popen = popen
        self.log_path = log_path
        self.rss = RssSampler(popen.pid)
        self.rss.start()

    @property
    def is_running(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15) -> None:
        self.rss.stop()
        for sig, grace in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                continue
            # The leader is gone; make sure no worker of its group outlives it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            return

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def spawn(name: str, argv: list[str], environment: dict[str, str], log_path: Path) -> Process:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            argv,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Process(name, popen, log_path)


def wait_until_answers(url: str, process: Process, timeout: float) -> float:
    """Seconds until `url` answers HTTP; raises if the process dies or time runs out."""
    started = time.perf_counter()
    deadline = started + timeout
    while time.perf_counter() < deadline:
        if not process.is_running:
            raise RuntimeError(f"{process.name} exited early:\n{process.log_tail()}")
        if answers(url):
            return time.perf_counter() - started
        time.sleep(0.02)
    raise RuntimeError(f"{process.name} not ready after {timeout:.0f} s:\n{process.log_tail()}")


def group_members(session: int) -> list[int]:
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command: state ppid pgrp session ...
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == session:
            members.append(int(entry.name))
    return members


def tree_rss(session: int) -> int:
    total = 0
    for pid in group_members(session):
        try:
            resident_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        total += resident_pages * _PAGE_SIZE
    return total


class RssSampler:
    """Polls the resident memory of a process tree every 100 ms and keeps the peak."""

    def __init__(self, session: int, interval: float = 0.1) -> None:
        self.session = session
        self.interval = interval
        self.peak = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            self.peak = max(self.peak, tree_rss(self.session))


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the parenthesised command (state first)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (all their threads) so far, plus what their
    children that have ended added (a PostgreSQL backend that exited, say); a process gone
    meanwhile counts for nothing."""
    ticks = 0
    for pid in pids:
        try:
            fields = _stat_fields(pid)
        except (OSError, IndexError):
            continue
        # utime stime cutime cstime: fields 14-17 of proc(5), 11-14 here.
        ticks += sum(int(value) for value in fields[11:15])
    return ticks / _TICKS


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, theirs, ...)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            parent = int(_stat_fields(int(entry.name))[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    pending = list(children.get(pid, []))
    while pending:
        child = pending.pop()
        found.append(child)
        pending += children.get(child, [])
    return found
