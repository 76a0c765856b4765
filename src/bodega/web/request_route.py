"""A request's route, found once: the access check, the dispatcher, the error pages and the
request counter all ask for it, and a second routing could only disagree with the first."""

from aiohttp import web

from bodega.web.routing import Match, match_request

_ROUTE = web.RequestKey("route", Match)


def route_of(request: web.Request) -> Match:
    found = request.get(_ROUTE)
    if found is None:
        found = match_request(request.method, request.path, request.content_type)
        request[_ROUTE] = found
    return found
