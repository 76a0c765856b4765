"""Accounts and API tokens on PostgreSQL (storage.metadata.AccountStore): `bodega user` and
`bodega token` write them from anywhere, and every replica checks tokens against them."""

import asyncpg

from bodega.storage.metadata import StoredToken, StoredUser
from bodega.storage.postgres_policy import Db, Runner

_USER_COLUMNS = "name, password_hash, is_admin, created_at"
# The columns of `tokens`, in StoredToken's order.
_COLUMNS = (
    "token_id, user_name, digest, scope, indexes, created_at, expires_at, description, projects"
)
_ADD_USER = f"""
INSERT INTO users ({_USER_COLUMNS}) VALUES ($1, $2, $3, $4)
ON CONFLICT (name) DO NOTHING RETURNING 1
"""  # noqa: S608 (constant column names)
_ADD_TOKEN = f"""
INSERT INTO tokens ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
"""  # noqa: S608 (constant column names)
_USERS = f"SELECT {_USER_COLUMNS} FROM users"  # noqa: S608 (constant column names)
_TOKENS = f"SELECT {_COLUMNS} FROM tokens"  # noqa: S608 (constant column names)


class PostgresAccountStore:
    def __init__(self, run: Runner) -> None:
        self._run = run

    async def add_user(self, user: StoredUser) -> bool:
        async def work(db: Db) -> bool:
            return await _insert_user(db, user)

        added: bool = await self._run(work)
        return added

    async def get_user(self, name: str) -> StoredUser | None:
        async def work(db: Db) -> StoredUser | None:
            row = await db.fetchrow(_USERS + " WHERE name = $1", name)
            return None if row is None else _user(row)

        found: StoredUser | None = await self._run(work)
        return found

    async def users(self) -> list[StoredUser]:
        async def work(db: Db) -> list[StoredUser]:
            return [_user(row) for row in await db.fetch(_USERS + " ORDER BY name")]

        found: list[StoredUser] = await self._run(work)
        return found

    async def set_password(self, name: str, password_hash: str | None) -> bool:
        async def work(db: Db) -> bool:
            changed = await db.fetchval(
                "UPDATE users SET password_hash = $1 WHERE name = $2 RETURNING 1",
                password_hash,
                name,
            )
            return changed is not None

        changed: bool = await self._run(work)
        return changed

    async def remove_user(self, name: str) -> bool:
        async def work(db: Db) -> bool:
            # Its tokens go with it: the foreign key cascades, in the same statement.
            gone = await db.fetchval("DELETE FROM users WHERE name = $1 RETURNING 1", name)
            return gone is not None

        removed: bool = await self._run(work)
        return removed

    async def add_first_admin(self, user: StoredUser, token: StoredToken) -> bool:
        async def work(db: Db) -> bool:
            async with db.transaction():
                # Blocks every other insert into users (and another first admin) until the
                # commit: replicas starting together make one admin, not one each.
                await db.execute("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
                if await db.fetchval("SELECT 1 FROM users LIMIT 1") is not None:
                    # Ours already, when the connection broke after the commit and _run
                    # tried again: the token is the one this call stored.
                    mine = await db.fetchval(
                        "SELECT 1 FROM tokens WHERE token_id = $1 AND digest = $2",
                        token.token_id,
                        token.digest,
                    )
                    return mine is not None
                await _insert_user(db, user)
                await _insert_token(db, token)
                return True

        added: bool = await self._run(work)
        return added

    async def add_token(self, token: StoredToken) -> bool:
        async def work(db: Db) -> bool:
            try:
                await _insert_token(db, token)
            except asyncpg.ForeignKeyViolationError:
                # No such account, or it was removed meanwhile: the key decides, no race.
                return False
            return True

        added: bool = await self._run(work)
        return added

    async def get_token(self, token_id: str) -> StoredToken | None:
        async def work(db: Db) -> StoredToken | None:
            row = await db.fetchrow(_TOKENS + " WHERE token_id = $1", token_id)
            return None if row is None else _token(row)

        found: StoredToken | None = await self._run(work)
        return found

    async def tokens(self, user: str | None = None) -> list[StoredToken]:
        async def work(db: Db) -> list[StoredToken]:
            if user is None:
                rows = await db.fetch(_TOKENS + " ORDER BY created_at, token_id")
            else:
                rows = await db.fetch(
                    _TOKENS + " WHERE user_name = $1 ORDER BY created_at, token_id", user
                )
            return [_token(row) for row in rows]

        found: list[StoredToken] = await self._run(work)
        return found

    async def revoke_token(self, token_id: str) -> bool:
        async def work(db: Db) -> bool:
            gone = await db.fetchval("DELETE FROM tokens WHERE token_id = $1 RETURNING 1", token_id)
            return gone is not None

        revoked: bool = await self._run(work)
        return revoked

    async def note_failed_login(self, client: str, at: float, forget_before: float) -> None:
        async def work(db: Db) -> None:
            async with db.transaction():
                await db.execute("DELETE FROM failed_logins WHERE at < $1", forget_before)
                await db.execute(
                    "INSERT INTO failed_logins (client, at) VALUES ($1, $2)", client, at
                )

        await self._run(work)

    async def failed_logins(self, client: str, since: float) -> list[float]:
        async def work(db: Db) -> list[float]:
            rows = await db.fetch(
                "SELECT at FROM failed_logins WHERE client = $1 AND at >= $2 ORDER BY at",
                client,
                since,
            )
            return [row["at"] for row in rows]

        found: list[float] = await self._run(work)
        return found


async def _insert_user(db: Db, user: StoredUser) -> bool:
    added = await db.fetchval(
        _ADD_USER, user.name, user.password_hash, user.is_admin, user.created_at
    )
    return added is not None


async def _insert_token(db: Db, token: StoredToken) -> None:
    await db.execute(
        _ADD_TOKEN,
        token.token_id,
        token.user,
        token.digest,
        token.scope,
        list(token.indexes),
        token.created_at,
        token.expires_at,
        token.description,
        list(token.projects),
    )


def _user(row: "asyncpg.Record") -> StoredUser:
    name, password_hash, is_admin, created_at = row
    return StoredUser(name, password_hash, is_admin, created_at)


def _token(row: "asyncpg.Record") -> StoredToken:
    token_id, user, digest, scope, indexes, created_at, expires_at, description, projects = row
    return StoredToken(
        token_id,
        user,
        digest,
        scope,
        tuple(indexes),
        created_at,
        expires_at,
        description,
        tuple(projects),
    )
