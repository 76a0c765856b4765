"""Load: 200 concurrent clients installing a mixed set through bodega from a cold cache.

Each client reads the JSON pages of a few projects, as pip and uv do, then downloads files
from them, checking each body against the page's sha256. bodega runs as a subprocess so it
has a core of its own. Bounded: 200 clients, 4 projects each, 120 s at most.
"""

import asyncio
import hashlib
import random
import ssl
from pathlib import Path

import httpx
import pytest

from tests.hardening.invariants import check_invariants
from tests.support.distributions import BuiltFile, build_sdist, build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.servers import BodegaProcess

JSON = "application/vnd.pypi.simple.v1+json"
CLIENTS = 200
PROJECTS = [f"proj-{n}" for n in range(30)]


def mixed_set() -> dict[str, list[BuiltFile]]:
    """30 projects, two versions each, a wheel and an sdist: 120 files, 10 KB to 600 KB."""
    chooser = random.Random(7)
    return {
        name: [
            build_wheel(
                name, "1.0", payload_size=chooser.choice([10_000, 50_000, 200_000, 600_000])
            ),
            build_wheel(name, "2.0", payload_size=chooser.choice([10_000, 50_000, 200_000])),
            build_sdist(name, "2.0"),
        ]
        for name in PROJECTS
    }


async def install(client: httpx.AsyncClient, bodega: str, seed: int) -> int:
    """One client: pages first, then the files it picked; returns the bytes it verified."""
    chooser = random.Random(seed)
    verified = 0
    for project in chooser.sample(PROJECTS, 4):
        page_url = f"{bodega}simple/{project}/"
        page = await client.get(page_url, headers={"Accept": JSON})
        assert page.status_code == 200, (project, page.status_code)
        files = page.json()["files"]
        for entry in chooser.sample(files, 2):
            url = httpx.URL(page_url).join(entry["url"])
            response = await client.get(url)
            assert response.status_code == 200, (entry["filename"], response.status_code)
            assert hashlib.sha256(response.content).hexdigest() == entry["hashes"]["sha256"]
            verified += len(response.content)
    return verified


@pytest.mark.load
async def test_200_concurrent_clients_from_a_cold_cache(
    fake_index: FakeIndex, tmp_path: Path
) -> None:
    """No error, every body's hash right, no file or page downloaded twice upstream."""
    files = mixed_set()
    for project, built in files.items():
        for file in built:
            fake_index.add(project, file)
    # Slow the files a little so many clients really do wait on the same download.
    for built in files.values():
        fake_index.throttle(built[0].filename, bytes_per_second=2_000_000, chunk=64_000)
    data_dir = tmp_path / "data"
    args = ["--data-dir", str(data_dir), "--upstream", fake_index.simple_url]
    server = await asyncio.to_thread(BodegaProcess, args)
    tls = ssl.create_default_context()  # one context for all: building 200 would take seconds
    try:
        clients = [
            httpx.AsyncClient(trust_env=False, timeout=60, verify=tls) for _ in range(CLIENTS)
        ]
        try:
            async with asyncio.timeout(120):
                verified = await asyncio.gather(
                    *(install(client, server.url, seed) for seed, client in enumerate(clients))
                )
        finally:
            await asyncio.gather(*(client.aclose() for client in clients))
        assert server.process.poll() is None
    finally:
        await asyncio.to_thread(server.stop)
        # Shown by pytest only when the test fails: bodega's warnings and errors.
        print("".join(line for line in server.log if " INFO " not in line))
    assert sum(verified) > 0
    for project, built in files.items():
        assert fake_index.count("GET", f"/simple/{project}/") <= 1, project
        for file in built:
            assert fake_index.count("GET", file.filename) <= 1, file.filename
    state = check_invariants(data_dir)
    assert state.orphans == set()
    assert list((data_dir / "tmp").iterdir()) == []
