"""Who may do what on which index: the access rules of the config file, API tokens' shape,
and the one decision every request goes through. Pure: no clock, no randomness, no store.

An index's table may say who reads it and who uploads to it:

    read = ["*"]                 # anyone, without credentials (the default)
    read = ["alice", "bob"]      # these accounts (and admins) only
    upload = ["alice"]           # these accounts (and admins); default: admins only

Actions are ordered: `admin` may do what `upload` may, which may do what `read` may. A
token carries a scope (one action) and the indexes it is good for; what it allows is what
its account may do, cut down to that scope and those indexes, and, for uploading and
managing, optionally to some projects (checked by the handler that reads the project
name from the upload, through `Identity.covers_project`). A read through a virtual
index needs read on each of its bases too, so a virtual index open to anyone never shows
what a restricted base holds.
"""

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

ANYONE = "*"  # in `read`: no credentials needed; in a token's indexes: every index
# The user name twine, uv and pip send with an API token.
TOKEN_USER = "__token__"  # noqa: S105 (a marker, no secret)
TOKEN_PREFIX = "bodega_"  # noqa: S105 (a marker, no secret)
_TOKEN = re.compile(r"bodega_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})")
# An account name: a short word people type, never a path segment trick or markup.
_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class Action(IntEnum):
    """What a request does to an index; a higher action includes the lower ones."""

    READ = 1
    UPLOAD = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def named(cls, text: str) -> "Action":
        """The action (a token's scope) called `text`; ValueError for none."""
        for action in cls:
            if action.label == text:
                return action
        raise ValueError(f"{text!r} is not one of {', '.join(a.label for a in cls)}")


@dataclass(frozen=True, slots=True)
class IndexAccess:
    """Who may read an index and who may upload to it (account names; admins always may)."""

    index: str
    read: tuple[str, ...] = (ANYONE,)
    upload: tuple[str, ...] = ()

    @property
    def is_open(self) -> bool:
        """Readable by anyone without credentials."""
        return ANYONE in self.read

    @property
    def has_rules(self) -> bool:
        """Says anything beyond the defaults (anyone reads, admins upload)."""
        return not self.is_open or bool(self.upload)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request's credentials name, and what they are good for."""

    user: str
    is_admin: bool
    scope: Action = Action.ADMIN  # a password is good for all its account may do
    indexes: tuple[str, ...] = (ANYONE,)  # the token's indexes; a password: every index
    # The token's projects (normalized) to upload and manage; empty: every project. The
    # project is in an upload's body, so the handler that reads it asks `covers_project`.
    projects: tuple[str, ...] = ()

    def covers_project(self, project: str) -> bool:
        """May these credentials upload or manage `project` (a normalized name)?"""
        return not self.projects or project in self.projects

    def covers(self, index: str, action: Action) -> bool:
        """The credentials themselves (not the account) are good for this."""
        return action <= self.scope and (ANYONE in self.indexes or index in self.indexes)


class Decision(IntEnum):
    ALLOW = 0
    NEEDS_CREDENTIALS = 401
    FORBIDDEN = 403


def decide(
    rules: Sequence[IndexAccess], identity: Identity | None, index: str, action: Action
) -> Decision:
    """May `identity` (None: no credentials) do `action` on `index`, whose access rules, its
    bases' included for a read, are `rules`? What anyone may do, credentials never take
    away: a token for another index (pip sends .netrc's to every index of a host) still
    reads an open one."""
    if all(_account_may(rule, None, action) for rule in rules):
        return Decision.ALLOW
    if identity is None:
        return Decision.NEEDS_CREDENTIALS
    if identity.covers(index, action) and all(
        _account_may(rule, identity, action) for rule in rules
    ):
        return Decision.ALLOW
    return Decision.FORBIDDEN


def _account_may(rule: IndexAccess, identity: Identity | None, action: Action) -> bool:
    if action is Action.READ and rule.is_open:
        return True
    if identity is None:
        return False
    if identity.is_admin:
        return True
    if action is Action.READ:
        return identity.user in rule.read or identity.user in rule.upload
    if action is Action.UPLOAD:
        return identity.user in rule.upload
    return False  # admin actions are for admin accounts


def guarded_by(bases: Mapping[str, Sequence[str]], index: str) -> tuple[str, ...]:
    """The index and every index it serves from (bases of bases too), each once: a read
    needs each one's read rule."""
    found: dict[str, None] = {}
    pending = [index]
    while pending:
        name = pending.pop(0)
        if name not in found:
            found[name] = None
            pending.extend(bases.get(name, ()))
    return tuple(found)


# ------------------------------------------------------------------------------ config


def read_index_access(
    index: str, keys: dict[str, Any], label: str, problems: list[str]
) -> IndexAccess:
    """The `read` and `upload` keys of an index's table, popped from `keys` (so the reader
    of each kind of index sees only its own); each mistake a line in `problems`."""
    read = _read_names(keys.pop("read", [ANYONE]), "read", label, problems)
    upload = _read_names(keys.pop("upload", []), "upload", label, problems)
    if ANYONE in upload:
        problems.append(f'{label} upload: "*" would let anyone upload; list the accounts that may')
        upload = tuple(name for name in upload if name != ANYONE)
    if ANYONE in read and len(read) > 1:
        problems.append(f'{label} read: "*" already lets anyone read; list accounts or "*"')
    return IndexAccess(index, read, upload)


def _read_names(raw: Any, key: str, label: str, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(name, str) for name in raw):
        problems.append(f"{label} {key}: {raw!r} is not a list of account names")
        return ()
    for name in raw:
        if name != ANYONE and (problem := user_name_problem(name)):
            problems.append(f"{label} {key}: {name!r} {problem}")
    return tuple(dict.fromkeys(raw))


def user_name_problem(name: str) -> str | None:
    """Why `name` cannot be an account's name, or None."""
    if name == TOKEN_USER:
        return f"is the user name of API tokens ({TOKEN_USER})"
    if not _USER.fullmatch(name):
        return (
            "is no account name (letters, digits and . _ -, starting with a letter or"
            " digit, at most 64)"
        )
    return None


# ------------------------------------------------------------------------------ tokens


@dataclass(frozen=True, slots=True)
class TokenParts:
    """A token as presented: the id it is looked up by, and the secret checked by hash."""

    token_id: str
    secret: str


def format_token(token_id: str, secret: str) -> str:
    return f"{TOKEN_PREFIX}{token_id}_{secret}"


def parse_token(text: str) -> TokenParts | None:
    """The parts of a token bodega could have made, or None."""
    found = _TOKEN.fullmatch(text)
    return TokenParts(found[1], found[2]) if found else None


def token_digest(secret: str) -> str:
    """How a token's secret is stored. A fast hash is enough: the secret is 256 random
    bits, which no guessing reaches, and a slow one would cost every request."""
    return hashlib.sha256(secret.encode()).hexdigest()


def token_matches(secret: str, digest: str) -> bool:
    return hmac.compare_digest(token_digest(secret), digest)
