import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.fake_index import FakeIndex
from tests.support.fixtures import bodega, fake_index, published
from tests.support.postgres import (
    postgres_cluster,
    postgres_database,
    postgres_dsn,
    postgres_server,
)
from tests.support.seaweedfs import BUCKET, SeaweedFS, aws_environ, seaweedfs
from tests.support.servers import bodega_in_process, make_settings

__all__ = [
    "bodega",
    "fake_index",
    "postgres_cluster",
    "postgres_database",
    "postgres_dsn",
    "postgres_server",
    "published",
    "seaweedfs",
]

StartBodega = Callable[..., Awaitable[str]]
# For tests that look into the data dir's blobs/, at what only a local file offers
# (sendfile's spans, a rendering's byte ranges), or at /-/ready without the object store's
# entry: on the shared backends they run on PostgreSQL with file blobs.
needs_file_blobs = pytest.mark.needs_file_blobs


@pytest.fixture
def backends() -> str:
    """The backends of the servers tests start: "embedded" (SQLite in the data dir, files on
    its disk), "shared" (PostgreSQL and a SeaweedFS bucket), or "postgres-files" (PostgreSQL,
    files on disk). Embedded unless a conftest parametrizes this (tests/integration does)."""
    return "embedded"


@pytest.fixture
def database_url(backends: str, request: pytest.FixtureRequest) -> str:
    """The --database of the test's servers: "" (SQLite in the data dir) or a fresh
    PostgreSQL database. Servers a test starts one after another share it, as they share
    their data dir."""
    # Asked for here, not as an argument: only the PostgreSQL runs start the server.
    return "" if backends == "embedded" else str(request.getfixturevalue("postgres_dsn"))


@pytest.fixture
async def start_bodega(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    fake_index: FakeIndex,
    backends: str,
    database_url: str,
) -> AsyncIterator[StartBodega]:
    """Starts the real bodega on 127.0.0.1 in front of the fake index; returns its base URL.

    Settings can be overridden per call (index_ttl=0, offline=True, ...); every server
    started is stopped after the test. On the shared backends its files go to a bucket
    prefix of its own in the session's SeaweedFS.
    """
    async with AsyncExitStack() as stack:
        if backends == "shared":
            store: SeaweedFS = request.getfixturevalue("seaweedfs")
            stack.enter_context(aws_environ(store))
            default_blob_store = f"s3://{BUCKET}/{uuid.uuid4().hex}"
        else:
            default_blob_store = "file://"

        async def start(**overrides: Any) -> str:
            overrides.setdefault("database", database_url)
            overrides.setdefault("data_dir", tmp_path / "data")
            overrides.setdefault("upstream", fake_index.simple_url)
            overrides.setdefault("blob_store", default_blob_store)
            settings = make_settings(**overrides)
            return await stack.enter_async_context(bodega_in_process(settings))

        yield start
        # A stop that hangs shows only idle threads in pytest-timeout's dump; the coroutine
        # that waits is in a task. Print every task's stack if the stop takes over a minute.
        watchdog = asyncio.get_running_loop().call_later(60, print_every_task)
    watchdog.cancel()


def print_every_task() -> None:
    print("--- bodega's stop is taking over 60 s; every task, where it waits:")
    for task in asyncio.all_tasks():
        task.print_stack(limit=12, file=sys.stdout)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30, trust_env=False) as http:
        yield http
