"""Liveness and readiness, for container health checks, systemd and load balancers."""

import json

from aiohttp import web

from bodega.proxy.readiness import Readiness
from bodega.web.routing import Match

_NO_STORE = {"Cache-Control": "no-store"}


class Health:
    def __init__(self, readiness: Readiness) -> None:
        self._readiness = readiness

    @staticmethod
    async def health(request: web.Request, match: Match) -> web.Response:
        """Alive: the event loop answers. Nothing else is checked, so a slow upstream or disk
        never gets a working process restarted."""
        return web.Response(text="ok\n", headers=_NO_STORE)

    async def ready(self, request: web.Request, match: Match) -> web.Response:
        """200 when the store takes writes and upstream answers (or bodega is offline); 503 with
        what is wrong otherwise."""
        checks = await self._readiness.check()
        is_ready = all(state in ("ok", "offline") for state in checks.values())
        body = json.dumps({"ready": is_ready, **checks}, indent=1) + "\n"
        return web.Response(
            status=200 if is_ready else 503,
            text=body,
            content_type="application/json",
            headers=_NO_STORE,
        )
