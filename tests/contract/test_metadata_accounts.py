"""The AccountStore contract: accounts and API tokens."""

import asyncio
from dataclasses import replace

import pytest

from bodega.storage.metadata import AccountStore, SharedMetadataStore, StoredToken, StoredUser

ALICE = StoredUser("alice", "$argon2id$fake", is_admin=False, created_at=10.0)
ROOT = StoredUser("root", None, is_admin=True, created_at=5.0)


def token(token_id: str, user: str = "alice", created_at: float = 20.0) -> StoredToken:
    return StoredToken(
        token_id,
        user,
        "d" * 64,
        "upload",
        ("acme/private", "acme/all"),
        created_at,
        created_at + 90 * 86400,
        "ci",
    )


@pytest.fixture
def accounts(database: SharedMetadataStore) -> AccountStore:
    return database.accounts()


async def test_an_account_is_added_once(accounts: AccountStore) -> None:
    assert await accounts.get_user("alice") is None
    assert await accounts.add_user(ALICE)
    assert not await accounts.add_user(StoredUser("alice", None, True, 99.0))
    assert await accounts.get_user("alice") == ALICE
    await accounts.add_user(ROOT)
    assert [user.name for user in await accounts.users()] == ["alice", "root"]


async def test_a_password_is_replaced(accounts: AccountStore) -> None:
    assert not await accounts.set_password("alice", "$argon2id$new")
    await accounts.add_user(ALICE)
    assert await accounts.set_password("alice", "$argon2id$new")
    found = await accounts.get_user("alice")
    assert found is not None
    assert found.password_hash == "$argon2id$new"
    assert not found.is_admin


async def test_a_token_is_kept_whole_and_found_by_its_id(accounts: AccountStore) -> None:
    assert not await accounts.add_token(token("a" * 12))  # no such account
    await accounts.add_user(ALICE)
    assert await accounts.add_token(token("a" * 12))
    assert await accounts.get_token("a" * 12) == token("a" * 12)
    assert await accounts.get_token("b" * 12) is None


async def test_tokens_are_listed_oldest_first_per_account(accounts: AccountStore) -> None:
    await accounts.add_user(ALICE)
    await accounts.add_user(ROOT)
    await accounts.add_token(token("b" * 12, created_at=30.0))
    await accounts.add_token(token("a" * 12, created_at=20.0))
    await accounts.add_token(token("c" * 12, user="root", created_at=25.0))
    assert [t.token_id for t in await accounts.tokens()] == ["a" * 12, "c" * 12, "b" * 12]
    assert [t.token_id for t in await accounts.tokens("alice")] == ["a" * 12, "b" * 12]


async def test_a_revoked_token_is_gone(accounts: AccountStore) -> None:
    await accounts.add_user(ALICE)
    await accounts.add_token(token("a" * 12))
    assert await accounts.revoke_token("a" * 12)
    assert not await accounts.revoke_token("a" * 12)
    assert await accounts.get_token("a" * 12) is None


async def test_removing_an_account_removes_its_tokens(accounts: AccountStore) -> None:
    await accounts.add_user(ALICE)
    await accounts.add_user(ROOT)
    await accounts.add_token(token("a" * 12))
    await accounts.add_token(token("c" * 12, user="root"))
    assert await accounts.remove_user("alice")
    assert not await accounts.remove_user("alice")
    assert await accounts.get_token("a" * 12) is None
    assert [t.token_id for t in await accounts.tokens()] == ["c" * 12]


async def test_the_first_admin_is_added_only_to_an_empty_store(accounts: AccountStore) -> None:
    first = token("a" * 12, user="root")
    assert await accounts.add_first_admin(ROOT, first)
    assert not await accounts.add_first_admin(ROOT, token("b" * 12, user="root"))
    assert await accounts.get_token("b" * 12) is None
    assert await accounts.get_token("a" * 12) == first


async def test_two_first_admins_at_once_make_one(accounts: AccountStore) -> None:
    # Two servers starting together: on PostgreSQL, two connections of the pool.
    admin = StoredUser("admin", None, is_admin=True, created_at=5.0)
    added = await asyncio.gather(
        accounts.add_first_admin(ROOT, token("a" * 12, user="root")),
        accounts.add_first_admin(admin, token("b" * 12, user="admin")),
    )
    assert sorted(added) == [False, True]
    assert len(await accounts.users()) == 1
    assert len(await accounts.tokens()) == 1


async def test_no_first_admin_once_any_account_exists(accounts: AccountStore) -> None:
    await accounts.add_user(ALICE)
    assert not await accounts.add_first_admin(ROOT, token("a" * 12, user="root"))
    assert await accounts.get_user("root") is None


async def test_a_token_that_never_expires(accounts: AccountStore) -> None:
    await accounts.add_user(ROOT)
    forever = StoredToken("a" * 12, "root", "d" * 64, "admin", ("*",), 1.0, None)
    await accounts.add_token(forever)
    assert await accounts.get_token("a" * 12) == forever


async def test_a_tokens_projects_are_kept(accounts: AccountStore) -> None:
    await accounts.add_user(ALICE)
    only = replace(token("a" * 12), projects=("acme-lib", "acme-cli"))
    await accounts.add_token(only)
    assert await accounts.get_token("a" * 12) == only
    assert (await accounts.tokens())[0].projects == ("acme-lib", "acme-cli")


async def test_failed_logins_are_counted_per_address_and_forgotten_past_the_window(
    accounts: AccountStore,
) -> None:
    assert await accounts.failed_logins("10.0.0.1", 0.0) == []
    for at in (100.0, 101.5, 103.0):
        await accounts.note_failed_login("10.0.0.1", at, forget_before=at - 60)
    await accounts.note_failed_login("2001:db8::1", 102.0, forget_before=42.0)
    assert await accounts.failed_logins("10.0.0.1", 0.0) == [100.0, 101.5, 103.0]
    assert await accounts.failed_logins("10.0.0.1", 101.5) == [101.5, 103.0]
    assert await accounts.failed_logins("2001:db8::1", 0.0) == [102.0]
    # A failure noted later forgets every address's failures from before the window.
    await accounts.note_failed_login("10.0.0.9", 170.0, forget_before=102.0)
    assert await accounts.failed_logins("10.0.0.1", 0.0) == [103.0]
    assert await accounts.failed_logins("2001:db8::1", 0.0) == [102.0]
    assert await accounts.failed_logins("10.0.0.9", 0.0) == [170.0]
