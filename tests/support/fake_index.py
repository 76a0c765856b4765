"""A fake upstream package index with fault injection, for tests.

The server runs in its own thread with its own event loop, so synchronous tests (for example ones
that shell out to pip) and asynchronous tests can both talk to it. Like the public index, it
serves simple pages and distribution files from two different origins: two loopback ports.

Every knob can be turned from the test thread at any time; shared state is guarded by a lock and
loop-side objects are only touched through ``call_soon_threadsafe``/``run_coroutine_threadsafe``.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import socket
import threading
import time
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from types import TracebackType
from typing import Any, Literal, Self, TypeVar
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from multidict import CIMultiDict, CIMultiDictProxy
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from .distributions import BuiltFile

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
LATEST_JSON_TYPE = "application/vnd.pypi.simple.latest+json"
V1_HTML_TYPE = "application/vnd.pypi.simple.v1+html"
HTML_TYPE = "text/html"
API_VERSION = "1.1"
DEFAULT_UPLOAD_TIME = "2026-01-02T03:04:05.000000Z"

# What the public index sends; tests may assign another value to FakeIndex.page_cache_control.
PAGE_CACHE_CONTROL = "max-age=600, public"
FILE_CACHE_CONTROL = "max-age=365000000, immutable, public"

# aiohttp waits this long for in-flight handlers (throttled bodies, delays) on stop() before
# cancelling them; tests should not wait a minute, which is aiohttp's default.
_SHUTDOWN_TIMEOUT = 0.5
_CALL_TIMEOUT = 10.0

ServerKind = Literal["pages", "files"]
Held = Literal["pages", "ranges"]  # project-page requests; Range requests for files
_T = TypeVar("_T")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake index saw it."""

    method: str
    path: str  # URL-decoded path, without the query string
    headers: Mapping[str, str]  # case-insensitive
    server: ServerKind


@dataclass(frozen=True)
class _Entry:
    """A file as listed on a project page."""

    project: str  # normalized
    file: BuiltFile
    yanked: bool | str
    upload_time: str | None
    serve_metadata: bool
    hash_in_page: bool
    size_in_page: bool
    provenance: str | None = None  # PEP 740

    @property
    def path(self) -> str:
        # Mimics the public files host layout closely enough: hashed directories, then the name.
        sha = self.file.sha256
        return f"/packages/{sha[:2]}/{sha[2:4]}/{quote(self.file.filename)}"

    @property
    def has_metadata(self) -> bool:
        return self.serve_metadata and self.file.metadata is not None


@dataclass
class _Project:
    name: str  # display name, as first added
    files: dict[str, _Entry] = field(default_factory=dict)
    serial: int = 0
    last_modified: float = 0.0
    status: tuple[str, str | None] | None = None  # PEP 792 status and reason
    versions: list[str] | None = None  # PEP 700 versions as upstream spells them; None: derived


@dataclass
class _Faults:
    fail_pages: int | None = None
    fail_files: int | None = None
    retry_after: str | None = None  # the Retry-After of those failures
    delay: float = 0.0
    throttle: dict[str, tuple[int, int]] = field(default_factory=dict)
    corrupt: dict[str, int | None] = field(default_factory=dict)  # filename -> times left
    truncate: dict[str, bool] = field(default_factory=dict)  # filename -> with_content_length
    stall: dict[str, int] = field(default_factory=dict)  # filename -> bytes sent before hanging
    pause: dict[str, int] = field(default_factory=dict)  # filename -> bytes sent before waiting
    held: set[Held] = field(default_factory=set)  # requests that wait for release()


