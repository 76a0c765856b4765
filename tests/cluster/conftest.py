"""A cluster of bodegas for the module's tests: three replicas (real processes) sharing one
PostgreSQL of their own and one prefix of the session's SeaweedFS bucket, behind a loopback
round-robin balancer, in front of one fake index. Made once per module (starting it is most
of the module's time); tests use projects of their own, and one that kills a replica or stops
a server starts it again."""

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.balancer import Balancer, balancer
from tests.support.clients import isolated_env
from tests.support.fake_index import FakeIndex
from tests.support.postgres import PostgresCluster, find_pg_bin
from tests.support.seaweedfs import BUCKET, SeaweedFS
from tests.support.servers import BodegaProcess

REPLICAS = 3


@dataclass
class Cluster:
    index: FakeIndex
    postgres: PostgresCluster
    store: SeaweedFS
    blob_store: str  # the replicas' --blob-store
    data: Path
    replicas: list[BodegaProcess] = field(default_factory=list)
    balancer: Balancer | None = None

    @property
    def url(self) -> str:
        """The balancer's: what clients are given."""
        assert self.balancer is not None
        return self.balancer.url

    def replica_args(self, number: int) -> list[str]:
        return [
            "--data-dir",
            str(self.data / f"replica-{number}"),
            "--upstream",
            self.index.simple_url,
            "--database",
            self.postgres.dsn,
            "--blob-store",
            self.blob_store,
            "--index-ttl",
            "600",
        ]

    def start_replica(self, number: int) -> BodegaProcess:
        # Any proxy of this machine's is dead to the replicas: everything is on loopback.
        proxies = {k: v for k, v in isolated_env().items() if k.upper().endswith("_PROXY")}
        return BodegaProcess(self.replica_args(number), {**proxies, **self.store.environ()})

    def restart_replica(self, number: int) -> None:
        """A replica started again in place of one killed, and the balancer told."""
        self.replicas[number].stop()
        self.replicas[number] = self.start_replica(number)
        assert self.balancer is not None
        self.balancer.set_backends(self.backends())

    def backends(self) -> list[tuple[str, int]]:
        addresses = [urlsplit(replica.url) for replica in self.replicas]
        return [(str(address.hostname), int(address.port or 80)) for address in addresses]

    def stop(self) -> None:
        for replica in self.replicas:
            replica.stop()


@pytest.fixture(scope="module")
def cluster(seaweedfs: SeaweedFS, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    postgres = PostgresCluster(bin_dir)
    with FakeIndex() as index:
        try:
            postgres.start()
            made = Cluster(
                index,
                postgres,
                seaweedfs,
                f"s3://{BUCKET}/{uuid.uuid4().hex}/cache",
                tmp_path_factory.mktemp("cluster"),
            )
            try:
                # The first replica makes the schema; the others then start together.
                made.replicas.append(made.start_replica(0))
                with ThreadPoolExecutor(REPLICAS - 1) as pool:
                    made.replicas += pool.map(made.start_replica, range(1, REPLICAS))
                with balancer(made.backends()) as running:
                    made.balancer = running
                    yield made
            finally:
                made.stop()
        finally:
            postgres.remove()
