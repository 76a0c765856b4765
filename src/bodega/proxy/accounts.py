"""Managing accounts and API tokens: what `bodega user` and `bodega token` do, and the
first admin token a server makes for itself when it takes uploads and has no account.

A token is `bodega_<id>_<secret>`: the id (12 letters and digits) finds its row, the
secret (256 random bits) is stored only as a sha256 digest. It is shown once, when made.
"""

import asyncio
import secrets
import string
import time
from collections.abc import Callable, Collection
from dataclasses import replace

from bodega.core.access import ANYONE, Action, format_token, token_digest, user_name_problem
from bodega.core.names import normalize_project_name
from bodega.errors import AccountError, InvalidName
from bodega.proxy.passwords import hash_password
from bodega.storage.metadata import AccountStore, StoredToken, StoredUser

FIRST_ADMIN = "admin"  # the account the first start makes, with no password
_ID_ALPHABET = string.ascii_letters + string.digits


class Accounts:
    def __init__(
        self,
        store: AccountStore,
        index_names: Collection[str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._index_names = frozenset(index_names)
        self._clock = clock

    async def add_user(self, name: str, password: str | None, *, is_admin: bool) -> None:
        problem = user_name_problem(name)
        if problem:
            raise AccountError(f"{name!r} {problem}")
        password_hash = await _hashed(password)
        if not await self._store.add_user(StoredUser(name, password_hash, is_admin, self._clock())):
            raise AccountError(f"there is an account named {name} already")

    async def set_password(self, name: str, password: str | None) -> None:
        if not await self._store.set_password(name, await _hashed(password)):
            raise AccountError(f"no account named {name}")

    async def remove_user(self, name: str) -> None:
        if not await self._store.remove_user(name):
            raise AccountError(f"no account named {name}")

    async def users(self) -> list[StoredUser]:
        return await self._store.users()

    async def create_token(
        self,
        user: str,
        indexes: Collection[str],
        scope: Action,
        *,
        expires_in: float | None,
        description: str = "",
        projects: Collection[str] = (),
    ) -> str:
        """A new token of `user` for `indexes` ("*": every index), returned whole: the only
        time it is ever seen. With `projects`, it uploads and manages those alone."""
        try:
            only = tuple(dict.fromkeys(normalize_project_name(name) for name in projects))
        except InvalidName as error:
            raise AccountError(str(error)) from None
        unknown = sorted(set(indexes) - self._index_names - {ANYONE})
        if unknown:
            raise AccountError(
                f"no index named {', '.join(unknown)} (configured:"
                f" {', '.join(sorted(self._index_names))})"
            )
        if not indexes:
            raise AccountError("a token needs at least one index (or * for every index)")
        found = await self._store.get_user(user)
        if found is None:
            raise AccountError(f"no account named {user}")
        if scope is Action.ADMIN and not found.is_admin:
            raise AccountError(f"{user} is no admin account: an admin token would allow nothing")
        token, stored = self._new_token(user, tuple(indexes), scope, expires_in, description)
        stored = replace(stored, projects=only)
        if not await self._store.add_token(stored):
            raise AccountError(f"no account named {user}")  # removed meanwhile
        return token

    async def tokens(self, user: str | None = None) -> list[StoredToken]:
        return await self._store.tokens(user)

    async def revoke_token(self, token_id: str) -> None:
        if not await self._store.revoke_token(token_id):
            raise AccountError(f"no token with the id {token_id}")

    async def create_first_admin(self) -> str | None:
        """An admin account and an admin token for every index, if there is no account at
        all; the token, or None when there were accounts already."""
        now = self._clock()
        admin = StoredUser(FIRST_ADMIN, None, is_admin=True, created_at=now)
        token, stored = self._new_token(
            FIRST_ADMIN, (ANYONE,), Action.ADMIN, None, "made at first start"
        )
        return token if await self._store.add_first_admin(admin, stored) else None

    def _new_token(
        self,
        user: str,
        indexes: tuple[str, ...],
        scope: Action,
        expires_in: float | None,
        description: str,
    ) -> tuple[str, StoredToken]:
        token_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))
        secret = secrets.token_urlsafe(32)  # 43 characters, 256 bits
        now = self._clock()
        stored = StoredToken(
            token_id,
            user,
            token_digest(secret),
            scope.label,
            indexes,
            now,
            None if expires_in is None else now + expires_in,
            description,
        )
        return format_token(token_id, secret), stored


async def _hashed(password: str | None) -> str | None:
    if password is None:
        return None
    if not password:
        raise AccountError("an empty password is no password")
    return await asyncio.to_thread(hash_password, password)
