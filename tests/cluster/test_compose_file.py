"""compose.cluster.yaml run without a container engine (issue 14): each service's part
started here as its container would start it, every fact read from the compose file and the
Dockerfile. PostgreSQL with the role and database the postgres service names, SeaweedFS with
the seaweedfs service's bucket and keys, both replicas by the image's ENTRYPOINT and CMD with
the compose file's environment, and Debian's nginx with the balancer's own configuration.
Only addresses change: the services' names become loopback ports, and a fake index stands in
for the public one. The secrets are the test's own, as a .env would give them."""

import os
import secrets
import shutil
import subprocess
import tempfile
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.support.clients import (
    MODULES,
    NEWEST,
    client_tool,
    installed_versions,
    isolated_env,
    new_venv,
    pip_env,
    published_tree,
    run,
)
from tests.support.cluster_compose import (
    REPLICAS,
    balancer_config_on_loopback,
    filled_environment,
    healthcheck_url,
    on_loopback,
    required_variables,
    services,
)
from tests.support.distributions import BuiltFile, build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.image import exec_form, image_environment, start_command
from tests.support.nginx import Nginx, find_nginx, running_nginx
from tests.support.ports import free_port
from tests.support.postgres import REQUIRE_VARIABLE, PostgresCluster, create_owner, find_pg_bin
from tests.support.seaweedfs import SeaweedFS, free_ports, weed_binary
from tests.support.servers import BodegaProcess
from tests.support.waiting import wait_for


@dataclass
class ComposeRun:
    index: FakeIndex
    postgres: PostgresCluster
    store: SeaweedFS
    variables: dict[str, str]  # the .env: the compose file's required variables
    folder: Path  # the replicas' volumes
    ports: dict[str, int]  # each replica's BODEGA_PORT, kept across a restart
    replicas: dict[str, BodegaProcess]
    balancer: Nginx | None = None

    @property
    def url(self) -> str:
        """The balancer's: what clients are given."""
        assert self.balancer is not None
        return self.balancer.url

    def replica_environment(self, service: str) -> dict[str, str]:
        # The image's ENV, then the compose file's: compose's environment wins.
        image = {k: v for k, v in image_environment().items() if k.startswith("BODEGA_")}
        addresses = {"postgres": self.postgres.port, "seaweedfs": self.store.ports["s3"]}
        composed = filled_environment(service, self.variables)
        composed = {name: on_loopback(value, addresses) for name, value in composed.items()}
        # What cannot be the same here: loopback for every interface, a port and a volume of
        # the replica's own, the fake index for the public one (the image's default).
        here = {
            "BODEGA_HOST": "127.0.0.1",
            "BODEGA_PORT": str(self.ports[service]),
            "BODEGA_DATA_DIR": str(self.folder / service),
            "BODEGA_UPSTREAM": self.index.simple_url,
        }
        # Nothing of this machine's may reach the replica: its proxies are dead ones (the
        # fake index is on 127.0.0.1), its AWS files none.
        machine = {k: v for k, v in isolated_env().items() if k.upper().endswith("_PROXY")}
        machine |= {k: v for k, v in self.store.environ().items() if k not in composed}
        return image | composed | here | machine

    def start_replica(self, service: str) -> BodegaProcess:
        (self.folder / service).mkdir(exist_ok=True)  # the volume, as the image leaves it
        # As a container starts: none of the test run's own BODEGA_* settings underneath.
        base = {k: v for k, v in os.environ.items() if not k.startswith("BODEGA_")}
        replica = BodegaProcess(
            [], self.replica_environment(service), command=start_command(), base_env=base
        )
        self.replicas[service] = replica
        return replica

    def stop_replicas(self) -> None:
        for replica in self.replicas.values():
            replica.stop()

    def served(self, service: str, request_line: str) -> int:
        """How many of `request_line`'s requests the replica's access log shows (answered)."""
        return sum(1 for line in self.replicas[service].log if f'"{request_line} HTTP/' in line)


