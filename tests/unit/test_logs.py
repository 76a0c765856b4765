"""The log handler of `bodega serve`: the thread that logs never writes to stderr itself,
and the access log's direct lines are the lines logging would write."""

import io
import logging
import re
import threading
from collections.abc import Callable, Iterator

import pytest

from bodega.logs import LineFormatter, WrittenBehind, direct_writer
from tests.support.waiting import wait_for


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
    wait_for(lambda: stream.getvalue().count("\n") == 500)
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
    wait_for(lambda: "bodega-log" in stream.writers)  # the writer is stuck in its write
    for number in range(300):
        logger.info("line %d", number)  # returns at once: queued, then counted as dropped
    assert stream.writers == {"bodega-log"}
    stream.open_for_writes.set()
    handler.close()
    written = stream.getvalue().splitlines()
    assert written[0] == "first"
    assert written[1:101] == [f"line {number}" for number in range(100)]
    assert written[101:] == ["bodega: 200 log lines dropped: stderr took none for a while"]


def private_logging(*handlers: logging.Handler) -> logging.Manager:
    """A logger tree of its own (pytest keeps its capture handlers on the real root)."""
    root = logging.RootLogger(logging.INFO)
    for handler in handlers:
        root.addHandler(handler)
    return logging.Manager(root)


def without_time(line: str) -> str:
    return re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ", "<time> ", line)


def test_a_line_written_directly_is_the_line_logging_makes_of_the_message() -> None:
    stream = RecordingStream()
    handler = WrittenBehind(stream, write_every=3600)
    handler.setFormatter(LineFormatter("worker-2 "))
    access = private_logging(handler).getLogger("aiohttp.access")
    write = direct_writer(access)
    assert write is not None
    message = '127.0.0.1 "GET /simple/demo/ HTTP/1.1" 200 1105 0.000123s HIT'
    write(message)
    access.info(message)
    handler.close()
    direct, logged = stream.getvalue().splitlines()
    assert without_time(direct) == without_time(logged) == f"<time> INFO worker-2 {message}"


def test_no_direct_line_when_anything_else_would_see_or_stop_the_record() -> None:
    def writer_with(change: Callable[[logging.Manager, logging.Logger], None]) -> object:
        handler = WrittenBehind(io.StringIO(), write_every=3600)
        handler.setFormatter(LineFormatter())
        manager = private_logging(handler)
        access = manager.getLogger("aiohttp.access")
        change(manager, access)
        try:
            return direct_writer(access)
        finally:
            handler.close()

    assert writer_with(lambda manager, access: None) is not None
    changes: list[Callable[[logging.Manager, logging.Logger], None]] = [
        lambda manager, access: access.addHandler(logging.NullHandler()),
        lambda manager, access: manager.getLogger("aiohttp").addFilter(lambda r: True),
        lambda manager, access: setattr(access, "propagate", False),
        lambda manager, access: access.setLevel(logging.WARNING),
        lambda manager, access: manager.root.addHandler(logging.NullHandler()),
        lambda manager, access: manager.root.handlers[0].setLevel(logging.WARNING),
        lambda manager, access: manager.root.handlers[0].setFormatter(logging.Formatter()),
    ]
    for change in changes:
        assert writer_with(change) is None


def test_closing_at_exit_never_waits_long_for_a_stream_that_takes_nothing(
    logger: logging.Logger,
) -> None:
    stream = RecordingStream()
    stream.open_for_writes.clear()  # stderr a pipe nobody drains, at exit
    handler = WrittenBehind(stream, write_every=0.01, close_wait=0.05)
    logger.addHandler(handler)
    logger.info("stuck")
    wait_for(lambda: "bodega-log" in stream.writers)
    logger.info("never written")
    logger.removeHandler(handler)
    handler.flush()  # what logging.shutdown does, then close: both return
    handler.close()
    assert stream.getvalue() == ""
    stream.open_for_writes.set()  # let the writer thread end
