"""The simple API: the root list and project pages, negotiated between HTML and JSON."""

from dataclasses import dataclass
from pathlib import Path

from aiohttp import ETag, web
from aiohttp.abc import AbstractStreamWriter

from bodega.core.names import normalize_project_name
from bodega.core.negotiation import choose_media_type
from bodega.core.parsing import HTML, JSON_V1
from bodega.errors import StorageError
from bodega.proxy.files import CachedFile
from bodega.proxy.page_requests import PageRequests
from bodega.proxy.root import StoredRoot
from bodega.web.headers import (
    CACHE_OUTCOME,
    accepts_gzip,
    answered_by_etag,
    client_refresh,
    etag_matches,
    if_match_fails,
    wants_revalidation,
)
from bodega.web.routing import Match

_VARY = "Accept, Accept-Encoding"


class SimpleApi:
    def __init__(self, pages: PageRequests) -> None:
        self._pages = pages

    async def project_page(self, request: web.Request, match: Match) -> web.Response:
        project = normalize_project_name(match.project)
        if project != match.project or not match.has_trailing_slash:
            # Only the validated, normalized name goes into Location, never raw input (threat 8).
            raise web.HTTPMovedPermanently(f"{match.prefix}{project}/")
        media_type = choose_media_type(request.headers.get("Accept"), request.query.get("format"))
        served = await self._pages.project(match.index, project, client_refresh(request))
        cached, outcome = served.cached, served.outcome
        rendered = await served.pages.render(cached, media_type)
        headers = {
            CACHE_OUTCOME: outcome,
            "Vary": _VARY,
            "Content-Type": _content_type(media_type),
            "Cache-Control": f"max-age={served.max_age}, public",
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

    async def root_list(self, request: web.Request, match: Match) -> web.StreamResponse:
        if not match.has_trailing_slash:
            raise web.HTTPMovedPermanently(match.prefix)
        media_type = choose_media_type(request.headers.get("Accept"), request.query.get("format"))
        root_list = self._pages.root_list(match.index)
        root, is_stale = await root_list.get(revalidate=wants_revalidation(request))
        headers = {
            "Vary": _VARY,
            "Content-Type": _content_type(media_type),
            "Cache-Control": f"max-age={root_list.max_age(root)}, public",
            "X-Bodega-Projects": str(root.project_count),
        }
        if is_stale:
            headers["X-Bodega-Stale"] = "1"
            headers["Warning"] = '110 bodega "Response is Stale"'
        variants = _variants(root, media_type, accepts_gzip(request))
        # A client holding a current variant gets it confirmed, even when another is preferred
        # now (the gzip copy made since), rather than the whole list again.
        held = [variant for variant in variants if etag_matches(request, (variant.etag,))]
        variant, stored = (held[0], None) if held else await _first_stored(self._pages, variants)
        if if_match_fails(request, variant.etag):
            return web.Response(status=412, headers={"ETag": variant.etag})
        if held:
            del headers["Content-Type"]
            return web.Response(status=304, headers={**headers, "ETag": variant.etag})
        if stored is None:
            raise web.HTTPServiceUnavailable(text="the root list is being rebuilt; try again\n")
        if variant.is_gzip:
            headers["Content-Encoding"] = "gzip"
        if stored.path is None:
            return _StreamedRendering(stored, variant.etag, headers)
        answered = answered_by_etag(request, variant.etag)
        return _StoredRendering(stored.path, variant.etag, headers, answered=answered)


@dataclass(frozen=True, slots=True)
class _Variant:
    """A blob the root list can be sent from; its hash is its ETag."""

    key: str
    is_gzip: bool

    @property
    def etag(self) -> str:
        return f'"{self.key[:32]}"'


def _variants(root: StoredRoot, media_type: str, accepts_gzip: bool) -> list[_Variant]:
    """What the client can take, the smallest first: the gzip copy, when it is made and
    the client accepts gzip, then the rendering itself."""
    is_json = media_type == JSON_V1
    identity = _Variant(root.json_key if is_json else root.html_key, is_gzip=False)
    gzip_key = root.json_gzip_key if is_json else root.html_gzip_key
    if gzip_key is None or not accepts_gzip:
        return [identity]
    return [_Variant(gzip_key, is_gzip=True), identity]


async def _first_stored(
    pages: PageRequests, variants: list[_Variant]
) -> tuple[_Variant, CachedFile | None]:
    """The first variant whose blob is there (a gzip copy `cache verify` quarantined is
    not: the rendering itself will do)."""
    for variant in variants:
        stored = await pages.open_rendering(variant.key)
        if stored is not None:
            return variant, stored
    return variants[-1], None


class _StoredRendering(web.FileResponse):
    """A stored rendering, sent from its blob with sendfile under the blob's ETag.

    FileResponse answers HEAD, Range, If-Modified-Since and 416 itself, but it judges entity
    tags against one of its own (the file's mtime and size) and sends that one. The blob's
    ETag is stable across restarts and data dirs; the handler judges If-Match and If-Range
    against it, and FileResponse gets the request without them (and without its Range,
    when If-Range failed).
    """

    def __init__(
        self, path: Path, etag: str, headers: dict[str, str], *, answered: tuple[str, ...]
    ) -> None:
        super().__init__(path, headers={**headers, "ETag": etag})
        self._answered = answered

    @property
    def etag(self) -> ETag | None:
        return super().etag

    @etag.setter
    def etag(self, value: ETag | str | None) -> None:
        pass  # FileResponse's own, from the file's mtime and size: the blob's key stays

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if self._answered:
            kept = request.headers.copy()
            for name in self._answered:
                kept.popall(name, None)
            request = request.clone(headers=kept)
        return await super().prepare(request)


class _StreamedRendering(web.StreamResponse):
    """A stored rendering streamed from a blob store whose blobs are no local files, whole
    and under the blob's ETag: such a store has no modification date to offer, and a
    server may ignore Range (RFC 9110 14.2)."""

    def __init__(self, stored: CachedFile, etag: str, headers: dict[str, str]) -> None:
        super().__init__(headers={**headers, "ETag": etag, "Accept-Ranges": "none"})
        assert stored.size is not None, "a blob without a file has a known size"
        self.content_length = stored.size
        self._stored = stored

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        writer = await super().prepare(request)
        if request.method == "HEAD":
            return writer
        try:
            async for chunk in self._stored.read(0, self.content_length or 0):
                await self.write(chunk)
        except (FileNotFoundError, StorageError):
            # Deleted midway (a refresh retired it), or the object store failed: never let a
            # short list pass for whole.
            if request.transport is not None:
                request.transport.abort()
            return writer
        await self.write_eof()
        return writer


def _content_type(media_type: str) -> str:
    return f"{media_type}; charset=utf-8" if media_type == HTML else media_type