@pytest.fixture(scope="module")
def compose_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeRun]:
    """Every service of the compose file, once for the module (starting them is most of its
    time); each is stopped, by its pid, and its folder deleted after it."""
    nginx = find_nginx()
    if nginx is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx)")
    bin_dir = find_pg_bin()
    if bin_dir is None:
        if os.environ.get(REQUIRE_VARIABLE):
            pytest.fail("PostgreSQL is not installed (Debian: apt-get install postgresql)")
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    weed = weed_binary()  # skips, or fails under ./dev test, when missing
    folder = tmp_path_factory.mktemp("compose")
    variables = {name: secrets.token_hex(16) for name in required_variables()}
    with ExitStack() as stack:
        postgres = PostgresCluster(bin_dir)
        stack.callback(postgres.remove)
        postgres.start()
        database = filled_environment("postgres", variables)
        create_owner(
            postgres,
            database["POSTGRES_USER"],
            database["POSTGRES_PASSWORD"],
            database["POSTGRES_DB"],
        )

        # Not under pytest's folders: weed keeps its data there, and a short path is kinder.
        store_dir = Path(tempfile.mkdtemp(prefix="bodega-compose-weed-"))
        stack.callback(shutil.rmtree, store_dir, ignore_errors=True)
        objects = filled_environment("seaweedfs", variables)
        store = SeaweedFS(
            weed,
            store_dir,
            free_ports(),
            access_key=objects["AWS_ACCESS_KEY_ID"],
            secret_key=objects["AWS_SECRET_ACCESS_KEY"],
            bucket=objects["S3_BUCKET"],
        )
        stack.callback(store.stop)
        store.start()

        index = stack.enter_context(FakeIndex())
        for project, built in published_tree().items():
            for file in built:
                index.add(project, file)

        ports = {service: free_port() for service in REPLICAS}
        made = ComposeRun(index, postgres, store, variables, folder, ports, {})
        stack.callback(made.stop_replicas)
        # Together, as compose starts them once their dependencies are healthy.
        with ThreadPoolExecutor(len(REPLICAS)) as pool:
            list(pool.map(made.start_replica, REPLICAS))

        listen = free_port()
        site = balancer_config_on_loopback(ports, listen)
        made.balancer = stack.enter_context(running_nginx(nginx, folder / "nginx", site, listen))
        yield made


def file_path(built: BuiltFile) -> str:
    return f"/files/{built.filename.split('-')[0]}/{built.filename}"


def file_url(base: str, built: BuiltFile) -> str:
    return base.rstrip("/") + file_path(built)


def get(url: str) -> httpx.Response:
    return httpx.get(url, trust_env=False, timeout=30)


def test_pip_installs_through_the_balancer_both_replicas_serving_one_upstream_get_per_file(
    compose_run: ComposeRun, tmp_path: Path
) -> None:
    python = new_venv(tmp_path / "venv")
    pip = [str(client_tool("pip-current", "python")), "-m", "pip", "--python", str(python)]
    index_url = f"{compose_run.url}simple/"
    command = [*pip, "install", "--index-url", index_url, "app"]
    run(command, pip_env(tmp_path / "cache"), tmp_path, compose_run.replicas[REPLICAS[0]])
    assert installed_versions(python, MODULES, tmp_path) == NEWEST

    installed = [
        file
        for project, built in published_tree().items()
        for file in built
        if file.filename.startswith(f"{project}-{NEWEST[project]}-")
    ]
    assert len(installed) == len(NEWEST)
    for built in installed:
        assert compose_run.index.count("GET", built.filename) == 1, built.filename
    # The biggest of them again, as often as it takes for the balancer's turns to reach both
    # replicas: both send it, neither asks upstream again.
    app = max(installed, key=lambda built: len(built.data))
    request_line = f"GET {file_path(app)}"
    for _ in range(4):
        response = get(file_url(compose_run.url, app))
        assert response.status_code == 200
        assert response.content == app.data
    wait_for(lambda: all(compose_run.served(replica, request_line) for replica in REPLICAS))
    assert compose_run.index.count("GET", app.filename) == 1


