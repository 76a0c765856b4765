"""The web UI: server-rendered pages of what the cache holds, and the same numbers as JSON.

Jinja2 autoescapes every value, so upstream strings (names, summaries, filenames, yanked
reasons) are text, never markup (threat 45). The one exception is a project's description,
rendered to HTML as the public index renders it and sanitized by an allowlist
(core/description.py). Pages load nothing from elsewhere and the Content-Security-Policy
forbids it: no scripts at all, styles from this server only.
"""

import asyncio
import datetime
import importlib.resources
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from bodega import __version__
from bodega.core.indexes import HostedIndex, IndexSpec, MirrorIndex
from bodega.core.names import normalize_project_name
from bodega.core.search import MAX_TERM_LENGTH, Criterion, Query
from bodega.core.urls import shown_url
from bodega.proxy.catalog import Catalog
from bodega.proxy.indexes import Indexes, Mirror
from bodega.web.headers import client_url
from bodega.web.routing import Match, Route

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}

if TYPE_CHECKING:
    import jinja2


class Templates:
    """The Jinja2 environment, built (in a thread) on the first page view: importing Jinja2
    is a tenth of bodega's start-up, and a bodega only installers talk to never needs it."""

    def __init__(self) -> None:
        self._environment: jinja2.Environment | None = None

    async def get(self, name: str) -> "jinja2.Template":
        if self._environment is None:
            self._environment = await asyncio.to_thread(templates)
        return self._environment.get_template(name)


TEMPLATES = web.AppKey("templates", Templates)
STATIC = web.AppKey("static", dict)


def templates() -> "jinja2.Environment":
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("bodega.web", "templates"),
        autoescape=True,  # every template is HTML
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["size"] = _size
    environment.filters["when"] = _when
    environment.filters["date"] = _date
    environment.filters["percent"] = _percent
    return environment


def static_files() -> dict[str, tuple[bytes, str]]:
    """The stylesheet and icon, read once at start-up: (bytes, content type) by name."""
    folder = importlib.resources.files("bodega.web") / "static"
    found = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if suffix in _STATIC_TYPES:
            found[entry.name] = (entry.read_bytes(), _STATIC_TYPES[suffix])
    return found


@dataclass(frozen=True, slots=True)
class _IndexRow:
    name: str
    kind: str
    serves: str  # a mirror's upstream (credentials removed), a virtual index's bases

    @classmethod
    def of(cls, spec: IndexSpec) -> "_IndexRow":
        if isinstance(spec, MirrorIndex):
            return cls(spec.name, "mirror", shown_url(spec.upstream))
        if isinstance(spec, HostedIndex):
            return cls(spec.name, "hosted", "packages uploaded here")
        routes = ", ".join(f"{glob} → {base}" for glob, base in spec.routes)
        serves = "first of " + ", ".join(spec.bases) + (f"; routes {routes}" if routes else "")
        return cls(spec.name, "virtual (merged)" if spec.merge else "virtual", serves)


