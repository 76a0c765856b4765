"""A download's window of newest bytes: what a reader keeping up takes from memory is exactly
the bytes received at that position, whatever the chunks and whatever has been spooled."""

import time
from collections import deque
from unittest import mock

from hypothesis import given
from hypothesis import strategies as st

from bodega.proxy import files
from bodega.proxy.files import Download
from bodega.proxy.telemetry import IndexTelemetry

WINDOW, READ = 1500, 1000  # small stand-ins for 2 MiB and 256 KiB, so that both bind


def download() -> Download:
    telemetry = IndexTelemetry("t", deque(), time.time)
    return Download(None, "http://upstream.test/f", None, None, telemetry)


@given(
    chunks=st.lists(st.binary(min_size=1, max_size=700), min_size=1, max_size=30),
    spooled_fraction=st.floats(0, 1),
    reads=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), max_size=20),
)
def test_bytes_from_memory_are_the_bytes_received_there(
    chunks: list[bytes], spooled_fraction: float, reads: list[tuple[float, float]]
) -> None:
    with (
        mock.patch.object(files, "_WINDOW_BYTES", WINDOW),
        mock.patch.object(files, "_READ_CHUNK", READ),
    ):
        received = download()
        for chunk in chunks:
            received.received(chunk)
        everything = b"".join(chunks)
        received.spooled_up_to(int(len(everything) * spooled_fraction))
        for start_fraction, length_fraction in reads:
            position = int(len(everything) * start_fraction)
            end = position + max(1, int((len(everything) - position) * length_fraction))
            if end > len(everything):
                continue  # readers never ask past what was received
            got = received.from_memory(position, end)
            if position < received.window_start:
                assert got is None  # spooled and gone from memory: the caller reads the spool
            else:
                assert got == everything[position:end][:READ]
                assert isinstance(got, bytes)
