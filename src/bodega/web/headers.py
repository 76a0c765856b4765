"""Request and response header rules shared by the handlers."""

from aiohttp import web

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


def wants_revalidation(request: web.Request) -> bool:
    """`Cache-Control: no-cache` or `max-age=0`: pip --refresh-package, uv --refresh."""
    directives = {
        d.strip().lower().replace(" ", "")
        for d in request.headers.get("Cache-Control", "").split(",")
    }
    return bool(directives & {"no-cache", "max-age=0"}) or "no-cache" in request.headers.get(
        "Pragma", ""
    )


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
