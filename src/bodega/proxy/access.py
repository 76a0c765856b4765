"""Each request's credentials checked and its action allowed or refused (core.access decides).

pip sends the same credentials with each of the hundreds of requests of an install, so a
successful check is remembered for a short while, keyed by a keyed hash of the credentials
(never the credentials themselves): argon2's quarter second is paid once, not per request.
A revoked token or a changed password therefore stops working within `remember_for`
seconds (the CLI that revokes runs in another process).

Failed logins are counted per client address, in the account store, so every process
that serves it (--workers, replicas) counts them together; past `max_failures` in
`failure_window` seconds that address's credentials are not checked at all until the
oldest of those failures ages out (credentials already remembered as good still pass, so a
team behind one address is not locked out by someone guessing).
"""

import asyncio
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from bodega.core.access import (
    ANYONE,
    TOKEN_USER,
    Action,
    Decision,
    Identity,
    IndexAccess,
    decide,
    guarded_by,
    parse_token,
    token_matches,
)
from bodega.errors import Forbidden, NeedsCredentials, TooManyAttempts
from bodega.proxy.passwords import password_matches
from bodega.storage.metadata import AccountStore

_REMEMBERED = 4096  # credentials remembered as good, least recently used dropped first
_PASSWORD_CHECKS = 2  # argon2 checks at once: each holds 64 MiB and a core


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request's Authorization header says (HTTP Basic)."""

    user: str
    password: str

    def __repr__(self) -> str:  # never in a log or a traceback
        return f"Credentials(user={self.user!r}, password=<hidden>)"


