"""Three bodega replicas on one PostgreSQL and one object store, behind a load balancer
(issue 14): one upstream download per file however the clients spread over the replicas, a
page fetched by one a hit on the others, a replica killed mid-download finished by another
with nothing partial left behind, PostgreSQL restarted and the object store stopped under
them, and pip and uv installing through the balancer."""

import asyncio
import functools
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

from bodega.storage.s3blobs import open_s3_blobs
from tests.cluster.conftest import Cluster
from tests.support.clients import (
    MODULES,
    NEWEST,
    installed_versions,
    new_venv,
    pip_env,
    published_tree,
    run,
    uv_env,
)
from tests.support.distributions import BuiltFile, build_wheel
from tests.support.seaweedfs import aws_environ
from tests.support.waiting import eventually

HERD = 30
UV = Path(sys.executable).parent / "uv"  # the dev extra pins uv, and a current pip
PIP = [sys.executable, "-m", "pip"]
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


async def fetch_all(urls: list[str]) -> list[httpx.Response | BaseException]:
    """Every URL at once, each on a connection of its own: the balancer spreads them."""
    async with httpx.AsyncClient(timeout=60) as client:
        return await asyncio.gather(*(client.get(url) for url in urls), return_exceptions=True)


async def fetch_one(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=60) as client:
        return await client.get(url)


async def rows(cluster: Cluster, query: str, *args: object) -> list[tuple[object, ...]]:
    connection = await asyncpg.connect(cluster.postgres.dsn)
    try:
        return [tuple(row) for row in await connection.fetch(query, *args)]
    finally:
        await connection.close()


async def stored_size(cluster: Cluster, key: str) -> int | None:
    with aws_environ(cluster.store):
        async with open_s3_blobs(cluster.blob_store) as blobs:
            return await blobs.size(key)


async def page_stored(cluster: Cluster, project: str) -> None:
    """Until the page fetched through one replica is in the database (written behind the
    answer), where the others read it."""
    await eventually(lambda: rows(cluster, "SELECT 1 FROM pages WHERE project = $1", project), bool)


def file_url(base: str, built: BuiltFile) -> str:
    return f"{base}files/{built.filename.split('-')[0]}/{built.filename}"


async def test_a_herd_on_one_cold_file_across_replicas_downloads_it_once(
    cluster: Cluster,
) -> None:
    herd = build_wheel("herd", "1.0", payload_size=2 * 1024 * 1024)
    cluster.index.add("herd", herd)
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{cluster.url}simple/herd/")).status_code == 200
    await page_stored(cluster, "herd")
    assert cluster.balancer is not None
    before = cluster.balancer.connections.copy()
    # Held after its first bytes, so every request arrives while the download is under way.
    cluster.index.pause(herd.filename, after_bytes=256 * 1024)
    herd_requests = asyncio.ensure_future(fetch_all([file_url(cluster.url, herd)] * HERD))
    await asyncio.sleep(1.5)
    cluster.index.reset_faults()
    responses = await herd_requests
    bodies = [r.content for r in responses if isinstance(r, httpx.Response) and r.is_success]
    assert bodies == [herd.data] * HERD, responses
    assert cluster.index.count("GET", herd.filename) == 1
    spread = cluster.balancer.connections - before
    assert len(spread) == len(cluster.replicas), spread  # every replica had its share


async def test_a_page_fetched_through_one_replica_is_a_hit_on_the_others(
    cluster: Cluster,
) -> None:
    cluster.index.add("sharedpage", build_wheel("sharedpage", "1.0"))
    async with httpx.AsyncClient() as client:
        first = await client.get(f"{cluster.replicas[0].url}simple/sharedpage/", headers=JSON)
        assert first.status_code == 200
        await page_stored(cluster, "sharedpage")
        for replica in cluster.replicas[1:]:
            page = await client.get(f"{replica.url}simple/sharedpage/", headers=JSON)
            assert page.json() == first.json()
    assert cluster.index.count("GET", "/simple/sharedpage/") == 1


async def test_a_replica_killed_mid_download_is_finished_by_another_and_nothing_partial_stays(
    cluster: Cluster,
) -> None:
    victim = build_wheel("victim", "1.0", payload_size=2 * 1024 * 1024)
    cluster.index.add("victim", victim)
    first, second = cluster.replicas[0], cluster.replicas[1]
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{first.url}simple/victim/")).status_code == 200
    await page_stored(cluster, "victim")
    cluster.index.pause(victim.filename, after_bytes=256 * 1024)
    try:
        cut = asyncio.ensure_future(fetch_all([file_url(first.url, victim)]))
        await eventually(
            lambda: asyncio.sleep(0.05, cluster.index.count("GET", victim.filename)), bool
        )
        waiting = asyncio.ensure_future(fetch_all([file_url(second.url, victim)]))
        await asyncio.sleep(0.5)
        assert not waiting.done()  # the first holds the file's lock
        first.kill()
        # Its lock went with its connection: the second downloads it now (held again).
        await eventually(
            lambda: asyncio.sleep(0.05, cluster.index.count("GET", victim.filename)),
            lambda count: count == 2,
        )
        # Nothing of the killed replica's download was published, in the bucket or the DB.
        assert await stored_size(cluster, victim.sha256) is None
        assert await rows(cluster, "SELECT 1 FROM blobs WHERE key = $1", victim.sha256) == []
        cluster.index.reset_faults()
        [finished] = await waiting
        assert isinstance(finished, httpx.Response)
        assert finished.content == victim.data
        [cut_short] = await cut
        assert isinstance(cut_short, BaseException) or cut_short.content != victim.data
        assert cluster.index.count("GET", victim.filename) == 2
        assert await stored_size(cluster, victim.sha256) == len(victim.data)
        [(size,)] = await rows(cluster, "SELECT size FROM blobs WHERE key = $1", victim.sha256)
        assert size == len(victim.data)
    finally:
        cluster.index.reset_faults()
        await asyncio.to_thread(cluster.restart_replica, 0)


