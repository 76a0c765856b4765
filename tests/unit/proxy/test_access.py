"""AccessControl and Accounts over the in-memory account store, on a test's own clocks."""

import pytest

from bodega.core.access import ANYONE, Action, Decision, Identity, IndexAccess
from bodega.errors import AccountError, Forbidden, NeedsCredentials, TooManyAttempts
from bodega.proxy.access import AccessControl, Credentials
from bodega.proxy.accounts import Accounts
from bodega.storage.memory_accounts import MemoryAccountStore

RULES = (
    IndexAccess("acme/private", read=("alice",), upload=("alice",)),
    IndexAccess("acme/open"),
)
BASES = {"acme/all": ["acme/private", "root/pypi"], "acme/private": [], "root/pypi": []}
INDEXES = ("acme/private", "acme/all", "root/pypi", "acme/open")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> MemoryAccountStore:
    return MemoryAccountStore()


@pytest.fixture
def accounts(store: MemoryAccountStore, clock: Clock) -> Accounts:
    return Accounts(store, INDEXES, clock=clock)


@pytest.fixture
def access(store: MemoryAccountStore, clock: Clock) -> AccessControl:
    return AccessControl(store, RULES, BASES, clock=clock, wall_clock=clock, max_failures=3)


async def test_anonymous_reads_what_is_open_only(access: AccessControl) -> None:
    assert await access.allow(None, "c", "root/pypi", Action.READ) is None
    assert await access.allow(None, "c", "acme/open", Action.READ) is None
    assert await access.allow(None, "c", "no/such", Action.READ) is None  # its handler 404s
    for index in ("acme/private", "acme/all"):  # acme/all reads acme/private
        with pytest.raises(NeedsCredentials):
            await access.allow(None, "c", index, Action.READ)
    with pytest.raises(NeedsCredentials):
        await access.allow(None, "c", "root/pypi", Action.UPLOAD)


async def test_a_password_logs_in(access: AccessControl, accounts: Accounts) -> None:
    await accounts.add_user("alice", "s3cret!", is_admin=False)
    alice = Credentials("alice", "s3cret!")
    assert await access.allow(alice, "c", "acme/all", Action.READ) == Identity("alice", False)
    assert await access.allow(alice, "c", "acme/private", Action.UPLOAD) is not None
    with pytest.raises(Forbidden):
        await access.allow(alice, "c", "root/pypi", Action.UPLOAD)
    with pytest.raises(NeedsCredentials):
        await access.allow(Credentials("alice", "wrong"), "c", "acme/private", Action.READ)
    with pytest.raises(NeedsCredentials):
        await access.allow(Credentials("nobody", "s3cret!"), "c", "acme/private", Action.READ)


async def test_a_token_is_scoped(access: AccessControl, accounts: Accounts) -> None:
    await accounts.add_user("alice", None, is_admin=False)
    token = await accounts.create_token("alice", ["acme/private"], Action.READ, expires_in=None)
    alice = Credentials("__token__", token)
    assert await access.allow(alice, "c", "acme/private", Action.READ) is not None
    with pytest.raises(Forbidden):
        await access.allow(alice, "c", "acme/private", Action.UPLOAD)  # a read-only token
    with pytest.raises(Forbidden):
        await access.allow(alice, "c", "acme/all", Action.READ)  # not its index


async def test_an_expired_token_is_refused(
    access: AccessControl, accounts: Accounts, clock: Clock
) -> None:
    await accounts.add_user("alice", None, is_admin=False)
    token = await accounts.create_token("alice", [ANYONE], Action.UPLOAD, expires_in=10)
    alice = Credentials("__token__", token)
    assert await access.allow(alice, "c", "acme/private", Action.UPLOAD) is not None
    clock.now += 11  # past its expiry, though remembered for 30 s
    with pytest.raises(NeedsCredentials):
        await access.allow(alice, "c", "acme/private", Action.READ)


async def test_a_revoked_token_stops_once_no_longer_remembered(
    access: AccessControl, accounts: Accounts, store: MemoryAccountStore, clock: Clock
) -> None:
    await accounts.add_user("alice", None, is_admin=False)
    token = await accounts.create_token("alice", [ANYONE], Action.READ, expires_in=None)
    alice = Credentials("__token__", token)
    await access.allow(alice, "c", "acme/private", Action.READ)
    (stored,) = await store.tokens()
    await accounts.revoke_token(stored.token_id)
    assert await access.allow(alice, "c", "acme/private", Action.READ) is not None
    clock.now += 31
    with pytest.raises(NeedsCredentials):
        await access.allow(alice, "c", "acme/private", Action.READ)


async def test_failed_logins_are_limited_per_address(
    access: AccessControl, accounts: Accounts, clock: Clock
) -> None:
    await accounts.add_user("alice", "right", is_admin=False)
    good = Credentials("alice", "right")
    await access.allow(good, "10.0.0.1", "acme/private", Action.READ)  # remembered as good
    for _ in range(3):
        with pytest.raises(NeedsCredentials):
            await access.allow(
                Credentials("alice", "guess"), "10.0.0.1", "acme/private", Action.READ
            )
    with pytest.raises(TooManyAttempts) as raised:
        await access.allow(Credentials("bob", "guess"), "10.0.0.1", "acme/private", Action.READ)
    assert 0 < raised.value.retry_after <= 60
    # Credentials known to be good still pass; another address is not held back.
    assert await access.allow(good, "10.0.0.1", "acme/private", Action.READ) is not None
    with pytest.raises(NeedsCredentials):
        await access.allow(Credentials("alice", "guess"), "10.0.0.2", "acme/private", Action.READ)
    clock.now += 61
    with pytest.raises(NeedsCredentials):  # checked again: wrong, not held back
        await access.allow(Credentials("alice", "guess"), "10.0.0.1", "acme/private", Action.READ)