class AccessControl:
    def __init__(
        self,
        store: AccountStore,
        rules: Sequence[IndexAccess],
        bases: Mapping[str, Sequence[str]],
        *,
        remember_for: float = 30.0,
        max_failures: int = 10,
        failure_window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        by_name = {rule.index: rule for rule in rules}
        names = {*bases, *by_name}
        # A read needs the rule of every index it is served from (core.access).
        self._read_rules = {
            name: tuple(by_name.get(each, IndexAccess(each)) for each in guarded_by(bases, name))
            for name in names
        }
        self._rules = by_name
        # Rules never change while serving: each (index, action)'s anonymous answer once.
        self._needs_identity: dict[tuple[str, Action], bool] = {}
        self._remember_for = remember_for
        self._clock = clock
        self._wall_clock = wall_clock
        self._key = secrets.token_bytes(
            32
        )  # this process's: remembered keys mean nothing elsewhere
        self._remembered: OrderedDict[bytes, tuple[Identity, float]] = OrderedDict()
        self._failures = _Failures(store, max_failures, failure_window, wall_clock)
        self._checks = asyncio.Semaphore(_PASSWORD_CHECKS)

    @property
    def is_open_to_everyone(self) -> bool:
        """No index says who may read or upload: anyone reads all, only admins upload."""
        return not any(rule.has_rules for rule in self._rules.values())

    async def unknown_accounts(self) -> list[str]:
        """The names the rules list that no account has, each once (a typo in the config
        file, or an account not made yet): one line at start says so."""
        named = {name for rule in self._rules.values() for name in (*rule.read, *rule.upload)}
        named.discard(ANYONE)
        known = {user.name for user in await self._store.users()}
        return sorted(named - known)

    @property
    def reads_are_open(self) -> bool:
        """Anyone may read every index (no `read` rule anywhere)."""
        return all(rule.is_open for rule in self._rules.values())

    def needs_identity(self, index: str, action: Action) -> bool:
        """Whether anyone without credentials is refused this (no store; remembered)."""
        key = (index, action)
        found = self._needs_identity.get(key)
        if found is None:
            found = self.decide(None, index, action) is not Decision.ALLOW
            if len(self._needs_identity) < 4096:  # index names from paths: bounded
                self._needs_identity[key] = found
        return found

    def decide(self, identity: Identity | None, index: str, action: Action) -> Decision:
        if action is Action.READ:
            rules = self._read_rules.get(index, (IndexAccess(index),))
        else:
            rules = (self._rules.get(index, IndexAccess(index)),)
        return decide(rules, identity, index, action)

    async def allow(
        self, credentials: Credentials | None, client: str, index: str, action: Action
    ) -> Identity | None:
        """Who the credentials name, if they allow `action` on `index`; else
        NeedsCredentials (none or wrong ones), Forbidden or TooManyAttempts. What anyone
        may do needs no check at all (None): stale credentials in a .netrc neither break
        installs from an open index nor cost argon2 or count as failed logins there."""
        if credentials is None or not self.needs_identity(index, action):
            credentials = None
        identity = None if credentials is None else await self.identify(credentials, client)
        decision = self.decide(identity, index, action)
        if decision is Decision.NEEDS_CREDENTIALS:
            raise NeedsCredentials(f"{index} needs credentials to {action.label}")
        if decision is Decision.FORBIDDEN:
            raise Forbidden(
                f"{identity.user if identity else 'anonymous'} may not {action.label} {index}"
            )
        return identity

    async def identify(self, credentials: Credentials, client: str) -> Identity:
        """The account the credentials name; NeedsCredentials when they name none."""
        key = hmac.new(
            self._key, f"{credentials.user}\0{credentials.password}".encode(), hashlib.sha256
        ).digest()
        now = self._clock()
        remembered = self._remembered.get(key)
        if remembered is not None and remembered[1] > now:
            self._remembered.move_to_end(key)
            return remembered[0]
        wait = await self._failures.wait(client)
        if wait > 0:
            raise TooManyAttempts("too many failed logins from this address", wait)
        found = await self._check(credentials)
        if found is None:
            await self._failures.add(client)
            raise NeedsCredentials("wrong user name, password or token, or an expired token")
        identity, expires_at = found
        until = now + self._remember_for
        if expires_at is not None:
            until = min(until, now + expires_at - self._wall_clock())
        self._remembered[key] = (identity, until)
        if len(self._remembered) > _REMEMBERED:
            self._remembered.popitem(last=False)
        return identity

    async def _check(self, credentials: Credentials) -> tuple[Identity, float | None] | None:
        """The identity and when it expires (epoch seconds, None: never), or None."""
        if credentials.user == TOKEN_USER:
            return await self._check_token(credentials.password)
        user = await self._store.get_user(credentials.user)
        async with self._checks:
            matches = await asyncio.to_thread(
                password_matches, user.password_hash if user else None, credentials.password
            )
        if user is None or not matches:
            return None
        return Identity(user.name, user.is_admin), None

    async def _check_token(self, text: str) -> tuple[Identity, float | None] | None:
        parts = parse_token(text)
        if parts is None:
            return None
        token = await self._store.get_token(parts.token_id)
        if token is None or not token_matches(parts.secret, token.digest):
            return None
        if token.expires_at is not None and token.expires_at <= self._wall_clock():
            return None
        user = await self._store.get_user(token.user)
        if user is None:
            return None
        identity = Identity(
            user.name, user.is_admin, Action.named(token.scope), token.indexes, token.projects
        )
        return identity, token.expires_at


class _Failures:
    """Failed logins per client address, in a sliding window, kept in the account store:
    epoch seconds, which every process reads alike."""

    def __init__(
        self, store: AccountStore, limit: int, window: float, clock: Callable[[], float]
    ) -> None:
        self._store = store
        self._limit = limit
        self._window = window
        self._clock = clock

    async def wait(self, client: str) -> float:
        """Seconds before this client's credentials are checked again; 0: now."""
        now = self._clock()
        times = await self._store.failed_logins(client, now - self._window)
        if len(times) < self._limit:
            return 0.0
        # Within [0, window] even when the wall clock has stepped back past a failure.
        return min(max(times[-self._limit] + self._window - now, 0.0), self._window)

    async def add(self, client: str) -> None:
        now = self._clock()
        await self._store.note_failed_login(client, now, forget_before=now - self._window)
