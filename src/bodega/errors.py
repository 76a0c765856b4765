"""bodega's errors, translated to HTTP statuses once, at the web edge.

BodegaError
├── InvalidName            400  a project name or filename that is not a valid token
├── InvalidUpload          400  an upload refused (its reason in the status line)
├── NotFound               404  unknown project, file or route
│   └── PolicyBlocked      404  hidden by the index's supply-chain policy (X-Bodega-Policy)
├── UpstreamError          502  upstream failed and no cached copy can serve
│   ├── UpstreamTimeout    504
│   ├── UpstreamBusy       503  upstream asked to wait (429/503 Retry-After); passed on
│   └── UpstreamLoop       508  the request came back to this bodega (a Via loop)
├── IntegrityError         502  bytes that do not match the declared hash or size
├── StorageError           503  the cache's disk is full or its database stays locked
├── AccessDenied               the request's credentials do not allow it (web/access.py)
│   ├── NeedsCredentials   401  none, or wrong ones; WWW-Authenticate: Basic
│   ├── Forbidden          403  valid credentials, not allowed this
│   └── TooManyAttempts    429  too many failed logins from this address; Retry-After
├── AccountError                an account or token command that cannot be done (CLI)
├── ConfigError                 settings that cannot work; the CLI prints one line and exits
└── InvalidLockfile             a requirements or lock file `bodega prefetch` cannot read
"""


class BodegaError(Exception):
    """Base of every error bodega raises on purpose."""


class InvalidName(BodegaError):
    """A name or filename that bodega refuses to use as a key."""


class InvalidUpload(BodegaError):
    """An upload the index refuses; nothing of it is stored. Publishers (twine) show the
    status line's reason, so the message is it."""


class NotFound(BodegaError):
    """Nothing is known by that name, upstream or in the cache."""


class PolicyBlocked(NotFound):
    """The index's policy hides the file (core.policy): `rule` names the rule, the message
    says why, for the person whose install failed."""

    def __init__(self, message: str, rule: str) -> None:
        super().__init__(message)
        self.rule = rule


class UpstreamError(BodegaError):
    """The upstream index failed and nothing cached could answer instead."""


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer within the configured bounds."""


class UpstreamBusy(UpstreamError):
    """The upstream asked bodega to wait (429 or 503 with Retry-After) and that time has not
    passed: upstream is not asked again before it does."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds from now


class UpstreamLoop(UpstreamError):
    """The upstream is this bodega itself."""


class IntegrityError(BodegaError):
    """Downloaded bytes do not match the hash or size the index declared."""


class StorageError(BodegaError):
    """The cache cannot store right now (disk full, database locked); it can still serve."""


class AccessDenied(BodegaError):
    """The request may not do what it asks; never says which secret was wrong or why."""


class NeedsCredentials(AccessDenied):
    """No credentials, or wrong or expired ones, for what needs them."""


class Forbidden(AccessDenied):
    """Valid credentials that do not allow this."""


class TooManyAttempts(AccessDenied):
    """Too many failed logins from one client address: none is checked for a while."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds from now


class AccountError(BodegaError):
    """An account or token that cannot be added, changed or found as asked."""


class ConfigError(BodegaError):
    """Settings that cannot work."""


class InvalidLockfile(BodegaError):
    """A requirements or lock file that pins nothing bodega can fetch, or is malformed."""
