"""`/-/metrics` of --workers: every worker's numbers as one server's, whichever worker a
scrape reaches (the kernel picks one per connection).

Each worker writes its own exposition to `metrics/worker-N.prom` in the data dir every
WRITE_EVERY seconds; the worker a scrape reaches renders its own afresh and adds the
others' latest, so a scrape is at most that old in the other workers' part. Counters and
histogram buckets add up. The gauges that state one fact of the shared cache (its size,
its limit, the exemptions in force) are seen by every worker and take the largest value,
which is the freshest (the worker running eviction re-reads the size). A restarted worker
starts its counters at zero again: Prometheus' rate() reads that as the reset it is.
"""

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from bodega.web.metrics import merge_expositions

log = logging.getLogger(__name__)

METRICS_DIR = "metrics"  # in the data dir
WRITE_EVERY = 1.0  # seconds


class WorkerMetrics:
    def __init__(self, directory: Path, worker: int, workers: int) -> None:
        self._directory = directory
        self._own = directory / f"worker-{worker}.prom"
        # Only the workers of this start: a file of an earlier start with more is not read.
        self._others = [
            directory / f"worker-{n}.prom" for n in range(1, workers + 1) if n != worker
        ]
        self._task: asyncio.Task[None] | None = None

    def start(self, render: Callable[[], str]) -> None:
        self._task = asyncio.create_task(self._write_forever(render), name="bodega-metrics")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def with_others(self, own: str) -> str:
        """This worker's exposition, with every other worker's latest added in."""
        others = await asyncio.to_thread(_read_all, self._others)
        return merge_expositions([own, *others])

    async def _write_forever(self, render: Callable[[], str]) -> None:
        await asyncio.to_thread(self._directory.mkdir, parents=True, exist_ok=True)
        while True:
            try:
                await asyncio.to_thread(_write_atomically, self._own, render())
            except OSError as error:  # a full disk: the other workers' scrapes miss this one
                log.warning("writing this worker's metrics: %s", error)
            await asyncio.sleep(WRITE_EVERY)


def clear_worker_metrics(directory: Path) -> None:
    """Remove the files of workers that ran before (the supervisor, as it starts)."""
    for path in directory.glob("worker-*.prom"):
        path.unlink(missing_ok=True)


def _read_all(paths: list[Path]) -> list[str]:
    texts = []
    for path in paths:
        with contextlib.suppress(FileNotFoundError):  # a worker that has not written yet
            texts.append(path.read_text(encoding="utf-8"))
    return texts


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
