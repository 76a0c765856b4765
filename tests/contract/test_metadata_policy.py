"""The PolicyStore contract: break-glass exemptions and files removed upstream."""

import dataclasses

import pytest

from bodega.core.model import DistributionFile
from bodega.storage.metadata import NewExemption, PolicyStore, SharedMetadataStore

WHEEL = DistributionFile(
    "pkg-2.0-py3-none-any.whl",
    "https://files.example/pkg-2.0-py3-none-any.whl",
    {"sha256": "ab" * 32},
    yanked="broken",
    size=10,
    upload_time="2027-01-15T07:00:00Z",
)


@pytest.fixture
def policy(database: SharedMetadataStore) -> PolicyStore:
    return database.policy()


async def test_exemptions_are_numbered_kept_and_revoked_once(policy: PolicyStore) -> None:
    assert await policy.exemptions() == []
    first = await policy.add_exemption(
        NewExemption("root/pypi", "pkg", "2.0", "CVE fix", "ops", 100.0, 200.0)
    )
    second = await policy.add_exemption(
        NewExemption("team/all", "other", None, "vetted", "root", 150.0, None)
    )
    assert first.id != second.id
    assert (first.index, first.project, first.version, first.reason) == (
        "root/pypi",
        "pkg",
        "2.0",
        "CVE fix",
    )
    assert (first.created_by, first.created_at, first.until, first.revoked_at) == (
        "ops",
        100.0,
        200.0,
        None,
    )
    assert await policy.exemptions() == [first, second]
    revoked = await policy.revoke_exemption(first.id, 300.0)
    assert revoked is not None
    assert revoked.revoked_at == 300.0
    again = await policy.revoke_exemption(first.id, 400.0)
    assert again is not None
    assert again.revoked_at == 300.0
    assert await policy.revoke_exemption(999, 400.0) is None
    assert await policy.exemptions() == [revoked, second]


async def test_the_same_exemption_added_again_is_recorded_once(policy: PolicyStore) -> None:
    """A second try of the same write (its answer lost with a database connection)."""
    asked = NewExemption("root/pypi", "pkg", None, "CVE fix", "ops", 100.0, None)
    first = await policy.add_exemption(asked)
    assert await policy.add_exemption(asked) == first
    later = await policy.add_exemption(dataclasses.replace(asked, created_at=101.0))
    assert later.id != first.id
    assert await policy.exemptions() == [first, later]


async def test_a_removed_file_is_kept_per_index_until_restored(policy: PolicyStore) -> None:
    assert await policy.removed_file("root/pypi", "pkg", WHEEL.filename) is None
    await policy.put_removed_file("root/pypi", "pkg", WHEEL, 100.0)
    await policy.put_removed_file("root/pypi", "pkg", WHEEL, 200.0)
    assert await policy.removed_file("root/pypi", "pkg", WHEEL.filename) == WHEEL
    assert await policy.removed_file("team/torch", "pkg", WHEEL.filename) is None
    await policy.restored_file("root/pypi", "pkg", WHEEL.filename)
    assert await policy.removed_file("root/pypi", "pkg", WHEEL.filename) is None