def test_the_compose_files_healthchecks_pass(compose_run: ComposeRun) -> None:
    # The replicas': their image's HEALTHCHECK, run as the image runs it (/-/health).
    for service in REPLICAS:
        check = subprocess.run(
            exec_form("HEALTHCHECK"),
            env={**isolated_env(), "BODEGA_PORT": str(compose_run.ports[service])},
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert check.returncode == 0, check.stderr
    # The balancer's URL, on the port it listens on here: /-/health through nginx.
    balancer = urllib.parse.urlsplit(healthcheck_url("balancer"))
    assert compose_run.balancer is not None
    moved = balancer._replace(netloc=f"127.0.0.1:{compose_run.balancer.port}")
    assert get(urllib.parse.urlunsplit(moved)).status_code == 200
    # PostgreSQL's pg_isready, with the service's own arguments.
    test = services()["postgres"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "pg_isready"]
    command = [str(compose_run.postgres.bin_dir / "pg_isready"), *test[2:]]
    command += ["-h", "127.0.0.1", "-p", str(compose_run.postgres.port)]
    ready = subprocess.run(command, capture_output=True, timeout=30, check=False)
    assert ready.returncode == 0, ready.stdout


async def test_the_replicas_reach_postgresql_as_the_compose_files_role_by_its_password(
    compose_run: ComposeRun,
) -> None:
    database = filled_environment("postgres", compose_run.variables)
    role = database["POSTGRES_USER"]
    superuser = await asyncpg.connect(compose_run.postgres.dsn)
    try:
        users = await superuser.fetch(
            "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = $1",
            database["POSTGRES_DB"],
        )
    finally:
        await superuser.close()
    assert [row["usename"] for row in users] == [role]
    # The password is asked, so the one in PGPASSWORD is what let them in.
    dsn = f"postgresql://{role}@127.0.0.1:{compose_run.postgres.port}/{database['POSTGRES_DB']}"
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(dsn, password="not-" + database["POSTGRES_PASSWORD"])


def test_an_upstream_failure_is_bodegas_answer_once_and_marks_no_replica_down(
    compose_run: ComposeRun,
) -> None:
    compose_run.index.add("afterwards", build_wheel("afterwards", "1.0"))
    compose_run.index.fail_with(500, pages=True, files=True)
    try:
        # Two for each replica in turn: max_fails=2 would mark both down, had they counted.
        for attempt in range(1, 5):
            failed = get(f"{compose_run.url}simple/unreachable/")
            assert failed.status_code == 502
            # bodega's own answer, saying why; not the balancer's page.
            assert failed.text.startswith("upstream answered 500 "), failed.text
            # Asked by one replica, not again by the other: nginx passed bodega's 502 on.
            assert compose_run.index.count("GET", "/simple/unreachable/") == attempt
    finally:
        compose_run.index.reset_faults()
    # Both replicas still in the balancer's turns: each answers the healthy project.
    for _ in range(4):
        assert get(f"{compose_run.url}simple/afterwards/").status_code == 200
    request_line = "GET /simple/afterwards/"
    wait_for(lambda: all(compose_run.served(replica, request_line) for replica in REPLICAS))


def test_with_a_replica_stopped_requests_through_the_balancer_still_succeed(
    compose_run: ComposeRun,
) -> None:
    cold = build_wheel("latecomer", "1.0")
    compose_run.index.add("latecomer", cold)
    stopped, other = REPLICAS
    # SIGTERM, the image's STOPSIGNAL, as `docker compose stop bodega-1` sends it.
    assert compose_run.replicas[stopped].stop() == 0
    try:
        # Cached pages and files, and a cold project the remaining replica fetches; enough
        # requests that the balancer's turn comes to the stopped one more than once.
        for url in [
            f"{compose_run.url}simple/app/",
            f"{compose_run.url}simple/libb/",
            f"{compose_run.url}simple/latecomer/",
            file_url(compose_run.url, cold),
            f"{compose_run.url}simple/liba/",
            f"{compose_run.url}-/health",
        ]:
            response = get(url)
            assert response.status_code == 200, (url, response.text)
        assert get(file_url(compose_run.url, cold)).content == cold.data
        wait_for(lambda: compose_run.served(other, f"GET {file_path(cold)}") == 2)
        # Not by luck of the turns: nginx did try the stopped replica, and went on.
        assert compose_run.balancer is not None
        assert "Connection refused" in compose_run.balancer.error_log()
    finally:
        compose_run.start_replica(stopped)  # on its port again, for tests run after this one
