"""Logging for `bodega serve`: one line per record on stderr,

    2026-11-25 19:00:00,123 INFO 127.0.0.1 "GET /simple/demo/ HTTP/1.1" 200 2478 0.000669s HIT

Tuned for the access log's rate (thousands of lines a second): the date and time are
formatted once a second, not per line, and records skip the thread and process fields
nothing here prints.

Lines are written behind: the thread that logs (the event loop, mostly) formats the line and
queues it, and a writer thread writes what is queued every WRITE_EVERY seconds in one write.
A write to stderr was a system call per request on the loop, and one that blocks it outright
when stderr is a pipe nobody drains (a stuck journald). Lines still reach stderr in order,
and whatever is queued is written at exit; a process killed outright loses at most the last
WRITE_EVERY seconds of lines.
"""

import collections
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

WRITE_EVERY = 0.05  # seconds
# Lines held while stderr takes none (a full pipe); past this, new ones are counted and
# dropped instead of growing memory without bound, and a line says how many went.
MOST_QUEUED = 100_000
CLOSE_WAIT = 5.0  # seconds a flush or close (at exit) waits for a write in progress


class LineFormatter(logging.Formatter):
    """`<date> <time>,<ms> <LEVEL> <prefix><message>`; `prefix` names a worker."""

    def __init__(self, prefix: str = "") -> None:
        super().__init__(f"%(asctime)s %(levelname)s {prefix}%(message)s")
        self._prefix = prefix
        self._stamp = (-1, "")  # (second, its text); one tuple, so threads swap it whole

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self._time_text(record.created)

    def line(self, levelname: str, message: str, created: float) -> str:
        """The line format() makes of a record with these fields and no exception."""
        return f"{self._time_text(created)} {levelname} {self._prefix}{message}"

    def _time_text(self, created: float) -> str:
        second = int(created)
        cached_second, text = self._stamp
        if second != cached_second:
            text = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second))
            self._stamp = (second, text)
        return f"{text},{int((created - second) * 1000):03d}"


class WrittenBehind(logging.Handler):
    """A handler that formats each record where it is logged and leaves the writing to a
    thread of its own: the caller only appends to a deque (thread-safe, never blocks)."""

    def __init__(
        self,
        stream: TextIO | None = None,
        write_every: float = WRITE_EVERY,
        most_queued: int = MOST_QUEUED,
        close_wait: float = CLOSE_WAIT,
    ) -> None:
        super().__init__()
        self._stream = stream if stream is not None else sys.stderr
        self._write_every = write_every
        self._most_queued = most_queued
        self._close_wait = close_wait
        self._lines: collections.deque[str] = collections.deque()
        self._dropped = 0
        self._stopping = threading.Event()
        self._writing = threading.Lock()  # one writer at a time: the thread, or a flush
        self._writer = threading.Thread(target=self._write_on, name="bodega-log", daemon=True)
        self._writer.start()

    def handle(self, record: logging.LogRecord) -> bool:
        # Handler.handle takes the handler's lock around emit: the deque needs none.
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # what logging does with a record it cannot format
            self.handleError(record)
            return
        self.queue(line)

    def queue(self, line: str) -> None:
        """A formatted line, to be written with the next batch."""
        if len(self._lines) >= self._most_queued:
            self._dropped += 1
            return
        self._lines.append(line)

    def flush(self) -> None:
        """Write every line queued until now. Waits at most `close_wait` for a write in
        progress: logging.shutdown flushes and closes every handler at exit, and a stderr
        nobody drains must not keep a stopping process alive (its last lines are lost)."""
        if self._writing.acquire(timeout=self._close_wait):
            try:
                self._write_queued()
            finally:
                self._writing.release()

    def _write_queued(self) -> None:
        taken = []
        while self._lines:
            taken.append(self._lines.popleft())
        dropped, self._dropped = self._dropped, 0
        if dropped:
            taken.append(f"bodega: {dropped} log lines dropped: stderr took none for a while")
        if not taken:
            return
        try:
            self._stream.write("\n".join(taken) + "\n")
            self._stream.flush()
        except (OSError, ValueError):
            pass  # stderr closed or gone: nowhere left to say so

    def close(self) -> None:
        self._stopping.set()
        self.flush()
        super().close()

    def _write_on(self) -> None:
        while not self._stopping.wait(self._write_every):
            self.flush()


def configure(worker: int = 0) -> None:
    """`worker`: this process is that one of --workers, and every line says so after its
    level (`INFO worker-2 ...`), so an operator can tell the processes apart."""
    # The logging HOWTO's "Optimization" settings: no caller lookup (a stack walk per
    # record), no thread or process fields.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = WrittenBehind()
    handler.setFormatter(LineFormatter(f"worker-{worker} " if worker else ""))
    logging.basicConfig(level=logging.INFO, handlers=[handler])


def direct_writer(logger: logging.Logger) -> Callable[[str], None] | None:
    """A way for `logger`'s INFO messages straight to their line, skipping the LogRecord
    and the handler chain, or None unless logging is as configure() left it: INFO enabled,
    no handler or filter on the way, and one WrittenBehind with a LineFormatter at the root.

    For the access log: its LogRecord and handler chain were half of its cost, and the
    access log was a seventh of a cached page's CPU."""
    if not logger.isEnabledFor(logging.INFO):
        return None
    root = logger
    while root.parent is not None:
        if root.handlers or root.filters or not root.propagate:
            return None
        root = root.parent
    if root.filters or len(root.handlers) != 1:
        return None
    handler = root.handlers[0]
    formatter = handler.formatter
    if not isinstance(handler, WrittenBehind) or not isinstance(formatter, LineFormatter):
        return None
    if handler.filters or handler.level > logging.INFO:
        return None
    return lambda message: handler.queue(formatter.line("INFO", message, time.time()))
