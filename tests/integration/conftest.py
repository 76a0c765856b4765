"""The integration tests that start bodega with start_bodega (or ask for database_url) run
on each metadata store: SQLite in the data dir, and PostgreSQL (issue 14).
BODEGA_TEST_BACKENDS=sqlite (or postgres) runs one of them only, for a quicker loop."""

import os

import pytest

BACKENDS = ("sqlite", "postgres")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "metadata_backend" in metafunc.fixturenames:
        chosen = os.environ.get("BODEGA_TEST_BACKENDS", ",".join(BACKENDS)).split(",")
        metafunc.parametrize("metadata_backend", [b for b in BACKENDS if b in chosen])
