"""Access control at the edge: each request's action on its index, allowed or answered with
401, 403 or 429 before any handler runs.

Credentials come as HTTP Basic (RFC 7617): `__token__` and an API token, as twine and uv
send them, or an account's name and password. A refusal for want of credentials is a 401
with `WWW-Authenticate: Basic`, which makes pip try keyring and .netrc, then prompt.

What each route does: an upload (Route.UPLOAD, or any multipart POST to an index) is
`upload`, managing releases (Route.MANAGE) is `admin`, anything else is a `read` of the
index the path names, the default index for the short paths, the home page, the cache and
status pages and /-/metrics. /-/health, /-/ready and the UI's static files are open to
anyone: they tell nothing about any index.
"""

import binascii
import math
from base64 import b64decode
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from bodega.core.access import Action, Identity
from bodega.errors import AccessDenied, Forbidden, NeedsCredentials, TooManyAttempts
from bodega.proxy.access import AccessControl, Credentials
from bodega.web.request_route import route_of
from bodega.web.routing import Match, Route

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CHALLENGE = 'Basic realm="bodega", charset="UTF-8"'
# Who made an allowed request with credentials (absent: anonymous), for handlers that
# record it (an upload's uploader) or check more (a project-scoped right).
IDENTITY = web.RequestKey("identity", Identity)
_OPEN_ROUTES = frozenset({Route.HEALTH, Route.READY, Route.STATIC})
_ACTIONS = {Route.UPLOAD: Action.UPLOAD, Route.MANAGE: Action.ADMIN}


def access_middleware(access: AccessControl, default_index: str) -> Middleware:
    """The middleware that lets through only what `access` allows."""
    # Every GET and HEAD is a read; with no read rule anywhere, each is allowed before any
    # routing (the default set-up pays nothing for access control).
    reads_are_open = access.reads_are_open

    @web.middleware
    async def check_access(request: web.Request, handler: Handler) -> web.StreamResponse:
        if reads_are_open and request.method in ("GET", "HEAD"):
            return await handler(request)
        found = route_of(request)
        if found.route in _OPEN_ROUTES:
            return await handler(request)
        index = found.index or default_index
        action = action_of(request, found)
        if not access.needs_identity(index, action):
            return await handler(request)  # anyone may: credentials are not even read
        try:
            credentials = credentials_of(request)
            identity = await access.allow(credentials, request.remote or "", index, action)
        except AccessDenied as error:
            return refusal(error)
        if identity is not None:
            request[IDENTITY] = identity
        return await handler(request)

    return check_access


def action_of(request: web.BaseRequest, found: Match) -> Action:
    """What the request does to its index."""
    action = _ACTIONS.get(found.route)
    if action is not None:
        return action
    # The legacy upload API posts multipart/form-data to the index's own path, where pip
    # search posts XML-RPC: however it is routed, such a POST is an upload (never a read).
    if request.method == "POST" and request.content_type == "multipart/form-data":
        return Action.UPLOAD
    return Action.READ


def credentials_of(request: web.BaseRequest) -> Credentials | None:
    """The Basic credentials of the request, None without any; NeedsCredentials for an
    Authorization header bodega cannot read."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise NeedsCredentials("bodega takes HTTP Basic credentials only")
    try:
        decoded = b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise NeedsCredentials("the Authorization header is no Basic credentials") from None
    user, colon, password = decoded.partition(":")
    if not colon:
        raise NeedsCredentials("the Authorization header is no Basic credentials")
    return Credentials(user, password)


def refusal(error: AccessDenied) -> web.Response:
    """The response for a refused request: its reason, never which secret was wrong."""
    headers = {"Cache-Control": "no-store"}
    status = 403
    if isinstance(error, NeedsCredentials):
        status = 401
        headers["WWW-Authenticate"] = CHALLENGE
    elif isinstance(error, TooManyAttempts):
        status = 429
        headers["Retry-After"] = str(math.ceil(error.retry_after))
    elif not isinstance(error, Forbidden):
        raise TypeError(f"no status for {type(error).__name__}")
    return web.Response(status=status, text=f"{error}\n", headers=headers)
