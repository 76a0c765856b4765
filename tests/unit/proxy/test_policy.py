"""proxy.policy: exemptions read through a short cache, what upstream changed, the audit."""

import pytest
from packaging.utils import NormalizedName

from bodega.core.model import DistributionFile, ProjectPage, ProjectStatus
from bodega.core.policy import IndexPolicy, parse_rule
from bodega.errors import PolicyBlocked, StorageError
from bodega.proxy.pages import CachedPage
from bodega.proxy.policy import Policies
from bodega.proxy.telemetry import Telemetry
from bodega.storage.audit import MemoryAudit
from bodega.storage.memory_policy import MemoryPolicyStore
from bodega.storage.metadata import NewExemption

OLD = DistributionFile("pkg-1.0.tar.gz", "https://f.example/pkg-1.0.tar.gz", {"sha256": "a" * 64})
NEW = DistributionFile("pkg-2.0.tar.gz", "https://f.example/pkg-2.0.tar.gz", {"sha256": "b" * 64})
DENY_NEW = {"root/pypi": IndexPolicy(deny=(parse_rule("pkg>=2"),))}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def page(*files: DistributionFile, status: ProjectStatus | None = None) -> ProjectPage:
    return ProjectPage(NormalizedName("pkg"), files, status=status)


def make(
    policies: dict[str, IndexPolicy] | None = None,
) -> tuple[Policies, MemoryPolicyStore, MemoryAudit, Telemetry, Clock]:
    store, audit, telemetry, clock = MemoryPolicyStore(), MemoryAudit(), Telemetry(), Clock()
    made = Policies(policies or DENY_NEW, store, audit, telemetry, clock=clock)
    return made, store, audit, telemetry, clock


async def test_another_processs_exemption_shows_within_the_cache_time() -> None:
    policies, store, _, _, clock = make()
    cached = CachedPage(page(OLD, NEW), None, None, 0.0)
    assert [
        f.filename for f in (await policies.govern(["root/pypi"], cached)).cached.page.files
    ] == [OLD.filename]
    await store.add_exemption(NewExemption("root/pypi", "pkg", None, "x", "ops", 1000.0, None))
    governed = await policies.govern(["root/pypi"], cached)
    assert governed.hidden == 1  # read a moment ago: not yet
    clock.now += 1.5
    assert (await policies.govern(["root/pypi"], cached)).cached is cached


async def test_the_same_filtered_page_is_kept_with_its_renderings() -> None:
    policies, *_ = make()
    cached = CachedPage(page(OLD, NEW), None, None, 0.0)
    first = (await policies.govern(["root/pypi"], cached)).cached
    assert (await policies.govern(["root/pypi"], cached)).cached is first


async def test_a_store_that_fails_keeps_the_exemptions_last_read() -> None:
    policies, store, _, _, clock = make()
    await policies.add_exemption(NewExemption("root/pypi", "pkg", None, "x", "ops", 1.0, None))
    assert len(await policies.exemptions()) == 1

    async def failing() -> list[object]:
        raise StorageError("locked")

    store.exemptions = failing  # type: ignore[assignment,method-assign]
    clock.now += 5
    assert len(await policies.exemptions()) == 1


async def test_a_blocked_file_is_counted_audited_and_listed() -> None:
    policies, _, audit, telemetry, _ = make()
    with pytest.raises(PolicyBlocked) as raised:
        await policies.check_file(["root/pypi"], "pkg", NEW)
    assert raised.value.rule == "deny"
    assert telemetry.index("root/pypi").policy_blocked["deny"] == 1
    assert audit.events[-1]["event"] == "blocked"
    assert policies.recent[0].filename == NEW.filename
    await policies.check_file(["root/pypi"], "pkg", OLD)  # shown: no error


async def test_upstream_changes_are_told_apart() -> None:
    policies, store, audit, telemetry, _ = make({})
    yanked = DistributionFile(OLD.filename, OLD.url, OLD.hashes, yanked="bad")
    quarantined = ProjectStatus("quarantined", "malware")
    policies.upstream_changed("root/pypi", page(OLD, NEW), page(yanked, status=quarantined))
    await policies.close()
    assert [event["event"] for event in audit.events] == [
        "upstream_yanked",
        "upstream_removed",
        "upstream_quarantined",
    ]
    assert telemetry.index("root/pypi").policy_upstream_changes == {
        "yanked": 1,
        "removed": 1,
        "quarantined": 1,
    }
    assert await store.removed_file("root/pypi", "pkg", NEW.filename) == NEW
    # Listed again: no removed file any more.
    policies.upstream_changed("root/pypi", page(yanked), page(yanked, NEW))
    await policies.close()
    assert await store.removed_file("root/pypi", "pkg", NEW.filename) is None
