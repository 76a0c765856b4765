"""The access decision, token shapes and the config keys of core.access."""

from typing import Any

import pytest

from bodega.core.access import (
    ANYONE,
    Action,
    Decision,
    Identity,
    IndexAccess,
    decide,
    format_token,
    guarded_by,
    parse_token,
    read_index_access,
    token_digest,
    token_matches,
    user_name_problem,
)

OPEN = IndexAccess("acme/open")
PRIVATE = IndexAccess("acme/private", read=("alice",), upload=("bob",))
ALICE = Identity("alice", is_admin=False)
BOB = Identity("bob", is_admin=False)
ADMIN = Identity("root", is_admin=True)


@pytest.mark.parametrize(
    ("rules", "identity", "action", "decision"),
    [
        ([OPEN], None, Action.READ, Decision.ALLOW),
        ([OPEN], ALICE, Action.READ, Decision.ALLOW),
        ([OPEN], None, Action.UPLOAD, Decision.NEEDS_CREDENTIALS),
        ([OPEN], ALICE, Action.UPLOAD, Decision.FORBIDDEN),  # admins only, by default
        ([OPEN], ADMIN, Action.UPLOAD, Decision.ALLOW),
        ([PRIVATE], None, Action.READ, Decision.NEEDS_CREDENTIALS),
        ([PRIVATE], ALICE, Action.READ, Decision.ALLOW),
        ([PRIVATE], BOB, Action.READ, Decision.ALLOW),  # who uploads may read
        ([PRIVATE], Identity("carol", False), Action.READ, Decision.FORBIDDEN),
        ([PRIVATE], ALICE, Action.UPLOAD, Decision.FORBIDDEN),
        ([PRIVATE], BOB, Action.UPLOAD, Decision.ALLOW),
        ([PRIVATE], BOB, Action.ADMIN, Decision.FORBIDDEN),
        ([PRIVATE], ADMIN, Action.ADMIN, Decision.ALLOW),
        # A virtual index open to anyone over a private base: the base's rule holds.
        ([OPEN, PRIVATE], None, Action.READ, Decision.NEEDS_CREDENTIALS),
        ([OPEN, PRIVATE], ALICE, Action.READ, Decision.ALLOW),
    ],
)
def test_decide(
    rules: list[IndexAccess], identity: Identity | None, action: Action, decision: Decision
) -> None:
    assert decide(rules, identity, rules[0].index, action) is decision


def test_a_tokens_scope_cuts_down_what_its_account_may() -> None:
    read_only = Identity("bob", False, scope=Action.READ, indexes=("acme/private",))
    assert decide([PRIVATE], read_only, "acme/private", Action.READ) is Decision.ALLOW
    assert decide([PRIVATE], read_only, "acme/private", Action.UPLOAD) is Decision.FORBIDDEN
    admin_token = Identity("root", True, scope=Action.UPLOAD, indexes=(ANYONE,))
    assert decide([PRIVATE], admin_token, "acme/private", Action.UPLOAD) is Decision.ALLOW
    assert decide([PRIVATE], admin_token, "acme/private", Action.ADMIN) is Decision.FORBIDDEN


def test_a_token_is_good_only_for_its_indexes() -> None:
    elsewhere = Identity("root", True, scope=Action.ADMIN, indexes=("acme/other",))
    assert decide([PRIVATE], elsewhere, "acme/private", Action.READ) is Decision.FORBIDDEN
    assert decide([OPEN], elsewhere, "acme/open", Action.UPLOAD) is Decision.FORBIDDEN
    assert decide([PRIVATE], elsewhere, "acme/other", Action.READ) is Decision.ALLOW
    # What anyone may do, credentials for elsewhere do not take away.
    assert decide([OPEN], elsewhere, "acme/open", Action.READ) is Decision.ALLOW


def test_guarded_by_follows_bases_of_bases_once() -> None:
    bases = {"a/all": ["a/mid", "a/one"], "a/mid": ["a/one", "a/two"]}
    assert guarded_by(bases, "a/all") == ("a/all", "a/mid", "a/one", "a/two")
    assert guarded_by(bases, "a/one") == ("a/one",)


def test_actions_by_name() -> None:
    assert Action.named("upload") is Action.UPLOAD
    assert Action.ADMIN.label == "admin"
    with pytest.raises(ValueError, match="one of read, upload, admin"):
        Action.named("write")


def test_a_token_round_trips_and_nothing_else_parses() -> None:
    secret = "s" * 43
    token = format_token("a1B2c3D4e5F6", secret)
    parts = parse_token(token)
    assert parts is not None
    assert (parts.token_id, parts.secret) == ("a1B2c3D4e5F6", secret)
    for wrong in ("", "bodega_", token + "x", token[:-1], token.replace("bodega_", "pypi-")):
        assert parse_token(wrong) is None


def test_a_secret_is_checked_against_its_digest() -> None:
    digest = token_digest("s" * 43)
    assert token_matches("s" * 43, digest)
    assert not token_matches("t" * 43, digest)


def read(keys: dict[str, Any]) -> tuple[IndexAccess, list[str], dict[str, Any]]:
    problems: list[str] = []
    rest = dict(keys)
    found = read_index_access("a/b", rest, "[a/b]", problems)
    return found, problems, rest


def test_defaults_are_open_read_and_admin_uploads() -> None:
    found, problems, rest = read({"type": "mirror"})
    assert found == IndexAccess("a/b", read=(ANYONE,), upload=())
    assert not found.has_rules
    assert problems == []
    assert rest == {"type": "mirror"}  # its own keys only are taken


def test_lists_of_accounts() -> None:
    found, problems, rest = read({"read": ["alice", "bob", "alice"], "upload": ["bob"]})
    assert found == IndexAccess("a/b", read=("alice", "bob"), upload=("bob",))
    assert found.has_rules
    assert not found.is_open
    assert problems == []
    assert rest == {}


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ({"read": "alice"}, "[a/b] read: 'alice' is not a list of account names"),
        (
            {"upload": ["*"]},
            '[a/b] upload: "*" would let anyone upload; list the accounts that may',
        ),
        ({"read": ["*", "bob"]}, '[a/b] read: "*" already lets anyone read; list accounts or "*"'),
        ({"read": ["__token__"]}, "[a/b] read: '__token__' is the user name of API tokens"),
        ({"upload": ["a b"]}, "[a/b] upload: 'a b' is no account name"),
    ],
)
def test_mistakes(keys: dict[str, Any], problem: str) -> None:
    _, problems, _ = read(keys)
    assert len(problems) == 1
    assert problems[0].startswith(problem)


def test_account_names() -> None:
    assert user_name_problem("alice.b-c_1") is None
    assert user_name_problem("-x") is not None
    assert user_name_problem("x" * 65) is not None
    assert user_name_problem("a<b") is not None


def test_a_token_limited_to_projects() -> None:
    everything = Identity("bob", False)
    assert everything.covers_project("anything")
    some = Identity("bob", False, Action.UPLOAD, ("acme/private",), ("acme-lib",))
    assert some.covers_project("acme-lib")
    assert not some.covers_project("acme-cli")
