"""The aiohttp application: one dispatcher over hand-made routes, one error translation."""

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bodega import __version__
from bodega.errors import (
    BodegaError,
    IntegrityError,
    InvalidName,
    NotFound,
    UpstreamError,
    UpstreamLoop,
    UpstreamTimeout,
)
from bodega.services import Services
from bodega.web import files, health, metrics, simple
from bodega.web.routing import Match, Route, match

log = logging.getLogger(__name__)

SERVICES = web.AppKey("services", Services)

Handler = Callable[[web.Request, Services, Match], Awaitable[web.StreamResponse]]

_STATUS: tuple[tuple[type[BodegaError], int], ...] = (
    (InvalidName, 400),
    (NotFound, 404),
    (UpstreamLoop, 508),
    (UpstreamTimeout, 504),
    (UpstreamError, 502),
    (IntegrityError, 502),
)


def create_app(services: Services) -> web.Application:
    app = web.Application(middlewares=[_errors])
    app[SERVICES] = services
    app.router.add_get("/{path:.*}", _dispatch)  # add_get answers HEAD too
    app.on_response_prepare.append(_count_request)
    return app


async def _count_request(request: web.Request, response: web.StreamResponse) -> None:
    # Every response passes here, error pages and redirects included, with its final status.
    request.app[SERVICES].stats.count_request(match(request.path).route.value, response.status)


async def _dispatch(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    if f"bodega-{services.instance_id}" in request.headers.get("Via", ""):
        raise UpstreamLoop("this request came back to the bodega that sent it")
    found = match(request.path)
    handler = _HANDLERS.get(found.route)
    if handler is None:
        raise NotFound(f"no such page: {request.path}")
    return await handler(request, services, found)


async def _home(request: web.Request, services: Services, match: Match) -> web.Response:
    base = f"{request.scheme}://{request.host}"
    text = (
        f"bodega {__version__}: a caching proxy of {services.settings.upstream}\n\n"
        f"pip install --index-url {base}/simple/ PACKAGE\n"
        f"uv pip install --default-index {base}/simple/ PACKAGE\n"
    )
    return web.Response(text=text, headers={"Cache-Control": "no-cache"})


_HANDLERS: dict[Route, Handler] = {
    Route.HOME: _home,
    Route.ROOT_LIST: simple.root_list,
    Route.PROJECT: simple.project_page,
    Route.FILE: files.distribution_file,
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
        # text/plain and a fixed shape: nothing from the request is echoed as markup (threat 9).
        return web.Response(status=status, text=f"{error}\n", headers={"Cache-Control": "no-store"})