def _bind(port: int) -> socket.socket:
    """Create a loopback listening socket; SO_REUSEADDR lets set_down(False) rebind the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return sock


def _version_of(filename: str) -> str | None:
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[1])
        return str(parse_sdist_filename(filename)[1])
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


def _negotiate(accept: str | None) -> str:
    """Pick the page format like the public index: HTML unless JSON is strictly preferred."""
    if not accept or not accept.strip():
        return HTML_TYPE
    ranges: list[tuple[str, float]] = []
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media:
            ranges.append((media.lower(), q))

    def quality(candidate: str) -> float:
        # The most specific matching range decides (RFC 9110 section 12.5.1).
        kind = candidate.split("/", maxsplit=1)[0]
        best: tuple[int, float] = (-1, 0.0)
        for media, q in ranges:
            if media == candidate:
                specificity = 2
            elif media == f"{kind}/*":
                specificity = 1
            elif media == "*/*":
                specificity = 0
            else:
                continue
            if specificity > best[0]:
                best = (specificity, q)
        return best[1]

    json_q = max(quality(JSON_TYPE), quality(LATEST_JSON_TYPE))
    v1_html_q = quality(V1_HTML_TYPE)
    html_q = quality(HTML_TYPE)
    if json_q > 0 and json_q > max(v1_html_q, html_q):
        return JSON_TYPE
    if v1_html_q > html_q:
        return V1_HTML_TYPE
    # Also the answer when nothing is acceptable: the public index then sends HTML, not 406.
    return HTML_TYPE


def _etag_matches(if_none_match: str, etag: str) -> bool:
    # If-None-Match uses the weak comparison, so a W/ prefix does not matter.
    for raw in if_none_match.split(","):
        candidate = raw.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


class FakeIndex:
    """A fake upstream index: simple pages on one loopback port, files on another.

    Use as a context manager, or call start() and stop(). ``page_cache_control`` is the
    Cache-Control sent on simple pages and may be reassigned by a test.
    """

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.page_cache_control = PAGE_CACHE_CONTROL
        # Like the public files host, the files port answers Range requests; False makes it
        # ignore them and send the whole file with 200, as some servers do.
        self.serves_ranges = True
        self._lock = threading.Lock()
        self._projects: dict[str, _Project] = {}
        self._files: dict[str, _Entry] = {}
        self._serial = 0
        self._faults = _Faults()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # The following are only touched on the loop thread.
        self._runners: dict[ServerKind, web.AppRunner] = {}
        self._sites: dict[ServerKind, web.SockSite] = {}
        self._ports: dict[ServerKind, int] = {}
        self._down = False
        self._stall_release: asyncio.Event | None = None
        self._held_release: dict[Held, asyncio.Event] = {}

    # ----------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start the server thread and bind both ports."""
        if self._thread is not None:
            raise RuntimeError("FakeIndex is already started")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run_loop, args=(loop,), name="fake-index", daemon=True
        )
        self._thread.start()
        try:
            self._call(self._astart())
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Release stalled responses, close every socket and join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            self._call(self._astop())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_CALL_TIMEOUT)
            self._loop = None
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pages_port(self) -> int:
        """Port that serves /simple/."""
        return self._port("pages")

    @property
    def files_port(self) -> int:
        """Port that serves /packages/."""
        return self._port("files")

    @property
    def simple_url(self) -> str:
        """Index URL to hand to a client: ``http://127.0.0.1:<pages port>/simple/``."""
        return f"http://127.0.0.1:{self.pages_port}/simple/"

    @property
    def files_url(self) -> str:
        """Origin of the files server, without a trailing slash."""
        return f"http://127.0.0.1:{self.files_port}"

    # ------------------------------------------------------------------------------- content

    def add(
        self,
        project: str,
        file: BuiltFile,
        *,
        yanked: bool | str = False,
        upload_time: str | None = DEFAULT_UPLOAD_TIME,
        serve_metadata: bool = True,
        hash_in_page: bool = True,
        size_in_page: bool = True,
        provenance: str | None = None,
    ) -> None:
        """Publish ``file`` under ``project``; a file with the same name is replaced.

        ``yanked`` is True or a reason string (an empty reason still means yanked).
        ``serve_metadata`` only has an effect on wheels: sdists never get ``.metadata``.
        """
        key = canonicalize_name(project)
        entry = _Entry(
            key, file, yanked, upload_time, serve_metadata, hash_in_page, size_in_page, provenance
        )
        with self._lock:
            previous = self._files.get(file.filename)
            if previous is not None and previous.project != key:
                self._projects[previous.project].files.pop(file.filename, None)
                self._touch(self._projects[previous.project])
            proj = self._projects.setdefault(key, _Project(project))
            proj.files[file.filename] = entry
            self._files[file.filename] = entry
            self._touch(proj)

    def list_names(self, names: Iterable[str]) -> None:
        """List projects with no files in the root list, as cheaply as a big index needs."""
        with self._lock:
            for name in names:
                key = canonicalize_name(name)
                if key not in self._projects:
                    self._projects[key] = _Project(name)
                    self._touch(self._projects[key])

    def set_status(self, project: str, status: str | None, reason: str | None = None) -> None:
        """Give a published project a PEP 792 status (active, archived, quarantined,
        deprecated), or none; pages then claim API version 1.4."""
        key = canonicalize_name(project)
        with self._lock:
            proj = self._projects[key]
            proj.status = None if status is None else (status, reason)
            self._touch(proj)

    def set_versions(self, project: str, versions: list[str]) -> None:
        """List these PEP 700 versions, spelled so (`2004d`, `0.6c11`), some perhaps with no
        files, instead of those derived from the filenames."""
        key = canonicalize_name(project)
        with self._lock:
            proj = self._projects[key]
            proj.versions = list(versions)
            self._touch(proj)

    def remove(self, project: str, filename: str) -> None:
        """Unlist a file; the project itself stays (with possibly zero files), as on the index."""
        key = canonicalize_name(project)
        with self._lock:
            proj = self._projects[key]
            del proj.files[filename]
            self._files.pop(filename, None)
            self._touch(proj)

    def delete_project(self, project: str) -> None:
        """Delete a project and its files: its page and files answer 404 from now on."""
        key = canonicalize_name(project)
        with self._lock:
            proj = self._projects.pop(key)
            for filename in proj.files:
                self._files.pop(filename, None)
            self._serial += 1

    def file_url(self, filename: str) -> str:
        """Absolute URL of a published file on the files port."""
        with self._lock:
            entry = self._files[filename]
        return self.files_url + entry.path

    def _touch(self, proj: _Project) -> None:
        # Caller holds the lock.
        self._serial += 1
        proj.serial = self._serial
        proj.last_modified = time.time()

    # ---------------------------------------------------------------------------- fault knobs

    def fail_with(
        self,
        status: int | None,
        *,
        pages: bool = True,
        files: bool = False,
        retry_after: str | None = None,
    ) -> None:
        """Answer every page and/or file request with ``status``; None stops doing so. With
        ``retry_after``, the answers carry it as their Retry-After header."""
        with self._lock:
            if pages:
                self._faults.fail_pages = status
            if files:
                self._faults.fail_files = status
            self._faults.retry_after = retry_after

    def set_down(self, down: bool) -> None:
        """Close (down) or reopen on the same ports (up) both listening sockets.

        Going down also closes every open connection, so pooled keep-alive connections fail too.
        """
        self._call(self._aset_down(down))

    def delay_first_byte(self, seconds: float) -> None:
        """Wait ``seconds`` before sending response headers, on both ports."""
        with self._lock:
            self._faults.delay = seconds

    def throttle(self, filename: str, bytes_per_second: int, chunk: int = 1024) -> None:
        """Send the body of ``filename`` (or ``<file>.metadata``) in chunks at this rate."""
        if bytes_per_second <= 0 or chunk <= 0:
            raise ValueError("bytes_per_second and chunk must be positive")
        with self._lock:
            self._faults.throttle[filename] = (bytes_per_second, chunk)

    def corrupt(self, filename: str, *, times: int | None = None) -> None:
        """Serve ``filename`` with its middle byte flipped; the length stays the same. With
        ``times``, only that many whole-file GETs are corrupt, then it is served intact."""
        with self._lock:
            self._faults.corrupt[filename] = times

    def truncate(self, filename: str, *, with_content_length: bool) -> None:
        """Send only the first half of the body, then close the connection.

        With ``with_content_length`` the headers announce the full length; without it there is
        neither Content-Length nor chunking, so the body is delimited by the close alone and a
        client cannot tell it is short.
        """
        with self._lock:
            self._faults.stall.pop(filename, None)
            self._faults.truncate[filename] = with_content_length

    def stall(self, filename: str, after_bytes: int) -> None:
        """Send ``after_bytes`` of the body, then hang until reset_faults() or stop() closes it."""
        with self._lock:
            self._faults.truncate.pop(filename, None)
            self._faults.stall[filename] = after_bytes

    def pause(self, filename: str, after_bytes: int) -> None:
        """Send ``after_bytes`` of the body, wait until reset_faults() releases it, then send the
        rest: a download that is in flight for exactly as long as a test needs."""
        with self._lock:
            self._faults.pause[filename] = after_bytes

    def hold(self, what: Held) -> None:
        """Keep every project-page request ("pages") or every Range request for a file
        ("ranges") waiting, before any byte is sent, until release(what) (or reset_faults()
        or stop()): a refresh, or an extraction of core metadata, in flight for as long as a
        test needs. The root page and whole-file requests are answered as usual."""
        with self._lock:
            self._faults.held.add(what)

    def release(self, what: Held) -> None:
        """Answer the requests hold(what) kept waiting, and any later ones at once."""
        with self._lock:
            self._faults.held.discard(what)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._release_held, what)

    def reset_faults(self) -> None:
        """Clear every fault and release stalled responses. Does not bring the server back up."""
        with self._lock:
            self._faults = _Faults()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._release_stalls)

    # ---------------------------------------------------------------------------- observation

    def count(self, method: str, path_suffix: str) -> int:
        """Number of recorded requests with this method whose path ends with ``path_suffix``."""
        method = method.upper()
        return sum(
            1 for r in list(self.requests) if r.method == method and r.path.endswith(path_suffix)
        )

    # ------------------------------------------------------------------------ loop-side code

    def _port(self, kind: ServerKind) -> int:
        try:
            return self._ports[kind]
        except KeyError:
            raise RuntimeError("FakeIndex is not started") from None

    def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run a coroutine on the server loop and wait for its result."""
        if self._loop is None:
            coro.close()
            raise RuntimeError("FakeIndex is not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(_CALL_TIMEOUT)

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            # Anything still pending (e.g. a handler that ignored cancellation) is finished off
            # here so that closing the loop leaks neither tasks nor sockets.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    async def _astart(self) -> None:
        self._stall_release = asyncio.Event()
        self._held_release = {"pages": asyncio.Event(), "ranges": asyncio.Event()}
        self._down = False
        apps: tuple[tuple[ServerKind, web.Application], ...] = (
            ("pages", self._pages_app()),
            ("files", self._files_app()),
        )
        for kind, app in apps:
            runner = web.AppRunner(
                app,
                access_log=None,
                shutdown_timeout=_SHUTDOWN_TIMEOUT,
                # Cancel the handler when the client goes away, so throttled or stalled
                # responses do not outlive the test that abandoned them.
                handler_cancellation=True,
            )
            await runner.setup()
            self._runners[kind] = runner
            await self._open(kind, 0)

    async def _open(self, kind: ServerKind, port: int) -> None:
        sock = _bind(port)
        site = web.SockSite(self._runners[kind], sock)
        try:
            await site.start()
        except BaseException:
            sock.close()
            raise
        self._sites[kind] = site
        self._ports[kind] = sock.getsockname()[1]

    async def _astop(self) -> None:
        self._release_stalls()
        # Cut every connection first: handlers are then cancelled at once (handler_cancellation)
        # instead of making cleanup() wait, and no transport with unsent data is left open.
        await self._close_listeners()
        self._abort_connections()
        for runner in self._runners.values():
            await runner.cleanup()
        self._runners.clear()

    async def _aset_down(self, down: bool) -> None:
        if down == self._down:
            return
        if down:
            await self._close_listeners()
            self._abort_connections()
        else:
            for kind in self._runners:
                await self._open(kind, self._ports[kind])
        self._down = down

    async def _close_listeners(self) -> None:
        for site in self._sites.values():
            await site.stop()  # closes the listening socket: new connections are refused
        self._sites.clear()

    def _abort_connections(self) -> None:
        for runner in self._runners.values():
            if runner.server is None:
                continue
            for conn in runner.server.connections:
                if conn.transport is not None:
                    conn.transport.abort()

    def _release_stalls(self) -> None:
        # Wake everything stalled so far; later stalls wait on a fresh event.
        if self._stall_release is not None:
            self._stall_release.set()
        self._stall_release = asyncio.Event()
        self._release_held("pages")
        self._release_held("ranges")

    def _release_held(self, what: Held) -> None:
        if (held := self._held_release.get(what)) is not None:
            held.set()
        self._held_release[what] = asyncio.Event()

    async def _wait_if_held(self, what: Held) -> None:
        # The flag and the event are read in one step of the loop, which is where release()
        # swaps the event: a request either sees the hold lifted or waits on the event set.
        with self._lock:
            is_held = what in self._faults.held
        held = self._held_release.get(what)
        if is_held and held is not None:
            await held.wait()

    def _middleware(self, kind: ServerKind) -> Middleware:
        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            headers = CIMultiDictProxy(CIMultiDict(request.headers))
            with self._lock:
                self.requests.append(RecordedRequest(request.method, request.path, headers, kind))
                delay = self._faults.delay
                status = self._faults.fail_pages if kind == "pages" else self._faults.fail_files
                retry_after = self._faults.retry_after
            if delay > 0:
                await asyncio.sleep(delay)
            if status is not None:
                response = _status_response(status)
                if retry_after is not None:
                    response.headers["Retry-After"] = retry_after
                return response
            return await handler(request)

        return middleware

    # ----------------------------------------------------------------------------- pages port

    def _pages_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware("pages")])
        app.router.add_get("/{tail:.*}", self._handle_page)
        return app

    async def _handle_page(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/simple":
            raise web.HTTPMovedPermanently("/simple/")
        if path == "/simple/":
            return self._root_page(request)
        if not path.startswith("/simple/"):
            raise web.HTTPNotFound()
        name = path.removeprefix("/simple/")
        name, slash, rest = name.partition("/")
        if rest or not name:
            raise web.HTTPNotFound()
        normalized = canonicalize_name(name)
        if name != normalized or not slash:
            raise web.HTTPMovedPermanently(f"/simple/{normalized}/")
        await self._wait_if_held("pages")
        return self._project_page(request, normalized)

    def _root_page(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            projects = sorted((key, p.name, p.serial) for key, p in self._projects.items())
            serial = self._serial
            modified = max((p.last_modified for p in self._projects.values()), default=time.time())
        content_type = _negotiate(request.headers.get("Accept"))
        if content_type == JSON_TYPE:
            doc = {
                "meta": {"api-version": API_VERSION, "_last-serial": serial},
                "projects": [{"name": name, "_last-serial": s} for _, name, s in projects],
            }
            body = json.dumps(doc, indent=1).encode()
        else:
            links = "".join(
                f'    <a href="/simple/{quote(key)}/">{html.escape(name)}</a>\n'
                for key, name, _ in projects
            )
            body = _html_document("Simple index", links, serial)
        return self._page_response(request, content_type, body, serial, modified)

    def _project_page(self, request: web.Request, key: str) -> web.StreamResponse:
        with self._lock:
            proj = self._projects.get(key)
            if proj is None:
                raise web.HTTPNotFound()
            entries = sorted(proj.files.values(), key=lambda e: e.file.filename)
            serial, modified, status = proj.serial, proj.last_modified, proj.status
            listed = proj.versions
        # PEP 792: a quarantined project's index offers no files.
        if status is not None and status[0] == "quarantined":
            entries = []
        files_url = self.files_url
        content_type = _negotiate(request.headers.get("Accept"))
        if content_type == JSON_TYPE:
            versions = {v for e in entries if (v := _version_of(e.file.filename)) is not None}
            doc: dict[str, Any] = {
                "meta": {"api-version": "1.4" if status else API_VERSION, "_last-serial": serial},
                "name": key,
                "versions": listed if listed is not None else sorted(versions, key=Version),
                "files": [_json_file(e, files_url) for e in entries],
            }
            if status is not None:
                doc["project-status"] = {"status": status[0]}
                if status[1]:
                    doc["project-status"]["reason"] = status[1]
            body = json.dumps(doc, indent=1).encode()
        else:
            links = "".join(f"    {_html_anchor(e, files_url)}<br />\n" for e in entries)
            body = _html_document(
                f"Links for {key}", f"    <h1>Links for {key}</h1>\n{links}", serial, status
            )
        return self._page_response(request, content_type, body, serial, modified)

    def _page_response(
        self, request: web.Request, content_type: str, body: bytes, serial: int, modified: float
    ) -> web.StreamResponse:
        # Strong and per variant: the media type is hashed along with the body.
        etag = '"' + hashlib.sha256(content_type.encode() + b"\0" + body).hexdigest()[:32] + '"'
        headers = {
            "ETag": etag,
            "Last-Modified": formatdate(modified, usegmt=True),
            "Cache-Control": self.page_cache_control,
            "Vary": "Accept",
            "X-PyPI-Last-Serial": str(serial),
        }
        # Only If-None-Match is honoured: Last-Modified has one-second resolution, so answering
        # If-Modified-Since could hide a change made in the same second.
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match is not None and _etag_matches(if_none_match, etag):
            return web.Response(status=304, headers=headers)
        charset = "utf-8" if content_type != JSON_TYPE else None
        return web.Response(body=body, content_type=content_type, charset=charset, headers=headers)

    # ----------------------------------------------------------------------------- files port

    def _files_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware("files")])
        app.router.add_get("/packages/{a}/{b}/{filename}", self._handle_file)
        return app

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["filename"]
        data = self._file_bytes(request, name)
        with self._lock:
            faults = self._faults
            corrupt = self._take_corruption(request, name)
            throttle = faults.throttle.get(name)
            truncate = faults.truncate.get(name)
            stall = faults.stall.get(name)
            pause = faults.pause.get(name)
        # Taken together with the fault snapshot: a reset_faults() that cleared this stall
        # releases exactly this event, even if it runs before we start waiting.
        release = self._stall_release
        if corrupt and data:
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]

        headers = {"Content-Type": "application/octet-stream", "Cache-Control": FILE_CACHE_CONTROL}
        if request.method == "HEAD":
            # aiohttp sends the Content-Length of the body but not the body itself on HEAD.
            ranges = {"Accept-Ranges": "bytes"} if self.serves_ranges else {}
            return web.Response(body=data, headers={**headers, **ranges})
        wanted = request.headers.get("Range")
        if wanted is not None and self.serves_ranges:
            await self._wait_if_held("ranges")
            return _range_response(wanted, data, headers)
        if truncate is False:
            return await _send_close_delimited(request, headers, data[: len(data) // 2], throttle)

        response = web.StreamResponse(headers=headers)
        response.content_length = len(data)
        await response.prepare(request)
        limit = len(data) // 2 if truncate else len(data)
        if stall is not None:
            limit = min(limit, stall)
        try:
            if pause is not None and release is not None:
                await _write_body(response, data[:pause], throttle)
                await release.wait()
                data = data[pause:]
                limit -= pause
            await _write_body(response, data[:limit], throttle)
            if stall is not None and release is not None:
                await release.wait()
        except ConnectionError:
            return response  # the client left; aiohttp will notice the dead transport itself
        if limit < len(data):
            # Close after the short body: the client sees EOF before Content-Length is reached.
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write_eof()
        return response

    def _take_corruption(self, request: web.Request, name: str) -> bool:
        """Whether this answer is corrupt; counts down a limited corruption (lock held)."""
        if name not in self._faults.corrupt:
            return False
        left = self._faults.corrupt[name]
        if left is not None and request.method == "GET" and "Range" not in request.headers:
            if left <= 1:
                del self._faults.corrupt[name]
            else:
                self._faults.corrupt[name] = left - 1
        return True

    def _file_bytes(self, request: web.Request, name: str) -> bytes:
        """Return the bytes behind a files-port URL, or raise 404."""
        base = name.removesuffix(".metadata")
        with self._lock:
            entry = self._files.get(base)
        if entry is None:
            raise web.HTTPNotFound()
        sha = entry.file.sha256
        if (request.match_info["a"], request.match_info["b"]) != (sha[:2], sha[2:4]):
            raise web.HTTPNotFound()
        if name == base:
            return entry.file.data
        if entry.has_metadata and entry.file.metadata is not None:
            return entry.file.metadata
        raise web.HTTPNotFound()


def _range_response(wanted: str, data: bytes, headers: Mapping[str, str]) -> web.Response:
    """A 206 for one range of the forms a-b, a- and -n (RFC 9110 14.1.2), else 416."""
    unit, _, spec = wanted.partition("=")
    first, dash, last = spec.strip().partition("-")
    total = len(data)
    try:
        if unit.strip() != "bytes" or not dash or "," in spec:
            raise ValueError(wanted)
        if first:
            start = int(first)
            end = min(int(last), total - 1) if last else total - 1
        else:
            start, end = max(0, total - int(last)), total - 1
    except ValueError:
        start, end = total, -1
    if start > end or start >= total:
        return web.Response(status=416, headers={"Content-Range": f"bytes */{total}"})
    return web.Response(
        status=206,
        body=data[start : end + 1],
        headers={**headers, "Content-Range": f"bytes {start}-{end}/{total}"},
    )


def _status_response(status: int) -> web.Response:
    if status < 200 or status in (204, 304):
        return web.Response(status=status)
    return web.Response(status=status, text=f"fake index: injected status {status}\n")


def _html_document(
    title: str, body: str, serial: int, status: tuple[str, str | None] | None = None
) -> bytes:
    meta = (
        f'    <meta name="pypi:repository-version" content="{"1.4" if status else API_VERSION}">\n'
    )
    if status is not None:
        meta += f'    <meta name="pypi:project-status" content="{html.escape(status[0])}">\n'
        if status[1]:
            reason = html.escape(status[1])
            meta += f'    <meta name="pypi:project-status-reason" content="{reason}">\n'
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f"{meta}"
        f"    <title>{html.escape(title)}</title>\n"
        "  </head>\n  <body>\n"
        f"{body}"
        "  </body>\n</html>\n"
        f"<!--SERIAL {serial}-->\n"
    ).encode()


def _json_file(entry: _Entry, files_url: str) -> dict[str, Any]:
    built = entry.file
    metadata: bool | dict[str, str] = False
    if entry.has_metadata and built.metadata_sha256 is not None:
        metadata = {"sha256": built.metadata_sha256}
    doc: dict[str, Any] = {
        "filename": built.filename,
        "url": files_url + entry.path,
        "hashes": {"sha256": built.sha256} if entry.hash_in_page else {},
        "requires-python": built.requires_python,
    }
    if entry.size_in_page:
        doc["size"] = len(built.data)
    if entry.upload_time is not None:
        doc["upload-time"] = entry.upload_time
    # JSON cannot carry an empty reason, so an empty reason string becomes plain True.
    doc["yanked"] = entry.yanked if entry.yanked != "" else True
    doc["core-metadata"] = metadata
    if entry.provenance is not None:
        doc["provenance"] = entry.provenance
    # The public index still emits this historical key (never "dist-info-metadata", PEP 714).
    doc["data-dist-info-metadata"] = metadata
    return doc


def _html_anchor(entry: _Entry, files_url: str) -> str:
    built = entry.file
    href = files_url + entry.path
    if entry.hash_in_page:
        href += f"#sha256={built.sha256}"
    attrs = [f'href="{html.escape(href)}"']
    if built.requires_python is not None:
        attrs.append(f'data-requires-python="{html.escape(built.requires_python)}"')
    if entry.yanked is not False:
        reason = entry.yanked if isinstance(entry.yanked, str) else ""
        attrs.append(f'data-yanked="{html.escape(reason)}"' if reason else "data-yanked")
    if entry.has_metadata and built.metadata_sha256 is not None:
        value = f"sha256={built.metadata_sha256}"
        attrs.append(f'data-core-metadata="{value}"')
        attrs.append(f'data-dist-info-metadata="{value}"')
    if entry.provenance is not None:
        attrs.append(f'data-provenance="{html.escape(entry.provenance)}"')
    return f"<a {' '.join(attrs)}>{html.escape(built.filename)}</a>"


async def _write_body(
    response: web.StreamResponse, data: bytes, throttle: tuple[int, int] | None
) -> None:
    if throttle is None:
        if data:
            await response.write(data)
        return
    rate, chunk = throttle
    for start in range(0, len(data), chunk):
        piece = data[start : start + chunk]
        await response.write(piece)
        await asyncio.sleep(len(piece) / rate)


async def _send_close_delimited(
    request: web.Request,
    headers: Mapping[str, str],
    data: bytes,
    throttle: tuple[int, int] | None,
) -> web.StreamResponse:
    """Write a raw HTTP/1.1 response with no length and no chunking, then close.

    aiohttp always chunks a length-less HTTP/1.1 body, so the response is written straight to the
    transport. The response returned afterwards cannot be sent on the closed transport; aiohttp
    treats that as a client disconnect and drops it quietly.
    """
    transport = request.transport
    if transport is None:
        return web.Response()
    head = "HTTP/1.1 200 OK\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    head += "Connection: close\r\n\r\n"
    transport.write(head.encode("latin-1"))
    if throttle is None:
        transport.write(data)
    else:
        rate, chunk = throttle
        for start in range(0, len(data), chunk):
            piece = data[start : start + chunk]
            if transport.is_closing():
                break
            transport.write(piece)
            await asyncio.sleep(len(piece) / rate)
    transport.close()
    return web.Response()
