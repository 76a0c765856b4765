"""`bodega serve --workers N` as a user runs it: a supervisor and N worker processes on one
port and one data dir, started, killed and stopped for real (web/workers.py)."""

import asyncio
import hashlib
import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.test_accounts_cli import TOKEN, write_config
from tests.integration.test_cli import UNUSED_UPSTREAM, assert_refused, listening_port, serve
from tests.integration.test_s3 import plant_copy
from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.seaweedfs import BUCKET, SeaweedFS, aws_environ
from tests.support.servers import BodegaProcess, bodega_process

WHEEL = build_wheel("demo", "1.0", payload_size=300_000)
CLIENTS = 16  # connections of their own: the kernel spreads them over both workers
__all__ = ["listening_port"]  # a fixture of the CLI's tests, used here too


@pytest.fixture
def index(fake_index: FakeIndex) -> FakeIndex:
    fake_index.add("demo", WHEEL)
    return fake_index


@pytest.fixture
def workers(index: FakeIndex, tmp_path: Path) -> Iterator[BodegaProcess]:
    with bodega_process(tmp_path / "data", index.simple_url, "--workers", "2") as server:
        yield server


def children(server: BodegaProcess) -> list[int]:
    pid = server.process.pid
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def served_files(data_dir: Path, worker: int) -> int:
    """File requests the worker answered 200, from the numbers it writes for the others."""
    try:
        text = (data_dir / "metrics" / f"worker-{worker}.prom").read_text()
    except FileNotFoundError:
        return 0
    found = re.search(r'^bodega_requests_total\{route="file",status="200"\} (\d+)$', text, re.M)
    return int(found.group(1)) if found else 0


async def get_alone(url: str) -> httpx.Response:
    async with httpx.AsyncClient(trust_env=False, timeout=30) as own:  # its own connection
        return await own.get(url)


def until(predicate: object, seconds: float = 10.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "not within the time given"
        time.sleep(0.05)


async def test_workers_download_a_file_from_upstream_once_whichever_is_asked(
    index: FakeIndex, workers: BodegaProcess, tmp_path: Path
) -> None:
    index.throttle(WHEEL.filename, bytes_per_second=600_000, chunk=20_000)  # about 0.5 s
    url = f"{workers.url}files/demo/{WHEEL.filename}"
    responses = await asyncio.gather(*(get_alone(url) for _ in range(CLIENTS)))
    assert {r.status_code for r in responses} == {200}
    assert {hashlib.sha256(r.content).hexdigest() for r in responses} == {WHEEL.sha256}
    assert index.count("GET", WHEEL.filename) == 1
    data_dir = tmp_path / "data"
    # Both workers answered some of them (each writes its numbers every second).
    until(lambda: served_files(data_dir, 1) + served_files(data_dir, 2) == CLIENTS)
    assert served_files(data_dir, 1) > 0
    assert served_files(data_dir, 2) > 0


def test_each_worker_s_log_lines_say_which_worker_wrote_them(workers: BodegaProcess) -> None:
    for _ in range(CLIENTS):  # connections of their own: both workers answer some
        assert httpx.get(f"{workers.url}-/health", trust_env=False).status_code == 200

    def answered_by(worker: int) -> bool:
        return any(f"INFO worker-{worker} " in line and "/-/health" in line for line in workers.log)

    until(lambda: answered_by(1) and answered_by(2))


async def test_metrics_count_every_worker_s_requests_whichever_answers_the_scrape(
    index: FakeIndex, workers: BodegaProcess
) -> None:
    url = f"{workers.url}files/demo/{WHEEL.filename}"
    for _ in range(CLIENTS):
        assert (await get_alone(url)).status_code == 200

    def scraped_files() -> int:
        text = httpx.get(f"{workers.url}-/metrics", trust_env=False).text
        found = re.search(r'^bodega_requests_total\{route="file",status="200"\} (\d+)$', text, re.M)
        return int(found.group(1)) if found else 0

    until(lambda: all(scraped_files() == CLIENTS for _ in range(8)))


def test_a_worker_killed_is_started_again_and_the_server_answers_meanwhile(
    workers: BodegaProcess,
) -> None:
    first, second = children(workers)
    os.kill(first, signal.SIGKILL)
    # The other worker answers every connection the kernel gives it meanwhile; those that
    # land on the dead one's socket are refused, and clients try again.
    until(lambda: len(children(workers)) == 2 and first not in children(workers))
    assert second in children(workers)
    until(lambda: any("ended (exit status -9)" in line for line in workers.log))
    for _ in range(CLIENTS):
        assert httpx.get(f"{workers.url}-/health", trust_env=False).status_code == 200


def test_sigterm_stops_every_worker_and_the_server_exits_0(workers: BodegaProcess) -> None:
    pids = children(workers)
    assert len(pids) == 2
    assert workers.stop() == 0
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid)


