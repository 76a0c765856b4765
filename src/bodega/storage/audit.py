"""The audit trail: one JSON object per line in a file of the data dir, rotated by size.

`record` never waits on the disk: lines go through a queue to a writer thread (the event
loop must not block on a write), which appends them and rotates the file as `logging`'s
RotatingFileHandler does (`policy-audit.jsonl`, then `.1`, `.2`, ...). A line is written
whole with one write, in append mode, so `bodega allow` in another process may add its own.
"""

import json
import logging
import logging.handlers
import queue
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5


class AuditTrail(Protocol):
    def record(self, event: Mapping[str, object]) -> None:
        """Append one event (JSON-ready values) to the trail; never blocks."""

    def close(self) -> None:
        """Write what is queued, then stop."""


class JsonLinesAudit:
    def __init__(self, path: Path, *, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
        self._queue: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        self._handler = handler
        self._listener = logging.handlers.QueueListener(self._queue, handler)
        self._listener.start()

    def record(self, event: Mapping[str, object]) -> None:
        line = json.dumps(event, separators=(",", ":"), sort_keys=True, default=str)
        self._queue.put(logging.LogRecord("bodega.audit", logging.INFO, "", 0, line, None, None))

    def close(self) -> None:
        self._listener.stop()  # writes what is queued first
        self._handler.close()


class MemoryAudit:
    """The trail in a list, for unit tests."""

    def __init__(self) -> None:
        self.events: list[Mapping[str, object]] = []

    def record(self, event: Mapping[str, object]) -> None:
        self.events.append(dict(event))

    def close(self) -> None:
        pass
