"""The aiohttp application: one dispatcher over hand-made routes, one error translation."""

import logging
import math
from collections.abc import Awaitable, Callable

from aiohttp import web

from bodega.errors import (
    BodegaError,
    IntegrityError,
    InvalidName,
    InvalidUpload,
    NotFound,
    PolicyBlocked,
    StorageError,
    UpstreamBusy,
    UpstreamError,
    UpstreamLoop,
    UpstreamTimeout,
)
from bodega.proxy.activity import ClientActivity
from bodega.proxy.telemetry import Telemetry
from bodega.services import Services
from bodega.web import ui
from bodega.web.access import access_middleware
from bodega.web.access_log import log_cut_responses, note_response
from bodega.web.files import FileEndpoint
from bodega.web.headers import add_security_headers
from bodega.web.health import Health
from bodega.web.json_api import JsonApi
from bodega.web.metrics import Metrics
from bodega.web.policy_ui import PolicyPage
from bodega.web.request_route import route_of
from bodega.web.routing import MANAGE_PATHS, XMLRPC_PATHS, Match, Route
from bodega.web.simple import SimpleApi
from bodega.web.uploads import Uploads
from bodega.web.worker_metrics import METRICS_DIR, WorkerMetrics
from bodega.web.xmlrpc import XmlRpc

log = logging.getLogger(__name__)

# A handler is bound to the one service it needs and translates between it and HTTP.
Handler = Callable[[web.Request, Match], Awaitable[web.StreamResponse]]


_STATUS: tuple[tuple[type[BodegaError], int], ...] = (
    (InvalidName, 400),
    (InvalidUpload, 400),
    (NotFound, 404),
    (UpstreamLoop, 508),
    (UpstreamTimeout, 504),
    (UpstreamBusy, 503),
    (UpstreamError, 502),
    (IntegrityError, 502),
    (StorageError, 503),
)


def create_app(services: Services) -> web.Application:
    check_access = access_middleware(services.access, services.settings.default_index)
    app = web.Application(middlewares=[log_cut_responses, _errors, check_access])
    metrics = Metrics(services.telemetry, services.eviction, services.files, services.policies)
    if services.worker:
        metrics.share(_worker_metrics(services), app)
    edge = _Edge(
        _handlers(services, metrics),
        services.telemetry,
        services.activity,
        f"bodega-{services.instance_id}",
    )
    app[ui.TEMPLATES] = ui.Templates()
    app[ui.STATIC] = ui.static_files()
    app.router.add_get("/{path:.*}", edge.dispatch)  # add_get answers HEAD too
    for path in XMLRPC_PATHS:
        # pip search posts XML-RPC here; publishers upload
        app.router.add_post(path, edge.dispatch)
    for path in MANAGE_PATHS:
        app.router.add_post(path, edge.dispatch)
    app.on_response_prepare.append(edge.prepare)
    app.on_response_prepare.append(note_response)
    return app


class _Edge:
    """Each request to its route's handler, each response counted. What they need is bound
    here once rather than looked up in the app (four lookups) on every request."""

    def __init__(
        self,
        handlers: dict[Route, Handler],
        telemetry: Telemetry,
        activity: ClientActivity,
        via: str,  # what this process adds to Via, to detect request loops
    ) -> None:
        self._handlers = handlers
        self._telemetry = telemetry
        self._activity = activity
        self._via = via

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        if self._via in request.headers.get("Via", ""):
            raise UpstreamLoop("this request came back to the bodega that sent it")
        found = route_of(request)
        handler = self._handlers.get(found.route)
        if handler is None:
            raise NotFound(f"no such page: {request.path}")
        self._activity.started()
        try:
            return await handler(request, found)
        finally:
            self._activity.ended()

    async def prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        # Every response passes here, error pages and redirects included, with its final
        # status.
        await add_security_headers(request, response)
        self._telemetry.count_request(route_of(request).route.value, response.status)


def _worker_metrics(services: Services) -> WorkerMetrics:
    settings = services.settings
    return WorkerMetrics(settings.data_dir / METRICS_DIR, services.worker, settings.workers)


def _handlers(services: Services, metrics: Metrics) -> dict[Route, Handler]:
    simple = SimpleApi(services.pages)
    pages = ui.Ui(services.indexes)
    health = Health(services.readiness)
    uploads = Uploads(services.indexes)
    return {
        Route.HOME: pages.home,
        Route.ROOT_LIST: simple.root_list,
        Route.PROJECT: simple.project_page,
        Route.FILE: FileEndpoint(services.file_requests).distribution_file,
        Route.XMLRPC: XmlRpc(services.indexes).endpoint,
        Route.UI_SEARCH: pages.search,
        Route.UI_PROJECT: pages.project,
        Route.UI_CACHE: pages.cache,
        Route.UI_POLICY: PolicyPage(services.policies, services.indexes).page,
        Route.STATUS: pages.status,
        Route.STATIC: pages.static,
        Route.JSON_API: JsonApi(services.project_json).project_json,
        Route.UPLOAD: uploads.upload,
        Route.MANAGE: uploads.manage,
        Route.HEALTH: health.health,
        Route.READY: health.ready,
        Route.METRICS: metrics.metrics,
    }


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except BodegaError as error:
        status = next((code for kind, code in _STATUS if isinstance(error, kind)), 500)
        if status >= 500:
            log.warning("%s %s: %s", request.method, request.path, error)
        found = route_of(request)
        if status == 404 and ui.wants_error_page(request, found.route):
            return await ui.not_found(request, str(error))
        headers = {"Cache-Control": "no-store"}
        if isinstance(error, PolicyBlocked):
            headers["X-Bodega-Policy"] = error.rule  # which rule, for scripts and support
        if isinstance(error, UpstreamBusy):
            # Upstream's request to wait, passed on: clients that honour it spare both.
            headers["Retry-After"] = str(math.ceil(error.retry_after))
        # text/plain and a fixed shape: nothing from the request is echoed as markup (threat 9).
        reason = _reason(error) if isinstance(error, InvalidUpload) else None
        return web.Response(status=status, reason=reason, text=f"{error}\n", headers=headers)


def _reason(error: BodegaError) -> str:
    """An upload's refusal as the status line's reason, which publishers (twine) print:
    printable ASCII only, one line, bounded."""
    text = str(error).encode("ascii", "backslashreplace").decode()
    return "".join(c if c.isprintable() else "?" for c in text)[:300]
