"""`bodega migrate`: an embedded cache, filled by a real bodega (a mirror, a hosted upload,
a token), copied into PostgreSQL and a SeaweedFS bucket; a bodega on those alone, its
upstream gone, serves the same; an interrupted run resumed; a corrupted file reported and
not copied; wrong URLs refused with one clear line."""

import asyncio
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from bodega.proxy.migration import PARALLEL_BLOBS
from bodega.storage.s3blobs import open_s3_blobs
from tests.integration.test_cli import assert_refused, clean_environ, run_bodega
from tests.support.accounts import make_token_with_cli
from tests.support.distributions import build_sdist, build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.seaweedfs import BUCKET, SeaweedFS, aws_environ
from tests.support.servers import BodegaProcess, bodega_process
from tests.support.uploads import upload_fields
from tests.support.waiting import wait_for

WHEEL = build_wheel("demo", "1.0", payload_size=50_000)
SDIST = build_sdist("demo", "1.0")
MINE = build_wheel("mine", "1.0")
MINE_NEXT = build_wheel("mine", "1.1")
LATE = build_wheel("late", "2.0")
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
GONE = "http://127.0.0.1:9/simple/"  # nothing listens on the discard port
CONFIG = """
default_index = "root/pypi"
[indexes."root/pypi"]
type = "mirror"
[indexes."acme/private"]
type = "hosted"
upload = ["ci"]
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "bodega.toml"
    path.write_text(CONFIG)
    return path


@dataclass(frozen=True)
class Target:
    """The shared backends migrated into: an empty database, a fresh bucket prefix, and the
    AWS variables that reach the bucket."""

    dsn: str
    blob_store: str
    aws: dict[str, str]


@pytest.fixture
def target(seaweedfs: SeaweedFS, postgres_dsn: str) -> Target:
    return Target(postgres_dsn, f"s3://{BUCKET}/{uuid.uuid4().hex}/cache", seaweedfs.environ())


def _get(url: str, **headers: str) -> httpx.Response:
    return httpx.get(url, headers=headers, trust_env=False, timeout=30)


def _upload(server: BodegaProcess, token: str, built: object, version: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}acme/private/",
        data=upload_fields(built, "mine", version),  # type: ignore[arg-type]
        files={"content": (built.filename, built.data)},  # type: ignore[attr-defined]
        auth=("__token__", token),
        trust_env=False,
        timeout=30,
    )


def _served(url: str) -> dict[str, bytes]:
    """What a client gets of the cache: pages, files, core metadata, the hosted index."""
    paths = [
        "simple/demo/",
        f"files/demo/{WHEEL.filename}",
        f"files/demo/{WHEEL.filename}.metadata",
        f"files/demo/{SDIST.filename}",
        "acme/private/+simple/mine/",
        f"acme/private/files/mine/{MINE.filename}",
    ]
    found = {}
    for path in paths:
        response = _get(url + path, **JSON)
        assert response.status_code == 200, (path, response.status_code, response.text)
        found[path] = response.content
    return found


@contextmanager
def _serving_filled(
    data: Path, config: Path, fake_index: FakeIndex
) -> Iterator[tuple[BodegaProcess, str, dict[str, bytes]]]:
    """A real bodega that filled its cache: the server, the upload token, what it served."""
    fake_index.add("demo", WHEEL, serve_metadata=False)  # bodega extracts its own
    fake_index.add("demo", SDIST)
    token = make_token_with_cli(data, "ci", config=config, indexes=["acme/private"])
    with bodega_process(data, fake_index.simple_url, "--config", str(config)) as server:
        assert _upload(server, token, MINE, "1.0").status_code == 200
        _get(f"{server.url}files/demo/{WHEEL.filename}")

        def advertised() -> bool:
            page = _get(f"{server.url}simple/demo/", **JSON).json()
            return all(file["core-metadata"] for file in page["files"] if ".whl" in file["url"])

        wait_for(advertised, seconds=20)
        yield server, token, _served(server.url)


def _fill(data: Path, config: Path, fake_index: FakeIndex) -> tuple[str, dict[str, bytes]]:
    """A cache as a real bodega leaves it; returns the upload token and what it served."""
    with _serving_filled(data, config, fake_index) as (_, token, served):
        return token, served


def migrate(data: Path, config: Path, target: Target, **extra: str) -> tuple[int, str, str]:
    environ = clean_environ(
        BODEGA_DATA_DIR=str(data), BODEGA_CONFIG=str(config), **target.aws, **extra
    )
    urls = ["--to-database", target.dsn, "--to-blob-store", target.blob_store]
    result = run_bodega("migrate", *urls, env=environ)
    return result.returncode, result.stdout, result.stderr


def _start_shared(tmp_path: Path, config: Path, target: Target) -> BodegaProcess:
    args = ["--config", str(config), "--database", target.dsn, "--blob-store", target.blob_store]
    env = {**clean_environ(**target.aws), "BODEGA_SEARCH_REFRESH": "0"}
    return BodegaProcess(["--data-dir", str(tmp_path / "replica"), "--upstream", GONE, *args], env)


def test_a_migrated_cache_is_served_identically_from_the_shared_backends_upstream_gone(
    tmp_path: Path,
    fake_index: FakeIndex,
    config: Path,
    target: Target,
) -> None:
    data = tmp_path / "data"
    token, before = _fill(data, config, fake_index)
    fetched = fake_index.count("GET", WHEEL.filename)  # with the METADATA's ranges, maybe

    code, out, err = migrate(data, config, target)
    assert code == 0, err
    assert "Traceback" not in err
    assert "failed 0" in out
    assert "failed 1" not in out
    assert "tokens: copied 1, already there 0, failed 0" in out

    server = _start_shared(tmp_path, config, target)
    try:
        assert _served(server.url) == before
        cached = _get(f"{server.url}files/demo/{WHEEL.filename}")
        assert cached.headers["X-Bodega-Cache"] == "HIT"
        # The token works on the new backends, and only as the old one did.
        assert _upload(server, token, MINE_NEXT, "1.1").status_code == 200
        assert _upload(server, "bodega-wrong-token", MINE_NEXT, "1.1").status_code in (401, 403)
        again = _upload(server, token, MINE, "1.0")
        assert again.status_code == 400  # the filename was accepted before the move
    finally:
        server.stop()
    assert fake_index.count("GET", WHEEL.filename) == fetched  # nothing after the move


def test_a_cache_is_migrated_while_its_server_serves_then_caught_up_after_it_stops(
    tmp_path: Path, fake_index: FakeIndex, config: Path, target: Target
) -> None:
    data = tmp_path / "data"
    fake_index.add("late", LATE)
    with _serving_filled(data, config, fake_index) as (server, _, _):
        code, _, err = migrate(data, config, target)
        assert code == 0, err
        # Cached after the copy: the next run's.
        assert _get(f"{server.url}files/late/{LATE.filename}").content == LATE.data
    code, out, err = migrate(data, config, target)
    assert code == 0, err
    assert "blobs: copied 1, already there" in out  # the new file alone
    assert "pages: copied 1, already there 1" in out

    replica = _start_shared(tmp_path, config, target)
    try:
        assert _get(f"{replica.url}files/late/{LATE.filename}").content == LATE.data
    finally:
        replica.stop()


def test_an_interrupted_migration_resumes_with_only_what_is_missing(
    tmp_path: Path,
    fake_index: FakeIndex,
    config: Path,
    target: Target,
) -> None:
    data = tmp_path / "data"
    _fill(data, config, fake_index)
    crashed = {"BODEGA_TEST_CRASH_AT": "migrate_blob_copied"}
    code, _, _ = migrate(data, config, target, **crashed)
    assert code == -9  # killed after its first blob, as a power cut would

    code, out, err = migrate(data, config, target)
    assert code == 0, err
    blobs = next(line for line in out.splitlines() if line.startswith("blobs:"))
    copied, there = (int(n) for n in re.findall(r"\d+", blobs)[:2])
    # The killed run committed the blob it was at and those copied beside it, verified.
    assert 1 <= there <= PARALLEL_BLOBS
    assert copied >= 1
    assert blobs.endswith(", failed 0")
    code, out, _ = migrate(data, config, target)
    assert code == 0
    lines = [line for line in out.splitlines() if line and "search names" not in line]
    assert all(" copied 0," in line for line in lines), out


def test_a_corrupted_file_is_reported_and_not_copied(
    tmp_path: Path, fake_index: FakeIndex, config: Path, target: Target, seaweedfs: SeaweedFS
) -> None:
    data = tmp_path / "data"
    _fill(data, config, fake_index)
    [blob] = [p for p in (data / "blobs").rglob(WHEEL.sha256) if p.is_file()]
    blob.write_bytes(b"rot" + blob.read_bytes()[3:])

    code, out, err = migrate(data, config, target)
    assert code == 1
    assert f"blob {WHEEL.sha256}: its bytes hash to" in err
    assert "failed 1" in out

    async def look() -> tuple[int | None, list[str]]:
        async with open_s3_blobs(target.blob_store) as bucket:
            size = await bucket.size(WHEEL.sha256)
        connection = await asyncpg.connect(target.dsn)
        try:
            keys = [row[0] for row in await connection.fetch("SELECT key FROM blobs")]
        finally:
            await connection.close()
        return size, keys

    with aws_environ(seaweedfs):
        size, recorded = asyncio.run(look())
    assert size is None
    assert WHEEL.sha256 not in recorded
    assert SDIST.sha256 in recorded


def test_wrong_urls_are_refused_with_a_clear_reason(
    tmp_path: Path, config: Path, target: Target
) -> None:
    data = tmp_path / "data"
    code, _, err = migrate(data, config, target)
    assert code == 1
    assert "no bodega cache in" in err
    environ = clean_environ(BODEGA_DATA_DIR=str(data), BODEGA_CONFIG=str(config), **target.aws)
    assert run_bodega("init", env=environ).returncode == 0

    def refused(database: str, store: str, reason: str) -> None:
        result = run_bodega(
            "migrate", "--to-database", database, "--to-blob-store", store, env=environ
        )
        assert_refused(result, reason)

    dsn, blob_store = target.dsn, target.blob_store
    refused("mysql://db/bodega", blob_store, "--to-database: mysql://db/bodega is not a postgresql")
    result = run_bodega(
        "migrate",
        "--to-database",
        "mysql://me:s3cret@db/x",
        "--to-blob-store",
        blob_store,
        env=environ,
    )
    assert_refused(result, "--to-database: mysql://db/x is not a postgresql")
    assert "s3cret" not in result.stderr
    refused(dsn, "file:///srv/blobs", "--to-blob-store: file:///srv/blobs is not an s3")
    refused("postgresql://127.0.0.1:9/bodega", blob_store, "cannot open the metadata database")
    refused(dsn, f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/x", "no-such-bucket")