async def test_replicas_carry_on_after_postgresql_restarts(cluster: Cluster) -> None:
    before = build_wheel("prerestart", "1.0")
    after = build_wheel("postrestart", "1.0", payload_size=1024 * 1024)
    cluster.index.add("prerestart", before)
    cluster.index.add("postrestart", after)
    assert (await fetch_one(file_url(cluster.url, before))).content == before.data
    await page_stored(cluster, "prerestart")
    await asyncio.to_thread(cluster.postgres.restart)
    async with httpx.AsyncClient(timeout=30) as client:
        for replica in cluster.replicas:  # each on connections that broke
            page = await client.get(f"{replica.url}simple/prerestart/")
            assert page.status_code == 200
            hit = await client.get(file_url(replica.url, before))
            assert hit.content == before.data
            assert (await client.get(f"{replica.url}simple/postrestart/")).status_code == 200
    await page_stored(cluster, "postrestart")
    # The fetch locks are back too: a cold file across replicas is downloaded once.
    cluster.index.pause(after.filename, after_bytes=128 * 1024)
    herd = asyncio.ensure_future(fetch_all([file_url(cluster.url, after)] * 6))
    await asyncio.sleep(1.0)
    cluster.index.reset_faults()
    responses = await herd
    assert all(isinstance(r, httpx.Response) and r.content == after.data for r in responses)
    assert cluster.index.count("GET", after.filename) == 1


async def test_with_the_object_store_down_files_fail_with_a_reason_and_pages_serve(
    cluster: Cluster,
) -> None:
    # Larger than the small files a replica keeps in memory, which it serves without a store.
    cached = build_wheel("storeless", "1.0", payload_size=300_000)
    cluster.index.add("storeless", cached)
    assert (await fetch_one(file_url(cluster.url, cached))).content == cached.data
    await eventually(lambda: stored_size(cluster, cached.sha256), lambda size: size is not None)
    await page_stored(cluster, "storeless")
    await asyncio.to_thread(cluster.store.stop)
    try:
        # The replicas at once: each takes seconds to give up on the store (its client's
        # retries), which would add up.
        await asyncio.gather(*(_without_store(replica.url, cached) for replica in cluster.replicas))
    finally:
        await asyncio.to_thread(cluster.store.start)
    async with httpx.AsyncClient(timeout=30) as client:
        for replica in cluster.replicas:
            # A store just started may still fail a read for a moment (seen under load; its
            # listings answer first): until it serves the blob again, the hit is the 503
            # naming the store that _without_store checks, never a cut or wrong body.
            get_file = functools.partial(client.get, file_url(replica.url, cached))
            hit = await eventually(get_file, lambda answer: answer.status_code != 503)
            assert hit.headers["X-Bodega-Cache"] == "HIT"
            assert hit.content == cached.data
            # Ready again once its probe of the store passes: a store just started may still
            # refuse for a moment (seen under load), which readiness rightly reports.
            ready = functools.partial(client.get, f"{replica.url}-/ready")
            await eventually(ready, lambda answer: answer.status_code == 200)
    assert cluster.index.count("GET", cached.filename) == 1


async def _without_store(replica: str, cached: BuiltFile) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        page = await client.get(f"{replica}simple/storeless/")
        assert page.status_code == 200
        response = await client.get(file_url(replica, cached))
        assert response.status_code == 503
        assert "object store is unavailable" in response.text
        ready = await client.get(f"{replica}-/ready")
        assert ready.status_code == 503
        assert "the object store " in ready.json()["blobs"]


@pytest.fixture(scope="module")
def published(cluster: Cluster) -> dict[str, list[BuiltFile]]:
    """The installers' dependency tree, on the cluster's index once for both."""
    files = published_tree()
    for project, built in files.items():
        for file in built:
            cluster.index.add(project, file)
    return files


@pytest.mark.parametrize("client", ["pip", "uv"])
def test_installers_install_through_the_balancer(
    client: str, cluster: Cluster, published: dict[str, list[BuiltFile]], tmp_path: Path
) -> None:
    python = new_venv(tmp_path / "venv")
    index_url = f"{cluster.url}simple/"
    if client == "pip":
        command = [*PIP, "--python", str(python), "install", "--index-url", index_url, "app"]
        env = pip_env(tmp_path / "cache")
    else:
        command = [str(UV), "pip", "install", "--python", str(python)]
        command += ["--default-index", index_url, "app"]
        env = uv_env(tmp_path / "cache")
    run(command, env, tmp_path, cluster.replicas[0])
    assert installed_versions(python, MODULES, tmp_path) == NEWEST
    # However the installs spread over the replicas, each file came from upstream once.
    for built in published.values():
        for file in built:
            assert cluster.index.count("GET", file.filename) <= 1, file.filename
