"""A throwaway PostgreSQL cluster for tests: initdb and pg_ctl in a temporary folder, on
127.0.0.1 and a port of its own, fsync off; one per test session, with one database whose
tables each test finds empty (postgres_dsn). Tests that stop or restart the server get a
cluster of their own (postgres_cluster).

PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` user (the
Debian package creates it). With BODEGA_TEST_PG_DSN set, the tests use that server instead
and start none. Without PostgreSQL the tests that need it are skipped, unless
BODEGA_REQUIRE_POSTGRES is set (./dev test installs it instead, where it can).
"""

import asyncio
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest

from tests.support.ports import free_port

DSN_VARIABLE = "BODEGA_TEST_PG_DSN"
REQUIRE_VARIABLE = "BODEGA_REQUIRE_POSTGRES"
_DATABASES = itertools.count()


def find_pg_bin() -> Path | None:
    """The folder of the newest PostgreSQL's initdb and pg_ctl: Debian keeps them out of PATH."""
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    if debian:
        return debian[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class PostgresCluster:
    """One `initdb` cluster in a temporary folder, started with `pg_ctl`; `stop`, `start`
    and `restart` it to test what bodega does when its database goes away."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self._user = "postgres" if os.geteuid() == 0 else None
        # Not under pytest's tmp_path (nor a TMPDIR that may be too): its folders are
        # private to root, and the server runs as postgres. A short path too: the socket's
        # must fit in 107 bytes.
        shared = "/tmp" if self._user is not None else None
        self.folder = Path(tempfile.mkdtemp(prefix="bodega-pg-", dir=shared))
        self.port = free_port()
        self.running = False
        if self._user is not None:
            shutil.chown(self.folder, self._user)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale",
            "C",
        )

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            [str(self.bin_dir / tool), *args],
            user=self._user,
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed ({result.returncode}):\n{result.stderr}")

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = str(self.folder / "log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-w", "-o", options, "start")
        self.running = True

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        self.running = False

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        """Stop the server if it runs, and delete the cluster."""
        try:
            if self.running:
                self.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def create_owner(cluster: PostgresCluster, user: str, password: str, database: str) -> None:
    """What the postgres image makes of POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB: a
    superuser with that password who owns that database, and who must give the password
    when connecting over TCP (the image's pg_hba.conf asks scram-sha-256 there)."""
    literal = password.replace("'", "''")
    admin(cluster.dsn, f"CREATE ROLE \"{user}\" LOGIN SUPERUSER PASSWORD '{literal}'")
    admin(cluster.dsn, f'CREATE DATABASE "{database}" OWNER "{user}"')
    # The first matching line decides: this one before initdb's `trust` for everyone else,
    # so the test's own connections (as postgres) stay password-free.
    rules = cluster.data / "pg_hba.conf"
    rules.write_text(f"host all {user} 127.0.0.1/32 scram-sha-256\n" + rules.read_text())
    admin(cluster.dsn, "SELECT pg_reload_conf()")


def _dsn_for(dsn: str, database: str) -> str:
    """The same server's DSN for another database (DSNs here end in /<database>)."""
    return dsn.rsplit("/", 1)[0] + "/" + database


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The DSN of a PostgreSQL server for the session's tests: a throwaway cluster,
    or BODEGA_TEST_PG_DSN's."""
    given = os.environ.get(DSN_VARIABLE)
    if given:
        yield given
        return
    bin_dir = find_pg_bin()
    if bin_dir is None:
        if os.environ.get(REQUIRE_VARIABLE):
            pytest.fail("PostgreSQL is not installed (Debian: apt-get install postgresql)")
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    cluster = PostgresCluster(bin_dir)
    try:
        cluster.start()
        yield cluster.dsn
    finally:
        cluster.remove()


def admin(dsn: str, statement: str) -> None:
    """Run one statement on the server, from a thread of its own: fixtures that call this
    may be set up while the test's event loop runs (`request.getfixturevalue`)."""

    async def run() -> None:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(asyncio.run, run()).result()


@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    """A new, empty database on `server` (a DSN) while the block runs; dropped after it."""
    name = f"bodega_test_{os.getpid()}_{next(_DATABASES)}"
    admin(server, f'CREATE DATABASE "{name}"')
    try:
        yield _dsn_for(server, name)
    finally:
        # FORCE: a test that failed may have left a pool open.
        admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_database(postgres_server: str) -> Iterator[str]:
    """One database for the session's tests, which postgres_dsn empties for each."""
    with fresh_database(postgres_server) as dsn:
        yield dsn


# Emptying the tables (schema kept, migrations applied once) takes a tenth of the time of a
# new database per test. Connections a test left behind are cut first, as DROP DATABASE
# WITH (FORCE) would: they may hold locks the TRUNCATE would wait on.
_EMPTY = """
DO $$
DECLARE tables text;
BEGIN
  PERFORM pg_terminate_backend(pid) FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid();
  SELECT string_agg(format('%I', tablename), ', ') INTO tables FROM pg_tables
    WHERE schemaname = 'public' AND tablename <> 'bodega_schema';
  IF tables IS NOT NULL THEN
    EXECUTE 'TRUNCATE ' || tables || ' RESTART IDENTITY';
  END IF;
END $$
"""


@pytest.fixture
def postgres_dsn(postgres_database: str) -> str:
    """The session's database, emptied for this test: as a new one, with the schema made."""
    admin(postgres_database, _EMPTY)
    return postgres_database


@pytest.fixture
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A cluster of the test's own, for tests that stop or restart the server."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        if os.environ.get(REQUIRE_VARIABLE):
            pytest.fail("PostgreSQL is not installed (Debian: apt-get install postgresql)")
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    cluster = PostgresCluster(bin_dir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
