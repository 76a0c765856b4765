"""The integration tests that start bodega with start_bodega (or ask for database_url) run
on each pair of backends (issue 14): "embedded" (SQLite in the data dir, files on its disk) and
"shared" (PostgreSQL and an S3 bucket). Tests marked needs_file_blobs look at the files on disk:
their shared run keeps the files there ("postgres-files").
BODEGA_TEST_BACKENDS=embedded (or shared) runs one of them only, for a quicker loop."""

import os

import pytest

PAIRS = ("embedded", "shared")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backends" not in metafunc.fixturenames:
        return
    chosen = os.environ.get("BODEGA_TEST_BACKENDS", ",".join(PAIRS)).split(",")
    on_disk = metafunc.definition.get_closest_marker("needs_file_blobs") is not None
    metafunc.parametrize(
        "backends",
        [
            "postgres-files" if on_disk and pair == "shared" else pair
            for pair in PAIRS
            if pair in chosen
        ],
    )