async def test_failed_logins_count_across_processes_on_one_store(
    store: MemoryAccountStore, clock: Clock
) -> None:
    """Two AccessControls on one store, as two --workers or replicas on one database."""
    one, other = (
        AccessControl(store, RULES, BASES, clock=clock, wall_clock=clock, max_failures=3)
        for _ in range(2)
    )
    guess = Credentials("alice", "guess")
    for access in (one, other, one):
        with pytest.raises(NeedsCredentials):
            await access.allow(guess, "10.0.0.1", "acme/private", Action.READ)
    for access in (one, other):
        with pytest.raises(TooManyAttempts):
            await access.allow(guess, "10.0.0.1", "acme/private", Action.READ)


async def test_a_clock_stepped_back_holds_an_address_no_longer_than_the_window(
    access: AccessControl, clock: Clock
) -> None:
    guess = Credentials("alice", "guess")
    for _ in range(3):
        with pytest.raises(NeedsCredentials):
            await access.allow(guess, "10.0.0.1", "acme/private", Action.READ)
    clock.now -= 3600
    with pytest.raises(TooManyAttempts) as raised:
        await access.allow(guess, "10.0.0.1", "acme/private", Action.READ)
    assert 0 < raised.value.retry_after <= 60


async def test_openness(store: MemoryAccountStore) -> None:
    assert AccessControl(store, (IndexAccess("a/b"),), {}).is_open_to_everyone
    assert not AccessControl(store, RULES, BASES).is_open_to_everyone
    access = AccessControl(store, RULES, BASES)
    assert access.needs_identity("acme/all", Action.READ)
    assert not access.needs_identity("root/pypi", Action.READ)
    assert access.decide(None, "root/pypi", Action.ADMIN) is Decision.NEEDS_CREDENTIALS


async def test_credentials_never_show(store: MemoryAccountStore) -> None:
    assert "s3cret" not in repr(Credentials("alice", "s3cret"))


async def test_account_mistakes(accounts: Accounts) -> None:
    with pytest.raises(AccountError, match="is no account name"):
        await accounts.add_user("a b", None, is_admin=False)
    await accounts.add_user("alice", None, is_admin=False)
    with pytest.raises(AccountError, match="already"):
        await accounts.add_user("alice", None, is_admin=False)
    with pytest.raises(AccountError, match="no index named x/y"):
        await accounts.create_token("alice", ["x/y"], Action.READ, expires_in=None)
    with pytest.raises(AccountError, match="no account named bob"):
        await accounts.create_token("bob", [ANYONE], Action.READ, expires_in=None)
    with pytest.raises(AccountError, match="no admin account"):
        await accounts.create_token("alice", [ANYONE], Action.ADMIN, expires_in=None)
    with pytest.raises(AccountError, match="no token"):
        await accounts.revoke_token("nope")
    with pytest.raises(AccountError, match="empty password"):
        await accounts.set_password("alice", "")


async def test_the_first_admin_token_is_made_once(
    accounts: Accounts, access: AccessControl
) -> None:
    token = await accounts.create_first_admin()
    assert token is not None
    assert await accounts.create_first_admin() is None
    admin = Credentials("__token__", token)
    found = await access.allow(admin, "c", "acme/private", Action.ADMIN)
    assert found == Identity("admin", True, Action.ADMIN, (ANYONE,))


async def test_names_no_account_has(access: AccessControl, accounts: Accounts) -> None:
    assert await access.unknown_accounts() == ["alice"]
    await accounts.add_user("alice", None, is_admin=False)
    assert await access.unknown_accounts() == []


async def test_a_token_for_some_projects(access: AccessControl, accounts: Accounts) -> None:
    await accounts.add_user("alice", None, is_admin=False)
    token = await accounts.create_token(
        "alice", ["acme/private"], Action.UPLOAD, expires_in=None, projects=["Acme_Lib"]
    )
    found = await access.allow(Credentials("__token__", token), "c", "acme/private", Action.UPLOAD)
    assert found is not None
    assert found.projects == ("acme-lib",)  # normalized
    assert found.covers_project("acme-lib")
    assert not found.covers_project("other")
    with pytest.raises(AccountError, match="not a valid project name"):
        await accounts.create_token(
            "alice", ["*"], Action.UPLOAD, expires_in=None, projects=["a b"]
        )


async def test_what_anyone_may_do_never_checks_credentials(access: AccessControl) -> None:
    stale = Credentials("__token__", "bodega_expired")
    for _ in range(20):  # never a failed login, never held back
        assert await access.allow(stale, "c", "acme/open", Action.READ) is None
    with pytest.raises(NeedsCredentials):
        await access.allow(stale, "c", "acme/private", Action.READ)


async def test_reads_are_open_only_without_read_rules(store: MemoryAccountStore) -> None:
    uploads_only = AccessControl(store, (IndexAccess("a/b", upload=("bob",)),), {})
    assert uploads_only.reads_are_open
    assert not uploads_only.is_open_to_everyone
    assert not AccessControl(store, RULES, BASES).reads_are_open
