"""The log handler of `bodega serve`: the thread that logs never writes to stderr itself."""

import io
import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from bodega.logs import WrittenBehind


class RecordingStream(io.StringIO):
    """A stream that notes which threads wrote to it, and can be made to block."""

    def __init__(self) -> None:
        super().__init__()
        self.writers: set[str] = set()
        self.open_for_writes = threading.Event()
        self.open_for_writes.set()

    def write(self, text: str) -> int:
        self.writers.add(threading.current_thread().name)
        self.open_for_writes.wait()
        return super().write(text)


def eventually(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "not within 10 s"
        time.sleep(0.005)


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("bodega.test-logs")
    log.propagate = False
    log.setLevel(logging.INFO)
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()


def test_lines_are_written_in_order_by_the_writer_thread_never_by_the_caller(
    logger: logging.Logger,
) -> None:
    stream = RecordingStream()
    handler = WrittenBehind(stream, write_every=0.01)
    logger.addHandler(handler)
    for number in range(500):
        logger.info("line %d", number)
    eventually(lambda: stream.getvalue().count("\n") == 500)
    assert stream.getvalue() == "".join(f"line {number}\n" for number in range(500))
    assert stream.writers == {"bodega-log"}


def test_what_is_queued_is_written_when_the_handler_closes_at_exit(
    logger: logging.Logger,
) -> None:
    stream = RecordingStream()
    handler = WrittenBehind(stream, write_every=3600)  # its thread would write in an hour
    logger.addHandler(handler)
    logger.warning("the last words")
    handler.close()  # what logging.shutdown does at exit
    assert stream.getvalue() == "the last words\n"


def test_a_caller_never_waits_for_a_stream_that_takes_nothing(logger: logging.Logger) -> None:
    stream = RecordingStream()
    stream.open_for_writes.clear()  # stderr a pipe nobody drains
    handler = WrittenBehind(stream, write_every=0.01, most_queued=100)
    logger.addHandler(handler)
    logger.info("first")
    eventually(lambda: "bodega-log" in stream.writers)  # the writer is stuck in its write
    for number in range(300):
        logger.info("line %d", number)  # returns at once: queued, then counted as dropped
    assert stream.writers == {"bodega-log"}
    stream.open_for_writes.set()
    handler.close()
    written = stream.getvalue().splitlines()
    assert written[0] == "first"
    assert written[1:101] == [f"line {number}" for number in range(100)]
    assert written[101:] == ["bodega: 200 log lines dropped: stderr took none for a while"]