class Ui:
    """The UI's pages over the indexes (the cache page: the default index's first mirror)."""

    def __init__(self, indexes: Indexes) -> None:
        self._indexes = indexes

    async def home(self, request: web.Request, match: Match) -> web.Response:
        base = str(client_url(request).origin())
        return await _render(
            request,
            "home.html",
            snippets=_snippets(base, request.host),
            base=base,
            indexes=[_IndexRow.of(self._indexes.spec(name)) for name in self._indexes.names],
            default_index=self._indexes.default,
        )

    async def search(self, request: web.Request, match: Match) -> web.Response:
        text = request.query.get("q", "").strip()
        error, hits = None, []
        if len(text) > MAX_TERM_LENGTH:
            error = f"A search is at most {MAX_TERM_LENGTH} characters."
        elif text:
            query = Query((Criterion("name", text), Criterion("summary", text)), match_all=False)
            hits = await self._indexes.search(match.index, query)
        status = await self._first_mirror(match).search.status()
        return await _render(request, "search.html", q=text, hits=hits, error=error, status=status)

    async def project(self, request: web.Request, match: Match) -> web.Response:
        name = normalize_project_name(match.project)
        if name != match.project:
            raise web.HTTPMovedPermanently(f"{match.prefix}{quote(name)}")
        try:
            page_number = int(request.query.get("page", "1"))
        except ValueError:
            page_number = 1
        hosted = await self._indexes.hosted_source(match.index, name)
        if hosted is not None:
            # An uploaded project: its page from the hosted index, described by the catalog
            # that reports on the cache (it reads only the store and blobs).
            cached, catalog, source = await hosted.page(name), self._catalog(match), hosted.name
        else:
            mirror, cached, _ = await self._indexes.visible_page(match.index, name)
            catalog, source = mirror.catalog, mirror.name
        view = await catalog.project(name, page_number, cached)
        base = str(client_url(request).origin())
        return await _render(
            request, "project.html", project=view, key=name, base=base, source=source
        )

    async def cache(self, request: web.Request, match: Match) -> web.Response:
        return await _render(request, "cache.html", report=await self._catalog(match).report())

    async def status(self, request: web.Request, match: Match) -> web.Response:
        report = await self._catalog(match).report()
        return web.json_response(report.to_json(), headers={"Cache-Control": "no-store"})

    def _catalog(self, match: Match) -> Catalog:
        """The catalog that reports on the cache: that of the index's first mirror."""
        return self._first_mirror(match).catalog

    def _first_mirror(self, match: Match) -> Mirror:
        """The index's first mirror; a hosted index (which has none) reports on the
        default index's."""
        mirrors = self._indexes.mirrors_of(match.index) or self._indexes.mirrors_of("")
        return mirrors[0]

    @staticmethod
    async def static(request: web.Request, match: Match) -> web.Response:
        found = request.app[STATIC].get(match.filename)
        if found is None:
            raise web.HTTPNotFound(text="no such file\n")
        body, content_type = found
        headers = {"Content-Type": content_type, "Cache-Control": "max-age=3600"}
        return web.Response(body=body, headers=headers)


# Where a 404 is a page with a search box: the UI, and paths no client but a browser asks for.
_HTML_ERROR_ROUTES = frozenset(
    {Route.HOME, Route.UI_SEARCH, Route.UI_PROJECT, Route.UI_CACHE, Route.UI_POLICY}
)


def wants_error_page(request: web.Request, route: Route) -> bool:
    """Whether a 404 should be the HTML page (a person) rather than text (an installer)."""
    if request.method not in ("GET", "HEAD"):
        return False
    if route in _HTML_ERROR_ROUTES:
        return True
    return route is Route.NOT_FOUND and "text/html" in request.headers.get("Accept", "")


async def not_found(request: web.Request, message: str) -> web.Response:
    return await _render(request, "404.html", http_status=404, message=message)


async def render_page(request: web.Request, template: str, **values: Any) -> web.Response:
    """A template as a UI page, with the UI's headers: for the UI's other modules."""
    return await _render(request, template, **values)


async def _render(
    request: web.Request, template: str, *, http_status: int = 200, **values: Any
) -> web.Response:
    page = await request.app[TEMPLATES].get(template)
    body = page.render(version=__version__, **values)
    return web.Response(
        status=http_status, text=body, content_type="text/html", charset="utf-8", headers=_HEADERS
    )


def _snippets(base: str, host: str) -> list[tuple[str, str]]:
    simple = f"{base}/simple/"
    trusted = (
        f"\ntrusted-host = {host.rpartition(':')[0] or host}" if base.startswith("http:") else ""
    )
    return [
        ("pip", f"pip install --index-url {simple} PACKAGE"),
        ("pip.conf", f"[global]\nindex-url = {simple}{trusted}\n\n[search]\nindex = {base}/pypi"),
        ("uv", f"uv pip install --default-index {simple} PACKAGE"),
        ("uv.toml", f'[[index]]\nurl = "{simple}"\ndefault = true'),
        ("Poetry", f"poetry source add --priority=primary bodega {simple}"),
        ("PDM", f"pdm config pypi.url {simple}"),
        ("Pipenv (Pipfile)", f'[[source]]\nname = "bodega"\nurl = "{simple}"\nverify_ssl = false'),
        ("pip search", f"pip search --index {base}/pypi QUERY"),
    ]


def _size(value: int | None) -> str:
    if value is None:
        return "?"
    size = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{value} B"


def _when(value: float | None) -> str:
    if value is None:
        return "never"
    moment = datetime.datetime.fromtimestamp(value, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _date(value: str | None) -> str:
    """An ISO 8601 upload time (PEP 700) as a person reads it: "4 Dec 2026"."""
    if not value:
        return ""
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        return value
    return f"{moment.day} {moment:%b %Y}"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"
