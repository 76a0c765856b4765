"""Several indexes in one bodega (issue 12), over two real upstreams on loopback: what each
index's tree serves, the first-base rule, routes, merge, and what stays shared."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bodega.core.indexes import MirrorIndex, VirtualIndex
from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.servers import bodega_in_process, make_settings

TORCH = build_wheel("torch", "2.0")
SQUATTED = build_wheel("torch", "9.0")
SHARED_GPU = build_wheel("shared", "1.0")
SHARED_PUBLIC = build_wheel("shared", "2.0")
SIX = build_wheel("six", "1.16")


@pytest.fixture
def public() -> Iterator[FakeIndex]:
    with FakeIndex() as index:
        index.add("six", SIX)
        index.add("torch", SQUATTED)
        index.add("shared", SHARED_PUBLIC)
        index.list_names(["six", "torch", "shared"])
        yield index


@pytest.fixture
def gpu() -> Iterator[FakeIndex]:
    with FakeIndex() as index:
        index.add("torch", TORCH)
        index.add("shared", SHARED_GPU)
        index.list_names(["torch", "shared"])
        yield index


def _mirror(name: str, upstream: str, **overrides: Any) -> MirrorIndex:
    fields: dict[str, Any] = {
        "index_ttl": 600.0,
        "revalidate_after": 30.0,
        "upstream_timeout": 5.0,
        "download_deadline": 600.0,
        "offline": False,
        **overrides,
    }
    return MirrorIndex(name, upstream, **fields)


@pytest.fixture
async def start(
    public: FakeIndex, gpu: FakeIndex, tmp_path: Path, database_url: str
) -> AsyncIterator[Any]:
    """Starts bodega with root/pypi (public), team/torch (gpu) and team/all over both."""

    async def started(
        *, merge: bool = False, routes: bool = True, more_routes: tuple[tuple[str, str], ...] = ()
    ) -> str:
        all_ = VirtualIndex(
            "team/all",
            ("team/torch", "root/pypi"),
            ((("torch*", "team/torch"),) if routes else ()) + more_routes,
            merge=merge,
        )
        settings = make_settings(
            data_dir=tmp_path / "data",
            database=database_url,
            upstream=public.simple_url,
            index_table=(
                _mirror("root/pypi", public.simple_url),
                _mirror("team/torch", gpu.simple_url),
                all_,
            ),
            default_index="root/pypi",
        )
        return await stack.enter_async_context(bodega_in_process(settings))

    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        yield started


async def test_each_index_serves_its_own_upstream_and_the_short_paths_the_default(
    start: Any, client: httpx.AsyncClient
) -> None:
    bodega = await start()
    for path in ("simple/", "root/pypi/+simple/"):
        page = (await client.get(f"{bodega}{path}shared/")).text
        assert SHARED_PUBLIC.filename in page
    assert SHARED_GPU.filename in (await client.get(f"{bodega}team/torch/+simple/shared/")).text
    assert (await client.get(f"{bodega}team/torch/+simple/six/")).status_code == 404


async def test_a_virtual_index_serves_each_project_whole_from_the_first_base_that_has_it(
    start: Any, client: httpx.AsyncClient, public: FakeIndex, gpu: FakeIndex
) -> None:
    bodega = await start(routes=False)
    shared = (await client.get(f"{bodega}team/all/+simple/shared/")).text
    assert SHARED_GPU.filename in shared
    assert SHARED_PUBLIC.filename not in shared
    six = (await client.get(f"{bodega}team/all/+simple/six/")).text
    assert SIX.filename in six
    # The file comes through the base that lists it, from its upstream.
    response = await client.get(f"{bodega}team/all/files/shared/{SHARED_GPU.filename}")
    assert response.content == SHARED_GPU.data
    assert gpu.count("GET", SHARED_GPU.filename) == 1
    assert public.count("GET", SHARED_GPU.filename) == 0
    # The first base's 404 for six is remembered: asked once, not on every request.
    await client.get(f"{bodega}team/all/+simple/six/")
    assert gpu.count("GET", "/simple/six/") == 1


async def test_a_route_pins_a_name_to_one_base_and_never_falls_through(
    start: Any, client: httpx.AsyncClient
) -> None:
    bodega = await start()
    torch = (await client.get(f"{bodega}team/all/+simple/torch/")).text
    assert TORCH.filename in torch
    assert SQUATTED.filename not in torch
    squatted = f"{bodega}team/all/files/torch/{SQUATTED.filename}"
    assert (await client.get(squatted)).status_code == 404


async def test_merge_unites_the_bases_pages_as_pip_would(
    start: Any, client: httpx.AsyncClient
) -> None:
    bodega = await start(merge=True, routes=False)
    page = (await client.get(f"{bodega}team/all/+simple/shared/")).text
    assert SHARED_GPU.filename in page
    assert SHARED_PUBLIC.filename in page
    response = await client.get(f"{bodega}team/all/files/shared/{SHARED_PUBLIC.filename}")
    assert response.content == SHARED_PUBLIC.data


async def test_the_json_api_of_a_merged_index_describes_the_united_page(
    start: Any, client: httpx.AsyncClient
) -> None:
    bodega = await start(merge=True, routes=False)
    described = (await client.get(f"{bodega}team/all/pypi/shared/json")).json()
    assert set(described["releases"]) == {"1.0", "2.0"}
    # The latest release lives on the second base; its METADATA comes from there.
    assert described["info"]["version"] == "2.0"
    assert described["info"]["name"] == "shared"
    assert [url["filename"] for url in described["urls"]] == [SHARED_PUBLIC.filename]
    release = (await client.get(f"{bodega}team/all/pypi/shared/1.0/json")).json()
    assert [url["filename"] for url in release["urls"]] == [SHARED_GPU.filename]


async def test_a_file_is_stored_once_whichever_index_fetched_it(
    start: Any, client: httpx.AsyncClient, public: FakeIndex
) -> None:
    bodega = await start()
    for path in ("files/six/", "root/pypi/files/six/", "team/all/files/six/"):
        await client.get(f"{bodega}team/all/+simple/six/")
        response = await client.get(f"{bodega}{path}{SIX.filename}")
        assert response.content == SIX.data
    assert public.count("GET", SIX.filename) == 1


async def test_the_json_api_of_an_index_links_that_indexs_files(
    start: Any, client: httpx.AsyncClient
) -> None:
    bodega = await start()
    document = (await client.get(f"{bodega}team/all/pypi/torch/json")).json()
    assert document["info"]["version"] == "2.0"
    url = document["urls"][0]["url"]
    assert url == f"{bodega}team/all/files/torch/{TORCH.filename}"
    assert (await client.get(url)).content == TORCH.data


async def test_a_virtual_root_list_unites_its_bases_lists(
    start: Any, client: httpx.AsyncClient
) -> None:
    bodega = await start()
    json_v1 = {"Accept": "application/vnd.pypi.simple.v1+json"}
    listed = (await client.get(f"{bodega}team/all/+simple/", headers=json_v1)).json()
    assert sorted(p["name"] for p in listed["projects"]) == ["shared", "six", "torch"]
    html = (await client.get(f"{bodega}team/torch/+simple/")).text
    assert "six" not in html


async def test_a_virtual_root_list_leaves_out_a_name_routed_to_a_base_that_lacks_it(
    start: Any, client: httpx.AsyncClient
) -> None:
    """six is pinned to team/torch, which has no six: the index cannot serve it, so its
    root list does not name it (root/pypi's six stays out)."""
    bodega = await start(more_routes=(("six", "team/torch"),))
    json_v1 = {"Accept": "application/vnd.pypi.simple.v1+json"}
    listed = (await client.get(f"{bodega}team/all/+simple/", headers=json_v1)).json()
    assert sorted(p["name"] for p in listed["projects"]) == ["shared", "torch"]
    assert (await client.get(f"{bodega}team/all/+simple/six/")).status_code == 404


async def test_the_home_page_lists_every_index_and_an_unknown_one_is_not_found(
    start: Any, client: httpx.AsyncClient
) -> None:
    bodega = await start()
    home = (await client.get(bodega)).text
    for name in ("root/pypi", "team/torch", "team/all"):
        assert f"/{name}/+simple/" in home
    assert (await client.get(f"{bodega}team/none/+simple/six/")).status_code == 404
    assert (await client.get(f"{bodega}team/none/+simple/")).status_code == 404


async def test_metrics_carry_the_index_asked(start: Any, client: httpx.AsyncClient) -> None:
    bodega = await start()
    await client.get(f"{bodega}team/all/+simple/six/")
    await client.get(f"{bodega}team/torch/+simple/torch/")
    metrics = (await client.get(f"{bodega}-/metrics")).text
    assert 'index="team/all"' in metrics
    assert 'index="team/torch"' in metrics
