"""Account passwords, hashed with argon2id (RFC 9106) through argon2-cffi.

Each hash or check costs a quarter of a second and 64 MiB on purpose: callers run these in
a thread (never on the event loop) and bound how many run at once."""

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()  # argon2id with argon2-cffi's defaults (RFC 9106 low-memory)


@cache
def _decoy() -> str:
    """Checked when an account has no password or does not exist, so a wrong name costs
    what a wrong password does and the time of an answer tells no one which names exist.
    Made on first use: start-up does not pay for it."""
    return _HASHER.hash("bodega: no account has this password")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    """Whether `password` is the one `password_hash` was made from (None: no password,
    checked against a decoy all the same)."""
    try:
        return _HASHER.verify(password_hash or _decoy(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
