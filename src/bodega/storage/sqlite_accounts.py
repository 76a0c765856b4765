"""Accounts and API tokens in the metadata store's SQLite file (migration 9), on the store's
own worker thread, so they work beside a running server as `bodega cache` does (WAL)."""

import json
import sqlite3
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from bodega.storage.metadata import StoredToken, StoredUser

T = TypeVar("T")

# The columns of `tokens`, in StoredToken's order.
_COLUMNS = "token_id, user, digest, scope, indexes, created_at, expires_at, description, projects"


class _Runs(Protocol):
    """The store's worker: runs work on its connection's one thread."""

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T: ...


class SqliteAccountStore:
    def __init__(self, worker: _Runs) -> None:
        self._worker = worker

    async def add_user(self, user: StoredUser) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            with db:
                return _insert_user(db, user)

        return await self._worker.run(work)

    async def get_user(self, name: str) -> StoredUser | None:
        def work(db: sqlite3.Connection) -> StoredUser | None:
            row = db.execute(
                "SELECT name, password_hash, is_admin, created_at FROM users WHERE name = ?",
                (name,),
            ).fetchone()
            return _user(row) if row else None

        return await self._worker.run(work)

    async def users(self) -> list[StoredUser]:
        def work(db: sqlite3.Connection) -> list[StoredUser]:
            rows = db.execute(
                "SELECT name, password_hash, is_admin, created_at FROM users ORDER BY name"
            )
            return [_user(row) for row in rows]

        return await self._worker.run(work)

    async def set_password(self, name: str, password_hash: str | None) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            with db:
                cursor = db.execute(
                    "UPDATE users SET password_hash = ? WHERE name = ?", (password_hash, name)
                )
            return cursor.rowcount > 0

        return await self._worker.run(work)

    async def remove_user(self, name: str) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            with db:
                # Not left to the foreign key: SQLite enforces none unless asked to.
                db.execute("DELETE FROM tokens WHERE user = ?", (name,))
                cursor = db.execute("DELETE FROM users WHERE name = ?", (name,))
            return cursor.rowcount > 0

        return await self._worker.run(work)

    async def add_first_admin(self, user: StoredUser, token: StoredToken) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            db.execute("BEGIN IMMEDIATE")  # no other process adds an account in between
            try:
                if db.execute("SELECT 1 FROM users LIMIT 1").fetchone():
                    db.rollback()
                    return False
                _insert_user(db, user)
                _insert_token(db, token)
            except BaseException:
                db.rollback()
                raise
            db.commit()
            return True

        return await self._worker.run(work)

    async def add_token(self, token: StoredToken) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            with db:
                if not db.execute("SELECT 1 FROM users WHERE name = ?", (token.user,)).fetchone():
                    return False
                _insert_token(db, token)
                return True

        return await self._worker.run(work)

    async def get_token(self, token_id: str) -> StoredToken | None:
        def work(db: sqlite3.Connection) -> StoredToken | None:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM tokens WHERE token_id = ?",  # noqa: S608
                (token_id,),
            ).fetchone()
            return _token(row) if row else None

        return await self._worker.run(work)

    async def tokens(self, user: str | None = None) -> list[StoredToken]:
        def work(db: sqlite3.Connection) -> list[StoredToken]:
            query = f"SELECT {_COLUMNS} FROM tokens"  # noqa: S608 (constant columns)
            if user is None:
                rows = db.execute(f"{query} ORDER BY created_at, token_id")
            else:
                rows = db.execute(f"{query} WHERE user = ? ORDER BY created_at, token_id", (user,))
            return [_token(row) for row in rows]

        return await self._worker.run(work)

    async def revoke_token(self, token_id: str) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            with db:
                cursor = db.execute("DELETE FROM tokens WHERE token_id = ?", (token_id,))
            return cursor.rowcount > 0

        return await self._worker.run(work)

    async def note_failed_login(self, client: str, at: float, forget_before: float) -> None:
        def work(db: sqlite3.Connection) -> None:
            with db:
                db.execute("DELETE FROM failed_logins WHERE at < ?", (forget_before,))
                db.execute("INSERT INTO failed_logins (client, at) VALUES (?, ?)", (client, at))

        await self._worker.run(work)

    async def failed_logins(self, client: str, since: float) -> list[float]:
        def work(db: sqlite3.Connection) -> list[float]:
            rows = db.execute(
                "SELECT at FROM failed_logins WHERE client = ? AND at >= ? ORDER BY at",
                (client, since),
            )
            return [at for (at,) in rows]

        return await self._worker.run(work)


def _insert_user(db: sqlite3.Connection, user: StoredUser) -> bool:
    cursor = db.execute(
        "INSERT OR IGNORE INTO users VALUES (?, ?, ?, ?)",
        (user.name, user.password_hash, int(user.is_admin), user.created_at),
    )
    return cursor.rowcount > 0


def _insert_token(db: sqlite3.Connection, token: StoredToken) -> None:
    db.execute(
        f"INSERT INTO tokens ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
        (
            token.token_id,
            token.user,
            token.digest,
            token.scope,
            json.dumps(list(token.indexes)),
            token.created_at,
            token.expires_at,
            token.description,
            json.dumps(list(token.projects)),
        ),
    )


def _user(row: tuple[Any, ...]) -> StoredUser:
    name, password_hash, is_admin, created_at = row
    return StoredUser(name, password_hash, bool(is_admin), created_at)


def _token(row: tuple[Any, ...]) -> StoredToken:
    token_id, user, digest, scope, indexes, created_at, expires_at, description, projects = row
    return StoredToken(
        token_id,
        user,
        digest,
        scope,
        tuple(json.loads(indexes)),
        created_at,
        expires_at,
        description,
        tuple(json.loads(projects)),
    )
