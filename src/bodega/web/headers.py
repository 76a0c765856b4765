"""Request and response header rules shared by the handlers."""

from aiohttp import web
from yarl import URL

from bodega.proxy.pages import ClientRefresh

FILE_CACHE_CONTROL = "max-age=31536000, immutable"  # filenames are never reused upstream
# HIT, MISS, STALE or REVALIDATED: for clients, and for the access log line of each request.
CACHE_OUTCOME = "X-Bodega-Cache"

# Defaults for every response: simple pages and error bodies run no script and load nothing,
# so an upstream string that slipped past escaping still could not act (threat 9). A handler
# that needs more (a web UI) sets its own.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def client_refresh(request: web.Request) -> ClientRefresh:
    """`Cache-Control: no-cache` (uv --refresh), `max-age=0` (pip: before 26.2 on every
    request, since then with --refresh-package) or neither."""
    if "Cache-Control" not in request.headers and "Pragma" not in request.headers:
        return ClientRefresh.NONE  # most requests: no parsing
    directives = {
        d.strip().lower().replace(" ", "")
        for d in request.headers.get("Cache-Control", "").split(",")
    }
    if "no-cache" in directives or "no-cache" in request.headers.get("Pragma", ""):
        return ClientRefresh.NO_CACHE
    if "max-age=0" in directives:
        return ClientRefresh.MAX_AGE_0
    return ClientRefresh.NONE


def wants_revalidation(request: web.Request) -> bool:
    """Any client refresh, for the root list (which no installer asks for on every run)."""
    return client_refresh(request) is not ClientRefresh.NONE


def etag_matches(request: web.Request, etags: tuple[str, ...]) -> bool:
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    sent = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in sent or bool(sent & set(etags))


def accepts_gzip(request: web.Request) -> bool:
    for coding in request.headers.get("Accept-Encoding", "").split(","):
        name, _, params = coding.strip().partition(";")
        if name.strip().lower() == "gzip" and params.replace(" ", "") not in ("q=0", "q=0.0"):
            return True
    return False


def if_match_fails(request: web.Request, etag: str) -> bool:
    """If-Match compares strongly: a weak tag never matches, `*` matches any (RFC 9110
    13.1.1)."""
    header = request.headers.get("If-Match")
    if header is None:
        return False
    sent = {tag.strip() for tag in header.split(",")}
    return "*" not in sent and etag not in sent


def answered_by_etag(request: web.Request, etag: str) -> tuple[str, ...]:
    """The request headers judged against `etag` already, for a FileResponse that would judge
    them against its own tag (the file's mtime and size): If-Match (and If-Unmodified-Since,
    which it overrides), and an If-Range holding an entity tag, with the Range it voids
    when the tag is not `etag` (RFC 9110 13.1.5: then the whole representation is sent)."""
    answered: tuple[str, ...] = ()
    if "If-Match" in request.headers:
        answered += ("If-Match", "If-Unmodified-Since")
    if_range = request.headers.get("If-Range", "").strip()
    if if_range.startswith(('"', 'W/"')):
        answered += ("If-Range",) if if_range == etag else ("If-Range", "Range")
    return answered


def client_url(request: web.Request) -> URL:
    """The URL the client asked for, with the scheme it used: behind a proxy that terminates
    TLS, bodega sees http, and the proxy says https in X-Forwarded-Proto. Only what is rendered
    for this one request uses it (the JSON API's absolute URLs, the UI's snippets), never what
    is stored, so a forged header misleads only its sender (as a forged Host does)."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").partition(",")[0].strip().lower()
    if forwarded in ("http", "https") and forwarded != request.url.scheme:
        return request.url.with_scheme(forwarded)
    return request.url
