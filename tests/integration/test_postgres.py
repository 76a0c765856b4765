"""bodega with its metadata on PostgreSQL (--database): pages, files and search served from
rows in the database, kept across a restart of bodega, and carried on after a restart of
PostgreSQL itself (issue 14)."""

import asyncio
import dataclasses
import time
from pathlib import Path

import asyncpg
import httpx

from bodega.storage.postgres_schema import MIGRATIONS
from tests.integration.test_cli import clean_environ, run_bodega
from tests.integration.test_search_ranking import search
from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.postgres import PostgresCluster, fresh_database
from tests.support.servers import bodega_in_process, bodega_process, make_settings
from tests.support.waiting import eventually, wait_for

SIX = build_wheel("six", "1.16")
DEMO = build_wheel("demo", "1.0")
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


async def _rows(dsn: str, query: str) -> list[tuple[object, ...]]:
    connection = await asyncpg.connect(dsn)
    try:
        return [tuple(row) for row in await connection.fetch(query)]
    finally:
        await connection.close()


async def test_pages_files_and_search_are_served_from_postgresql_and_outlive_bodega(
    fake_index: FakeIndex, postgres_dsn: str, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    fake_index.add("six", SIX)
    fake_index.list_names(["six"])
    settings = make_settings(
        data_dir=tmp_path / "data", upstream=fake_index.simple_url, database=postgres_dsn
    )
    async with bodega_in_process(settings) as bodega:
        page = await client.get(f"{bodega}simple/six/", headers=JSON)
        assert page.status_code == 200
        assert [file["filename"] for file in page.json()["files"]] == [SIX.filename]
        response = await client.get(f"{bodega}files/six/{SIX.filename}")
        assert response.content == SIX.data
        # Its page gives search the project's details, behind the answer.
        await eventually(lambda: search(client, bodega, "six"), lambda hits: len(hits) == 1)
    assert not settings.database_path.exists()  # no SQLite beside it
    assert await _rows(postgres_dsn, "SELECT project FROM pages") == [("six",)]
    assert (len(SIX.data),) in await _rows(postgres_dsn, "SELECT size FROM blobs")
    assert await _rows(postgres_dsn, "SELECT key FROM search_details") == [("six",)]
    # Offline, a new bodega serves what the database and the blob store hold.
    offline = dataclasses.replace(settings, offline=True)
    async with bodega_in_process(offline) as bodega:
        page = await client.get(f"{bodega}simple/six/", headers=JSON)
        assert [file["filename"] for file in page.json()["files"]] == [SIX.filename]
        assert (await client.get(f"{bodega}files/six/{SIX.filename}")).content == SIX.data
    assert fake_index.count("GET", SIX.filename) == 1


async def test_bodega_carries_on_after_postgresql_restarts(
    fake_index: FakeIndex,
    postgres_cluster: PostgresCluster,
    tmp_path: Path,
    client: httpx.AsyncClient,
) -> None:
    fake_index.add("six", SIX)
    fake_index.add("demo", DEMO)
    settings = make_settings(
        data_dir=tmp_path / "data",
        upstream=fake_index.simple_url,
        database=postgres_cluster.dsn,
        index_ttl=0,  # every request revalidates: the store is asked each time
    )
    async with bodega_in_process(settings) as bodega:
        assert (await client.get(f"{bodega}simple/six/")).status_code == 200
        # The page is stored behind the answer: stopped before, its write would be lost.
        pages = "SELECT project FROM pages ORDER BY project"
        await eventually(lambda: _rows(postgres_cluster.dsn, pages), lambda rows: len(rows) == 1)
        postgres_cluster.stop()
        ready = await client.get(f"{bodega}-/ready")
        assert ready.status_code == 503
        assert "metadata store" in ready.text
        # Pages and files still come from upstream meanwhile, a held page revalidated.
        before = len(fake_index.requests)
        assert (await client.get(f"{bodega}simple/six/")).status_code == 200
        asked = [r.headers.get("If-None-Match") for r in fake_index.requests[before:]]
        assert asked != [None]  # with its validators: not fetched in full
        assert (await client.get(f"{bodega}simple/demo/")).status_code == 200
        assert (await client.get(f"{bodega}files/six/{SIX.filename}")).content == SIX.data
        postgres_cluster.start()
        # Every connection of the pool broke; the next requests get fresh ones.
        assert (await client.get(f"{bodega}-/ready")).status_code == 200
        assert (await client.get(f"{bodega}simple/demo/")).status_code == 200
        assert (await client.get(f"{bodega}files/demo/{DEMO.filename}")).content == DEMO.data
    assert await _rows(postgres_cluster.dsn, pages) == [("demo",), ("six",)]


def test_the_cache_commands_work_on_postgresql_beside_a_running_server(
    fake_index: FakeIndex, postgres_dsn: str, tmp_path: Path
) -> None:
    """`bodega serve` and `bodega cache` as processes, the database from BODEGA_DATABASE."""
    fake_index.add("six", SIX)
    data = tmp_path / "data"
    database = {"BODEGA_DATABASE": postgres_dsn}
    with bodega_process(data, fake_index.simple_url, env=database) as server:
        assert "metadata in postgresql://127.0.0.1:" in server.banner
        response = httpx.get(f"{server.url}files/six/{SIX.filename}", trust_env=False)
        assert response.content == SIX.data
        environ = clean_environ(BODEGA_DATA_DIR=str(data), **database)
        stats = run_bodega("cache", "stats", env=environ)
        assert "files:  1 (" in stats.stdout, stats.stderr
        wait_for(lambda: "pages:  1" in run_bodega("cache", "stats", env=environ).stdout)
        forgot = run_bodega("cache", "forget", "six", env=environ)
        assert forgot.stdout == "forgot the page of six\n", forgot.stderr
        verified = run_bodega("cache", "verify", env=environ)
        assert "checked 1 files: 0 quarantined" in verified.stdout, verified.stderr
    assert not (data / "bodega.sqlite3").exists()


def test_bodega_allow_reaches_a_server_on_postgresql(
    fake_index: FakeIndex, postgres_dsn: str, tmp_path: Path
) -> None:
    """Policy's exemptions live in the database: written by `bodega allow`, read by the
    server (issue 15 on the shared store)."""
    fake_index.add("six", SIX, upload_time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    data = tmp_path / "data"
    database = {"BODEGA_DATABASE": postgres_dsn}
    with bodega_process(
        data, fake_index.simple_url, "--min-release-age", "1d", env=database
    ) as server:

        def listed() -> list[str]:
            page = httpx.get(f"{server.url}simple/six/", headers=JSON, trust_env=False)
            return [file["filename"] for file in page.json()["files"]]

        assert listed() == []
        environ = clean_environ(BODEGA_DATA_DIR=str(data), **database)
        allowed = run_bodega("allow", "six==1.16", "--reason", "needed", env=environ)
        assert allowed.returncode == 0, allowed.stderr
        wait_for(lambda: listed() == [SIX.filename], seconds=5)
    assert await_rows(postgres_dsn, "SELECT project, version FROM policy_exemptions") == [
        ("six", "1.16")
    ]


def await_rows(dsn: str, query: str) -> list[tuple[object, ...]]:
    return asyncio.run(_rows(dsn, query))


def test_bodega_init_makes_the_schema_in_postgresql(postgres_server: str, tmp_path: Path) -> None:
    with fresh_database(postgres_server) as dsn:
        environ = clean_environ(BODEGA_DATABASE=dsn)
        result = run_bodega("init", "--data-dir", str(tmp_path / "data"), env=environ)
        assert result.returncode == 0, result.stderr
        assert await_rows(dsn, "SELECT version FROM bodega_schema") == [(len(MIGRATIONS),)]
    assert not (tmp_path / "data" / "bodega.sqlite3").exists()


async def test_a_page_fetched_through_one_replica_is_served_by_another(
    fake_index: FakeIndex, postgres_dsn: str, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    """Two bodegas on one database (each with its own data dir, as they would with a shared
    blob store): pages, search details and the duties' lease are the database's."""
    fake_index.add("six", SIX)
    settings = [
        make_settings(
            data_dir=tmp_path / name, upstream=fake_index.simple_url, database=postgres_dsn
        )
        for name in ("one", "two")
    ]
    async with bodega_in_process(settings[0]) as one, bodega_in_process(settings[1]) as two:
        assert (await client.get(f"{one}simple/six/")).status_code == 200
        pages = "SELECT project FROM pages"
        await eventually(lambda: _rows(postgres_dsn, pages), lambda rows: rows == [("six",)])
        page = await client.get(f"{two}simple/six/", headers=JSON)
        assert [file["filename"] for file in page.json()["files"]] == [SIX.filename]
        assert page.headers["X-Bodega-Cache"] == "HIT"
        assert fake_index.count("GET", "/simple/six/") == 1
        await eventually(lambda: search(client, two, "six"), lambda hits: len(hits) == 1)
        # The background duties asked for the lease: one of the two holds it.
        leases = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        await eventually(lambda: _rows(postgres_dsn, leases), lambda rows: rows == [(1,)])
