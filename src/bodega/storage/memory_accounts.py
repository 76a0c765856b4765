"""Accounts and API tokens in memory, for unit tests and the contract suite only."""

from bodega.storage.metadata import StoredToken, StoredUser


class MemoryAccountStore:
    def __init__(self) -> None:
        self._users: dict[str, StoredUser] = {}
        self._tokens: dict[str, StoredToken] = {}
        self._failures: dict[str, list[float]] = {}

    async def add_user(self, user: StoredUser) -> bool:
        if user.name in self._users:
            return False
        self._users[user.name] = user
        return True

    async def get_user(self, name: str) -> StoredUser | None:
        return self._users.get(name)

    async def users(self) -> list[StoredUser]:
        return sorted(self._users.values(), key=lambda user: user.name)

    async def set_password(self, name: str, password_hash: str | None) -> bool:
        user = self._users.get(name)
        if user is None:
            return False
        self._users[name] = StoredUser(name, password_hash, user.is_admin, user.created_at)
        return True

    async def remove_user(self, name: str) -> bool:
        self._tokens = {key: t for key, t in self._tokens.items() if t.user != name}
        return self._users.pop(name, None) is not None

    async def add_first_admin(self, user: StoredUser, token: StoredToken) -> bool:
        if self._users:
            return False
        self._users[user.name] = user
        self._tokens[token.token_id] = token
        return True

    async def add_token(self, token: StoredToken) -> bool:
        if token.user not in self._users:
            return False
        self._tokens[token.token_id] = token
        return True

    async def get_token(self, token_id: str) -> StoredToken | None:
        return self._tokens.get(token_id)

    async def tokens(self, user: str | None = None) -> list[StoredToken]:
        found = [t for t in self._tokens.values() if user is None or t.user == user]
        return sorted(found, key=lambda token: (token.created_at, token.token_id))

    async def revoke_token(self, token_id: str) -> bool:
        return self._tokens.pop(token_id, None) is not None

    async def note_failed_login(self, client: str, at: float, forget_before: float) -> None:
        self._failures = {
            each: kept
            for each, times in self._failures.items()
            if (kept := [time for time in times if time >= forget_before])
        }
        self._failures.setdefault(client, []).append(at)

    async def failed_logins(self, client: str, since: float) -> list[float]:
        return sorted(time for time in self._failures.get(client, []) if time >= since)
