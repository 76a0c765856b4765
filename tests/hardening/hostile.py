"""A scriptable upstream on 127.0.0.1 for faults the fake index has no knob for: redirects,
odd encodings, hostile pages, TLS. It runs in the test's own event loop; each path gets a
handler, and every request is recorded."""

import asyncio
import gc
import hashlib
import json
import resource
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

JSON = "application/vnd.pypi.simple.v1+json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class HostileUpstream:
    """Routes by exact path; unknown paths get 404. `url` is set once started."""

    routes: dict[str, Handler] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)  # request paths, in order
    url: str = ""

    @property
    def simple_url(self) -> str:
        return f"{self.url}simple/"

    def count(self, path: str) -> int:
        return self.seen.count(path)

    def page(self, project: str, body: bytes, content_type: str = JSON, **headers: str) -> None:
        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(body=body, headers={"Content-Type": content_type, **headers})

        self.routes[f"/simple/{project}/"] = handler

    def file(self, name: str, data: bytes, **headers: str) -> str:
        """Serve `data` at /files/<name>; returns its absolute URL."""

        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(body=data, headers=headers)

        self.routes[f"/files/{name}"] = handler
        return f"{self.url}files/{name}"

    def json_page(self, project: str, files: list[dict[str, Any]], serial: int = 1) -> None:
        document = {"meta": {"api-version": "1.1", "_last-serial": serial}, "files": files}
        self.page(project, json.dumps(document).encode())

    def listed(self, name: str, data: bytes, **extra: Any) -> dict[str, Any]:
        """A JSON page entry for a file served by this upstream."""
        url = self.file(name, data)
        return {"filename": name, "url": url, "hashes": {"sha256": sha256(data)}, **extra}

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request.path)
        handler = self.routes.get(request.path)
        if handler is None:
            return web.Response(status=404, text="not here\n")
        return await handler(request)


@asynccontextmanager
async def hostile_upstream(
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[HostileUpstream]:
    upstream = HostileUpstream()
    app = web.Application()
    app.router.add_route("*", "/{path:.*}", upstream._dispatch)
    runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    upstream.url = f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}/"
    try:
        yield upstream
    finally:
        await runner.cleanup()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LagMonitor:
    """The event loop's worst lag: how late a 10 ms sleep wakes up, measured all along.

    What is measured is bodega's own blocking, not the test process's garbage collector:
    late in a full run, the heap that two thousand tests left behind made one full
    collection cost the loop 190 ms. So the objects that exist when the watch starts are
    frozen (exempt from collection) for its length; what bodega allocates meanwhile is
    collected as usual. `worst_collection` is the longest collection in the window, for
    the failure's message.
    """

    def __init__(self) -> None:
        self.worst = 0.0
        self.worst_collection = 0.0
        self._task: asyncio.Task[None] | None = None
        self._collecting_since = 0.0

    async def _watch(self) -> None:
        while True:
            started = time.monotonic()
            await asyncio.sleep(0.01)
            self.worst = max(self.worst, time.monotonic() - started - 0.01)

    def _on_collection(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._collecting_since = time.monotonic()
        else:
            took = time.monotonic() - self._collecting_since
            self.worst_collection = max(self.worst_collection, took)

    async def __aenter__(self) -> "LagMonitor":
        gc.collect()
        gc.freeze()
        gc.callbacks.append(self._on_collection)
        self._task = asyncio.create_task(self._watch())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        gc.callbacks.remove(self._on_collection)
        gc.unfreeze()

    def __repr__(self) -> str:
        return f"LagMonitor(worst={self.worst:.3f}s, worst_collection={self.worst_collection:.3f}s)"


def reset_peak_rss(pid: int | str = "self") -> None:
    """Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) the kernel reports."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_rss_bytes(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def rss_bytes(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")
