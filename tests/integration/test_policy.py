"""Supply-chain policy (issue 15) through a real bodega over a fake upstream with upload
times: the minimum release age, break-glass, deny rules, upstream yanks, removals and
quarantine, the audit trail and the metrics."""

import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from bodega.core.indexes import MirrorIndex, VirtualIndex
from bodega.core.policy import IndexPolicy, parse_rule
from bodega.core.search import Criterion, Query
from bodega.services import AUDIT_FILE, Services
from bodega.storage.metadata import NewExemption
from tests.support.distributions import build_wheel
from tests.support.fake_index import JSON_TYPE, FakeIndex
from tests.support.servers import bodega_and_services, make_settings
from tests.support.waiting import eventually

DAY = 86400.0
OLD = build_wheel("pkg", "1.0")
NEW = build_wheel("pkg", "2.0")
LONG_AGO = "2020-01-01T00:00:00.000000Z"


def an_hour_ago() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))


@pytest.fixture
def upstream(fake_index: FakeIndex) -> FakeIndex:
    fake_index.add("pkg", OLD, upload_time=LONG_AGO)
    fake_index.add("pkg", NEW, upload_time=an_hour_ago())
    return fake_index


Start = Any  # async (**overrides) -> (url, services)


@pytest.fixture
async def start(upstream: FakeIndex, tmp_path: Path, database_url: str) -> AsyncIterator[Start]:
    async with AsyncExitStack() as stack:

        async def started(**overrides: Any) -> tuple[str, Services]:
            overrides.setdefault("data_dir", tmp_path / "data")
            overrides.setdefault("database", database_url)
            settings = make_settings(upstream=upstream.simple_url, **overrides)
            return await stack.enter_async_context(bodega_and_services(settings))

        yield started


async def page_files(client: httpx.AsyncClient, url: str) -> list[str]:
    response = await client.get(url + "simple/pkg/", headers={"Accept": JSON_TYPE})
    assert response.status_code == 200
    return [file["filename"] for file in response.json()["files"]]


def read_audit(data_dir: Path) -> list[dict[str, Any]]:
    path = data_dir / AUDIT_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def audited(data_dir: Path, event: str, count: int = 1) -> list[dict[str, Any]]:
    """The audit lines of `event`, once there are `count` (a writer thread appends them)."""

    async def probe() -> list[dict[str, Any]]:
        return [line for line in read_audit(data_dir) if line["event"] == event]

    return await eventually(probe, lambda lines: len(lines) >= count, seconds=5)


