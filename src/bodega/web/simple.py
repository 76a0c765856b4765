"""The simple API: the root list and project pages, negotiated between HTML and JSON."""

from aiohttp import web

from bodega.core.names import normalize_project_name
from bodega.core.negotiation import choose_media_type
from bodega.core.parsing import HTML, JSON_V1
from bodega.services import Services
from bodega.web.headers import CACHE_OUTCOME, accepts_gzip, etag_matches, wants_revalidation
from bodega.web.routing import Match

_VARY = "Accept, Accept-Encoding"


async def project_page(request: web.Request, services: Services, match: Match) -> web.Response:
    project = normalize_project_name(match.project)
    if project != match.project or not match.has_trailing_slash:
        # Only the validated, normalized name goes into Location, never raw input (threat 8).
        raise web.HTTPMovedPermanently(f"{match.prefix}{project}/")
    media_type = choose_media_type(request.headers.get("Accept"), request.query.get("format"))
    pages = services.pages
    cached, outcome = await pages.lookup(project, revalidate=wants_revalidation(request))
    services.stats.count_outcome("page", outcome)
    rendered = await pages.render(cached, media_type)
    headers = {
        CACHE_OUTCOME: outcome,
        "Vary": _VARY,
        "Content-Type": _content_type(media_type),
        "Cache-Control": f"max-age={pages.max_age(cached)}, public",
    }
    if cached.is_stale:
        headers["Cache-Control"] = "max-age=0, must-revalidate"
        headers["Warning"] = '110 bodega "Response is Stale"'
        headers["X-Bodega-Stale"] = "1"
    use_gzip = rendered.gzipped is not None and accepts_gzip(request)
    gzip_etag = rendered.etag[:-1] + '-gzip"'
    headers["ETag"] = gzip_etag if use_gzip else rendered.etag
    if cached.page.last_serial is not None:
        headers["X-PyPI-Last-Serial"] = str(cached.page.last_serial)
    if etag_matches(request, (rendered.etag, gzip_etag)):
        del headers["Content-Type"]
        return web.Response(status=304, headers=headers)
    if use_gzip:
        headers["Content-Encoding"] = "gzip"
        return web.Response(body=rendered.gzipped, headers=headers)
    return web.Response(body=rendered.body, headers=headers)


async def root_list(request: web.Request, services: Services, match: Match) -> web.StreamResponse:
    if not match.has_trailing_slash:
        raise web.HTTPMovedPermanently(match.prefix)
    media_type = choose_media_type(request.headers.get("Accept"), request.query.get("format"))
    root, is_stale = await services.root.get(revalidate=wants_revalidation(request))
    key = root.json_key if media_type == JSON_V1 else root.html_key
    path = await services.files.local_path(key)
    if path is None:
        raise web.HTTPServiceUnavailable(text="the root list is being rebuilt; try again\n")
    headers = {
        "Vary": _VARY,
        "Content-Type": _content_type(media_type),
        "Cache-Control": f"max-age={services.root.max_age(root)}, public",
        "X-Bodega-Projects": str(root.project_count),
    }
    if is_stale:
        headers["X-Bodega-Stale"] = "1"
        headers["Warning"] = '110 bodega "Response is Stale"'
    # Streamed from disk with sendfile; the file is the rendering, so its hash is the ETag.
    response = web.FileResponse(path, headers=headers)
    response.etag = key[:32]
    return response


def _content_type(media_type: str) -> str:
    return f"{media_type}; charset=utf-8" if media_type == HTML else media_type
