"""Logging for `bodega serve`: one line per record on stderr,

    2026-11-25 19:00:00,123 INFO 127.0.0.1 "GET /simple/demo/ HTTP/1.1" 200 2478 0.000669s HIT

Tuned for the access log's rate (thousands of lines a second): the date and time are
formatted once a second, not per line, and records skip the thread and process fields
nothing here prints.
"""

import logging
import time


class _Formatter(logging.Formatter):
    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self._stamp = (-1, "")  # (second, its text); one tuple, so threads swap it whole

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        cached_second, text = self._stamp
        if second != cached_second:
            text = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second))
            self._stamp = (second, text)
        return f"{text},{int(record.msecs):03d}"


def configure(worker: int = 0) -> None:
    """`worker`: this process is that one of --workers, and every line says so after its
    level (`INFO worker-2 ...`), so an operator can tell the processes apart."""
    # The logging HOWTO's "Optimization" settings: no caller lookup (a stack walk per
    # record), no thread or process fields.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler()
    prefix = f"worker-{worker} " if worker else ""
    handler.setFormatter(_Formatter(f"%(asctime)s %(levelname)s {prefix}%(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
