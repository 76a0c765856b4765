"""The shared backends of the `bodega-shared` column: one PostgreSQL cluster and one SeaweedFS
store for the whole run, started with the test suite's own starters (tests/support: one home
for how to run them), a fresh database and bucket prefix for every start of the column.

The test suite never imports the bench; the bench borrows these two classes from it.
"""

import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from processes import cpu_seconds, descendants

REPOSITORY = Path(__file__).resolve().parent.parent
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))

from tests.support import postgres, seaweedfs  # noqa: E402


class SharedBackends:
    """PostgreSQL + SeaweedFS on loopback; `fresh()` gives a new database and bucket prefix."""

    def __init__(self, cluster: postgres.PostgresCluster, store: seaweedfs.SeaweedFS) -> None:
        self.cluster = cluster
        self.store = store

    def fresh(self) -> tuple[str, str]:
        """A new, empty database's URL and a new prefix of the bucket: a cold start."""
        name = f"bench_{uuid.uuid4().hex[:12]}"
        # Never dropped: the whole cluster is deleted at the end of the run.
        postgres.admin(self.cluster.dsn, f'CREATE DATABASE "{name}"')
        dsn = self.cluster.dsn.rsplit("/", 1)[0] + "/" + name
        return dsn, f"s3://{seaweedfs.BUCKET}/{name}"

    def environment(self) -> dict[str, str]:
        return self.store.environ()

    def cpu_seconds(self) -> float:
        """CPU time used so far by PostgreSQL (the postmaster and its backends) and SeaweedFS."""
        pids = []
        postmaster = self.cluster.data / "postmaster.pid"
        if postmaster.exists():
            leader = int(postmaster.read_text().split()[0])
            pids += [leader, *descendants(leader)]
        if self.store.process is not None:
            pids.append(self.store.process.pid)
        return cpu_seconds(pids)


def missing() -> str | None:
    """Why the shared backends cannot run here, or None."""
    if postgres.find_pg_bin() is None:
        return "PostgreSQL is not installed (Debian: apt-get install postgresql)"
    binary = seaweedfs.SERVER_VENVS / "seaweedfs" / "bin" / "weed"
    if not binary.is_file():
        return f"{binary.relative_to(REPOSITORY)} is missing (./dev test installs it)"
    return None


@contextmanager
def shared_backends() -> Iterator[SharedBackends]:
    """Both servers for the block, stopped and deleted after it."""
    bin_dir = postgres.find_pg_bin()
    assert bin_dir is not None, "checked by missing()"
    cluster = postgres.PostgresCluster(bin_dir)
    directory = Path(tempfile.mkdtemp(prefix="bodega-bench-weed-"))
    store = seaweedfs.SeaweedFS(
        seaweedfs.SERVER_VENVS / "seaweedfs" / "bin" / "weed",
        directory,
        seaweedfs.free_ports(),
    )
    try:
        cluster.start()
        store.start()
        yield SharedBackends(cluster, store)
    finally:
        try:
            store.stop()
        finally:
            shutil.rmtree(directory, ignore_errors=True)
            cluster.remove()