async def test_a_release_younger_than_the_minimum_age_is_hidden_everywhere(
    start: Start, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    url, _services = await start(min_release_age=DAY)
    page = await client.get(url + "simple/pkg/", headers={"Accept": JSON_TYPE})
    document = page.json()
    assert [file["filename"] for file in document["files"]] == [OLD.filename]
    assert document["versions"] == ["1.0"]
    # Cacheable until 2.0 comes of age, and no longer.
    max_age = int(page.headers["Cache-Control"].split("max-age=")[1].split(",")[0])
    assert 0 < max_age <= DAY - 3600 + 5
    html = await client.get(url + "simple/pkg/", headers={"Accept": "text/html"})
    assert OLD.filename in html.text
    assert NEW.filename not in html.text
    api = (await client.get(url + "pypi/pkg/json")).json()
    assert api["info"]["version"] == "1.0"
    assert sorted(api["releases"]) == ["1.0"]
    assert (await client.get(url + "pypi/pkg/2.0/json")).status_code == 404
    # The file's URL says which rule, and why.
    refused = await client.get(url + f"files/pkg/{NEW.filename}")
    assert refused.status_code == 404
    assert refused.headers["X-Bodega-Policy"] == "min_release_age"
    assert "uploaded 1h" in refused.text  # (and the seconds since the fixture ran)
    metadata = await client.get(url + f"files/pkg/{NEW.filename}.metadata")
    assert metadata.headers["X-Bodega-Policy"] == "min_release_age"
    assert (await client.get(url + f"files/pkg/{OLD.filename}")).content == OLD.data
    metrics = (await client.get(url + "-/metrics")).text
    assert 'bodega_policy_blocked_total{index="root/pypi",rule="min_release_age"} 2' in metrics
    assert 'bodega_policy_hidden_files_total{index="root/pypi",rule="min_release_age"}' in metrics
    blocked = (await audited(tmp_path / "data", "blocked", 2))[0]
    assert blocked["rule"] == "min_release_age"
    assert (blocked["index"], blocked["project"], blocked["filename"]) == (
        "root/pypi",
        "pkg",
        NEW.filename,
    )
    # The page's answer is audited once, however often it is asked for.
    assert len(await audited(tmp_path / "data", "hidden")) == 1


async def test_without_a_policy_every_file_shows(start: Start, client: httpx.AsyncClient) -> None:
    url, _ = await start()
    assert await page_files(client, url) == [OLD.filename, NEW.filename]


async def test_break_glass_shows_a_version_at_once_and_revoking_hides_it_again(
    start: Start, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    url, services = await start(min_release_age=DAY)
    assert await page_files(client, url) == [OLD.filename]
    made = await services.policies.add_exemption(
        NewExemption("root/pypi", "pkg", "2.0", "CVE fix", "ops", time.time(), None)
    )
    assert await page_files(client, url) == [OLD.filename, NEW.filename]
    assert (await client.get(url + f"files/pkg/{NEW.filename}")).content == NEW.data
    assert (await client.get(url + "pypi/pkg/json")).json()["info"]["version"] == "2.0"
    await services.policies.revoke_exemption(made.id)
    assert await page_files(client, url) == [OLD.filename]
    assert (await client.get(url + f"files/pkg/{NEW.filename}")).status_code == 404
    await audited(tmp_path / "data", "exemption_added")
    await audited(tmp_path / "data", "exemption_revoked")
    metrics = (await client.get(url + "-/metrics")).text
    assert "bodega_policy_exemptions{" not in metrics  # none in force


async def test_an_exemption_that_expires_hides_the_file_again(
    start: Start, client: httpx.AsyncClient
) -> None:
    url, services = await start(min_release_age=DAY)
    await services.policies.add_exemption(
        NewExemption("root/pypi", "pkg", None, "vetted", "ops", time.time(), time.time() + 2)
    )
    metrics = (await client.get(url + "-/metrics")).text
    assert 'bodega_policy_exemptions{index="root/pypi"} 1' in metrics
    response = await client.get(url + "simple/pkg/", headers={"Accept": JSON_TYPE})
    assert len(response.json()["files"]) == 2
    assert (
        "max-age=1," in response.headers["Cache-Control"]
        or "max-age=2," in (response.headers["Cache-Control"])
    )
    await eventually(
        lambda: page_files(client, url), lambda files: files == [OLD.filename], seconds=10
    )


async def test_a_deny_rule_on_a_version_specifier(
    start: Start, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    policy = IndexPolicy(deny=(parse_rule("pkg<2"),))
    url, _ = await start(policy_table=(("root/pypi", policy),))
    assert await page_files(client, url) == [NEW.filename]
    refused = await client.get(url + f"files/pkg/{OLD.filename}")
    assert refused.status_code == 404
    assert refused.headers["X-Bodega-Policy"] == "deny"
    assert "'pkg<2'" in refused.text
    metrics = (await client.get(url + "-/metrics")).text
    assert 'bodega_policy_blocked_total{index="root/pypi",rule="deny"} 1' in metrics
    assert 'bodega_policy_hidden_files_total{index="root/pypi",rule="deny"} 1' in metrics
    line = (await audited(tmp_path / "data", "blocked"))[0]
    assert (line["rule"], line["filename"]) == ("deny", OLD.filename)


async def test_an_upstream_yank_propagates_on_revalidation_with_its_reason(
    start: Start, upstream: FakeIndex, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    url, _services = await start(index_ttl=0)
    await page_files(client, url)
    upstream.add("pkg", OLD, upload_time=LONG_AGO, yanked="broken build")
    response = await client.get(url + "simple/pkg/", headers={"Accept": JSON_TYPE})
    yanked = {file["filename"]: file.get("yanked") for file in response.json()["files"]}
    assert yanked[OLD.filename] == "broken build"
    metrics = (await client.get(url + "-/metrics")).text
    assert 'bodega_policy_upstream_changes_total{index="root/pypi",change="yanked"} 1' in metrics
    line = (await audited(tmp_path / "data", "upstream_yanked"))[0]
    assert (line["filename"], line["reason"]) == (OLD.filename, "broken build")


@pytest.mark.parametrize("serve_removed", [True, False])
async def test_a_file_removed_upstream_leaves_the_page_and_its_bytes_stay_if_wanted(
    start: Start,
    upstream: FakeIndex,
    client: httpx.AsyncClient,
    tmp_path: Path,
    serve_removed: bool,
) -> None:
    policy = IndexPolicy(serve_removed=serve_removed)
    url, _services = await start(index_ttl=0, policy_table=(("root/pypi", policy),))
    assert (await client.get(url + f"files/pkg/{NEW.filename}")).content == NEW.data
    upstream.remove("pkg", NEW.filename)
    assert await page_files(client, url) == [OLD.filename]
    answer = await client.get(url + f"files/pkg/{NEW.filename}")
    if serve_removed:
        assert answer.content == NEW.data
    else:
        assert answer.status_code == 404
        assert answer.headers["X-Bodega-Policy"] == "serve_removed"
    outcome = "served" if serve_removed else "refused"
    metrics = (await client.get(url + "-/metrics")).text
    assert 'bodega_policy_upstream_changes_total{index="root/pypi",change="removed"} 1' in metrics
    assert f'bodega_policy_removed_files_total{{index="root/pypi",outcome="{outcome}"}} 1' in (
        metrics
    )
    await audited(tmp_path / "data", "upstream_removed")
    await audited(tmp_path / "data", "removed_served" if serve_removed else "removed_refused")


@pytest.mark.parametrize("serve_removed", [True, False])
async def test_a_project_deleted_upstream_is_gone_and_its_files_removed(
    start: Start,
    upstream: FakeIndex,
    client: httpx.AsyncClient,
    tmp_path: Path,
    serve_removed: bool,
) -> None:
    policy = IndexPolicy(serve_removed=serve_removed)
    url, _ = await start(index_ttl=0, policy_table=(("root/pypi", policy),))
    assert (await client.get(url + f"files/pkg/{OLD.filename}")).content == OLD.data
    upstream.delete_project("pkg")
    assert (await client.get(url + "simple/pkg/")).status_code == 404
    await audited(tmp_path / "data", "upstream_removed", 2)
    answer = await client.get(url + f"files/pkg/{OLD.filename}")
    if serve_removed:
        assert answer.content == OLD.data  # a lock file pinning it still installs
    else:
        assert answer.status_code == 404
        assert answer.headers["X-Bodega-Policy"] == "serve_removed"
    assert (await client.get(url + f"files/pkg/{NEW.filename}")).status_code == 404  # not cached


async def test_a_quarantined_project_shows_no_files(
    start: Start, upstream: FakeIndex, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    url, _services = await start(index_ttl=0)
    assert (await client.get(url + f"files/pkg/{OLD.filename}")).status_code == 200
    upstream.set_status("pkg", "quarantined", "malware reported")
    assert await page_files(client, url) == []
    assert (await client.get(url + f"files/pkg/{OLD.filename}")).status_code == 404
    line = (await audited(tmp_path / "data", "upstream_quarantined"))[0]
    assert line["reason"] == "malware reported"
    metrics = (await client.get(url + "-/metrics")).text
    assert 'bodega_policy_upstream_changes_total{index="root/pypi",change="quarantined"} 1' in (
        metrics
    )


async def test_an_upstream_outage_is_no_removal(
    start: Start, upstream: FakeIndex, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    url, _services = await start(index_ttl=0)
    assert await page_files(client, url) == [OLD.filename, NEW.filename]
    upstream.fail_with(503)
    assert await page_files(client, url) == [OLD.filename, NEW.filename]
    upstream.reset_faults()
    upstream.set_down(True)
    assert await page_files(client, url) == [OLD.filename, NEW.filename]
    metrics = (await client.get(url + "-/metrics")).text
    assert 'change="removed"} 0' in metrics or 'change="removed"' not in metrics
    assert not [line for line in read_audit(tmp_path / "data") if "upstream" in line["event"]]


async def test_the_policy_page_lists_rules_exemptions_and_the_last_blocks(
    start: Start, client: httpx.AsyncClient
) -> None:
    policy = IndexPolicy(min_release_age=DAY, deny=(parse_rule({"files": "*.exe"}),))
    url, services = await start(policy_table=(("root/pypi", policy),))
    await services.policies.add_exemption(
        NewExemption("root/pypi", "other", None, "<b>vetted</b>", "ops", time.time(), None)
    )
    assert (await client.get(url + f"files/pkg/{NEW.filename}")).status_code == 404
    for path in ("+policy", "root/pypi/+policy"):
        response = await client.get(url + path)
        assert response.status_code == 200
        text = response.text
        assert "min_release_age</dt><dd>1d" in text
        assert "files=*.exe" in text
        assert "&lt;b&gt;vetted&lt;/b&gt;" in text  # upstream and user text stays text
        assert NEW.filename in text
    assert (await client.get(url + "no/such/+policy")).status_code == 404


async def test_search_names_the_latest_version_the_index_shows(
    start: Start, client: httpx.AsyncClient
) -> None:
    url, services = await start(min_release_age=DAY)
    assert await page_files(client, url) == [OLD.filename]  # search learns of pkg from it

    async def latest() -> str | None:
        hits = await services.indexes.search(
            "root/pypi", Query((Criterion("name", "pkg"),), match_all=False)
        )
        return hits[0].version if hits else "none yet"

    assert await eventually(latest, lambda version: version != "none yet", seconds=5) == "1.0"
    await services.policies.add_exemption(
        NewExemption("root/pypi", "pkg", None, "vetted", "ops", time.time(), None)
    )
    assert await latest() == "2.0"
    ui = await client.get(url + "+search", params={"q": "pkg"})
    assert ">2.0<" in ui.text


async def test_the_project_page_of_the_ui_shows_what_the_index_shows(
    start: Start, client: httpx.AsyncClient
) -> None:
    url, _ = await start(min_release_age=DAY)
    text = (await client.get(url + "+project/pkg")).text
    assert OLD.filename in text
    assert NEW.filename not in text


async def test_a_virtual_index_obeys_its_own_rules_and_its_bases(
    start: Start, upstream: FakeIndex, client: httpx.AsyncClient
) -> None:
    pypi = MirrorIndex("root/pypi", upstream.simple_url, 600.0, 30.0, 5.0, 600.0, offline=False)
    team = VirtualIndex("team/all", ("root/pypi",))
    aged = IndexPolicy(min_release_age=DAY)
    denying = IndexPolicy(deny=(parse_rule("pkg==1.0"),))
    url, services = await start(
        index_table=(pypi, team), policy_table=(("root/pypi", aged), ("team/all", denying))
    )

    async def shown(tree: str) -> list[str]:
        response = await client.get(url + tree + "pkg/", headers={"Accept": JSON_TYPE})
        return [file["filename"] for file in response.json()["files"]]

    assert await shown("simple/") == [OLD.filename]
    assert await shown("team/all/+simple/") == []
    refused = await client.get(url + f"team/all/files/pkg/{OLD.filename}")
    assert refused.headers["X-Bodega-Policy"] == "deny"
    # An exemption lifts the rules of the index it is made on, no other's.
    await services.policies.add_exemption(
        NewExemption("team/all", "pkg", None, "ours", "ops", time.time(), None)
    )
    assert await shown("team/all/+simple/") == [OLD.filename]
    await services.policies.add_exemption(
        NewExemption("root/pypi", "pkg", "2.0", "fix", "ops", time.time(), None)
    )
    assert await shown("team/all/+simple/") == [OLD.filename, NEW.filename]
    assert await shown("simple/") == [OLD.filename, NEW.filename]


@pytest.mark.parametrize("without_upload_time", ["pass", "hide"])
async def test_files_without_an_upload_time_pass_counted_or_are_hidden(
    start: Start, upstream: FakeIndex, client: httpx.AsyncClient, without_upload_time: str
) -> None:
    undated = build_wheel("pkg", "0.9")
    upstream.add("pkg", undated, upload_time=None)  # as an HTML-only upstream lists it
    policy = IndexPolicy(min_release_age=DAY, files_without_upload_time=without_upload_time)
    url, _ = await start(policy_table=(("root/pypi", policy),))
    files = await page_files(client, url)
    metrics = (await client.get(url + "-/metrics")).text
    counted = 'bodega_policy_files_without_upload_time_total{index="root/pypi"} 1'
    if without_upload_time == "pass":
        assert files == [undated.filename, OLD.filename]
        assert counted in metrics
    else:
        assert files == [OLD.filename]
        refused = await client.get(url + f"files/pkg/{undated.filename}")
        assert refused.headers["X-Bodega-Policy"] == "files_without_upload_time"


async def test_allow_rules_show_only_what_they_match(
    start: Start, upstream: FakeIndex, client: httpx.AsyncClient
) -> None:
    other = build_wheel("other", "1.0")
    upstream.add("other", other, upload_time=LONG_AGO)
    policy = IndexPolicy(allow=(parse_rule("pkg"),))
    url, _ = await start(policy_table=(("root/pypi", policy),))
    assert await page_files(client, url) == [OLD.filename, NEW.filename]
    response = await client.get(url + "simple/other/", headers={"Accept": JSON_TYPE})
    assert response.json()["files"] == []
    refused = await client.get(url + f"files/other/{other.filename}")
    assert refused.headers["X-Bodega-Policy"] == "allow"


async def test_a_client_holding_the_filtered_page_gets_the_new_one_after_break_glass(
    start: Start, client: httpx.AsyncClient
) -> None:
    url, services = await start(min_release_age=DAY)
    headers = {"Accept": JSON_TYPE}
    first = await client.get(url + "simple/pkg/", headers=headers)
    etag = first.headers["ETag"]
    again = await client.get(url + "simple/pkg/", headers={**headers, "If-None-Match": etag})
    assert again.status_code == 304
    await services.policies.add_exemption(
        NewExemption("root/pypi", "pkg", "2.0", "fix", "ops", time.time(), None)
    )
    changed = await client.get(url + "simple/pkg/", headers={**headers, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert len(changed.json()["files"]) == 2