def test_a_worker_ends_with_its_supervisor_even_one_killed(workers: BodegaProcess) -> None:
    pids = children(workers)
    workers.kill()  # kill -9: no word to the workers
    for pid in pids:
        until(lambda pid=pid: not Path(f"/proc/{pid}").exists() or _is_zombie(pid), 15.0)


def test_a_taken_port_is_one_clear_line_with_workers_too(
    tmp_path: Path, listening_port: int
) -> None:
    result = serve(
        *("--port", str(listening_port), "--upstream", UNUSED_UPSTREAM, "--workers", "2"),
        *("--data-dir", str(tmp_path / "data")),
    )
    assert_refused(result, f"port {listening_port} on 127.0.0.1 is already in use")


def test_a_second_server_on_the_data_dir_is_refused_while_workers_serve_it(
    workers: BodegaProcess, tmp_path: Path
) -> None:
    result = serve(
        *("--port", "0", "--upstream", UNUSED_UPSTREAM),
        *("--data-dir", str(tmp_path / "data")),
    )
    assert_refused(result, "in use by another bodega")


async def test_workers_keep_their_own_local_copies_and_the_start_removes_the_rest(
    index: FakeIndex, seaweedfs: SeaweedFS, tmp_path: Path
) -> None:
    """With --local-cache-size each worker has its copies folder; those of an earlier start
    alone or with more workers go at the start (nothing would count them again)."""
    data_dir = tmp_path / "data"
    copies = data_dir / "blob-copies"
    plant_copy(copies, WHEEL.data)
    plant_copy(copies / "worker-2", WHEEL.data)
    plant_copy(copies / "worker-3", WHEEL.data)
    options = ["--blob-store", f"s3://{BUCKET}/{uuid.uuid4().hex}", "--local-cache-size", "1M"]
    with (
        aws_environ(seaweedfs),
        bodega_process(data_dir, index.simple_url, "--workers", "2", *options) as server,
    ):
        assert sorted(path.name for path in copies.iterdir()) == ["worker-2"]
        for _ in range(CLIENTS):
            response = await get_alone(f"{server.url}files/demo/{WHEEL.filename}")
            assert response.content == WHEEL.data
    assert index.count("GET", WHEEL.filename) == 1


def test_the_data_dir_stays_locked_until_the_last_worker_has_ended(
    workers: BodegaProcess, tmp_path: Path
) -> None:
    """The supervisor killed with -9 lets go of its lock; the workers hold it on until they
    have ended, so no new server clears their spools under their downloads."""
    pids = children(workers)
    os.kill(pids[0], signal.SIGSTOP)  # one worker that cannot end yet
    try:
        workers.kill()
        result = serve(
            *("--port", "0", "--upstream", UNUSED_UPSTREAM),
            *("--data-dir", str(tmp_path / "data")),
        )
        assert_refused(result, "in use by another bodega")
    finally:
        os.kill(pids[0], signal.SIGCONT)
    for pid in pids:
        until(lambda pid=pid: not Path(f"/proc/{pid}").exists() or _is_zombie(pid), 15.0)


def test_the_supervisor_prints_the_first_admin_token_once_and_every_worker_takes_it(
    index: FakeIndex, tmp_path: Path
) -> None:
    config = write_config(tmp_path, index.simple_url, 'upload = ["alice"]')
    server = BodegaProcess(
        ["--config", str(config), "--data-dir", str(tmp_path / "data"), "--workers", "2"]
    )
    try:
        until(lambda: TOKEN.search(server.banner + "".join(server.log)) is not None)
        (token,) = TOKEN.findall(server.banner + "".join(server.log))
        page = f"{server.url}acme/private/+simple/demo/"
        for _ in range(CLIENTS):  # connections of their own: both workers answer some
            answer = httpx.get(page, auth=("__token__", token), trust_env=False)
            assert answer.status_code == 200
    finally:
        assert server.stop() == 0
    assert TOKEN.findall(server.banner + "".join(server.log)) == [token]


def test_failed_logins_are_counted_across_workers(index: FakeIndex, tmp_path: Path) -> None:
    """Ten wrong passwords hold the address back whichever worker each reached (the
    failures are in the database the workers share, not in each worker's memory)."""
    config = write_config(tmp_path, index.simple_url)  # acme/private: alice reads
    server = BodegaProcess(
        ["--config", str(config), "--data-dir", str(tmp_path / "data"), "--workers", "2"]
    )
    try:
        page = f"{server.url}acme/private/+simple/demo/"

        def status(password: str) -> int:  # a connection of its own each time
            return httpx.get(page, auth=("alice", password), trust_env=False).status_code

        assert [status(f"guess{n}") for n in range(10)] == [401] * 10
        assert [status(f"late{n}") for n in range(CLIENTS // 2)] == [429] * (CLIENTS // 2)
    finally:
        assert server.stop() == 0


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return False
