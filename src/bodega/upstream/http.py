"""HttpUpstream: the one place that talks to an upstream index over HTTP; maps the HTTP
client's errors to bodega's errors.

Every request is bounded: connect and read timeouts, decompressed body size, redirect hops,
and a deadline for the whole of a page (PAGE_DEADLINE) or a file download (a setting).
Redirects are followed by hand so that none can lead to another scheme, a downgrade or an
arbitrary host (threat 18). A 429 or 503 with Retry-After (RFC 9110 10.2.3) is honoured:
no request goes to that host before the time passes (UpstreamBusy meanwhile).
"""

import asyncio
import contextlib
import math
import os
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack, aclosing, asynccontextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urljoin, urlsplit

import aiohttp
import yarl
from aiohttp.helpers import basicauth_from_netrc, get_env_proxy_for_url, netrc_from_env

from bodega import __version__
from bodega.core.parsing import HTML, HTML_V1, JSON_V1
from bodega.core.urls import shown_url
from bodega.errors import NotFound, UpstreamBusy, UpstreamError, UpstreamLoop, UpstreamTimeout
from bodega.upstream import UpstreamPage, UpstreamRange

# What bodega asks upstream for: JSON first, since only it carries size and upload-time.
_PAGE_ACCEPT = f"{JSON_V1}, {HTML_V1};q=0.2, {HTML};q=0.01"
MAX_PAGE_BYTES = 64 * 1024 * 1024
MAX_ROOT_BYTES = 512 * 1024 * 1024
MAX_REDIRECTS = 3
# A page that trickles in a byte at a time never trips the read timeout; this bounds it.
PAGE_DEADLINE = 60.0
_CHUNK = 1024 * 1024
# The longest wait an upstream's Retry-After may impose: beyond it, a hostile or broken
# upstream could silence itself for days; bodega asks again after this at the latest.
MAX_RETRY_AFTER = 600.0


@dataclass(slots=True)
class HttpFile:
    """An open download: its declared length and its bytes, which must all have come by
    `deadline` (event loop time; the reader's own work between chunks counts too)."""

    content_length: int | None
    response: aiohttp.ClientResponse
    deadline: float
    overdue: str  # what to say when the deadline passes

    async def chunks(self) -> AsyncIterator[bytes]:
        reading = self.response.content.iter_chunked(_CHUNK)
        while True:
            try:
                async with asyncio.timeout_at(self.deadline) as deadline:
                    chunk = await anext(reading, None)
            except TimeoutError as error:  # first: an OSError, and aiohttp's a ClientError too
                if deadline.expired():
                    raise UpstreamTimeout(self.overdue) from error
                raise UpstreamTimeout("upstream download stalled") from error
            except (aiohttp.ClientError, OSError) as error:
                raise UpstreamError(
                    f"the download of {_shown(self.response.url)} broke off:"
                    f" {describe_failure(error)}"
                ) from error
            if chunk is None:
                return
            yield chunk


@dataclass(slots=True)
class HttpListing:
    """The root list as it streams in: its bytes are bounded in size (decompressed) and in
    time (the page deadline, which the reader's own work between chunks does not extend)."""

    url: str
    media_type: str
    response: aiohttp.ClientResponse
    deadline: float  # event loop time

    async def chunks(self) -> AsyncIterator[bytes]:
        async with aclosing(_bounded_chunks(self.response, MAX_ROOT_BYTES)) as reading:
            while True:
                try:
                    async with asyncio.timeout_at(self.deadline):
                        chunk = await anext(reading, None)
                except TimeoutError:
                    raise UpstreamTimeout(_overdue(self.url)) from None
                except (aiohttp.ClientError, OSError) as error:
                    raise UpstreamError(
                        f"the root list from {_shown(self.url)} broke off:"
                        f" {describe_failure(error)}"
                    ) from error
                if chunk is None:
                    return
                yield chunk


_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


class HttpUpstream:
    """HTTP access to one upstream simple index (the Upstream port of bodega.upstream)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        via: str,
        download_deadline: float = math.inf,
    ) -> None:
        self._session = session
        self._base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._via = via
        self._download_deadline = download_deadline
        self._busy_until: dict[str | None, float] = {}  # host -> event loop time
        self._routes: dict[tuple[str, str], _Route] = {}
        self._without_ranges: set[str] = set()  # origins that answered a range with 200

    @classmethod
    async def open(
        cls,
        base_url: str,
        read_timeout: float,
        instance_id: str,
        *,
        download_deadline: float = math.inf,
    ) -> "HttpUpstream":
        """`read_timeout` bounds connecting, the answer and each read; `download_deadline`
        the whole of a file download (a file may trickle in just under the read timeout)."""
        session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(
                total=None, connect=read_timeout, sock_connect=read_timeout, sock_read=read_timeout
            ),
            connector=aiohttp.TCPConnector(limit=256, limit_per_host=64),
            headers={"User-Agent": f"bodega/{__version__}"},
            auto_decompress=True,
            # Up to 1 MiB buffered per response (aiohttp's default is 64 KiB): a large file
            # from a fast upstream arrives in a few big chunks instead of hundreds of
            # pause/resume cycles of the event loop.
            read_bufsize=_CHUNK,
            # The environment's proxies and ~/.netrc are honoured per host by _route():
            # aiohttp's trust_env reads both in two worker threads on every request.
            trust_env=False,
        )
        upstream = cls(session, base_url, f"1.1 bodega-{instance_id}", download_deadline)
        try:
            # Nearly every request goes to the upstream's own host: its route is read now,
            # so the first client's page does not wait for the environment and ~/.netrc.
            await upstream._route(yarl.URL(upstream.base_url))
        except BaseException:
            await session.close()
            raise
        return upstream

    @property
    def is_offline(self) -> bool:
        return False

    @property
    def description(self) -> str:
        return shown_url(self._base_url)

    @property
    def base_url(self) -> str:
        return self._base_url

    def project_url(self, project: str) -> str:
        # The project is a validated, normalized name; quote() and plain concatenation keep
        # it a path segment under the configured base, where urljoin("//evil/x") would not.
        return f"{self._base_url}{quote(project, safe='')}/"

    async def fetch_project_page(
        self, project: str, etag: str | None = None, last_modified: str | None = None
    ) -> UpstreamPage:
        """The project's page, or a 304 when the validators still match; NotFound on 404."""
        headers = {"Accept": _PAGE_ACCEPT}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        return await self._fetch_page(self.project_url(project), headers, MAX_PAGE_BYTES)

    @asynccontextmanager
    async def open_root(self) -> AsyncIterator[HttpListing]:
        """The root list (/simple/), streamed: tens of MB that are never held whole."""
        url = self._base_url
        deadline = asyncio.get_running_loop().time() + PAGE_DEADLINE
        async with AsyncExitStack() as stack:
            try:
                async with asyncio.timeout_at(deadline):
                    response = await stack.enter_async_context(
                        self._request(url, {"Accept": _PAGE_ACCEPT})
                    )
            except TimeoutError:
                raise UpstreamTimeout(_overdue(url)) from None
            yield HttpListing(str(response.url), response.content_type, response, deadline)

    async def _fetch_page(self, url: str, headers: dict[str, str], limit: int) -> UpstreamPage:
        try:
            async with asyncio.timeout(PAGE_DEADLINE):
                return await self._read_page(url, headers, limit)
        except TimeoutError:
            raise UpstreamTimeout(_overdue(url)) from None

    async def _read_page(self, url: str, headers: dict[str, str], limit: int) -> UpstreamPage:
        async with self._request(url, headers) as response:
            if response.status == 304:
                return UpstreamPage(304, str(response.url))
            body = await _read_bounded(response, limit)
            return UpstreamPage(
                status=200,
                url=str(response.url),
                body=body,
                media_type=response.content_type,
                etag=response.headers.get("ETag"),
                last_modified=response.headers.get("Last-Modified"),
            )

    @asynccontextmanager
    async def open_file(self, url: str) -> AsyncIterator[HttpFile]:
        """A streaming download of a file that an upstream page listed."""
        # identity and no decompression: the stored bytes must hash to the index's value,
        # whatever Content-Encoding upstream claims (threat 23).
        headers = {"Accept-Encoding": "identity"}
        started = asyncio.get_running_loop().time()
        async with self._request(url, headers, auto_decompress=False) as response:
            yield self._download(response, url, started)

    def _download(self, response: aiohttp.ClientResponse, url: str, started: float) -> HttpFile:
        deadline = started + self._download_deadline
        overdue = f"upstream took over {self._download_deadline:g} s to send {_shown(url)}"
        return HttpFile(response.content_length, response, deadline, overdue)

    def serves_ranges(self, url: str) -> bool:
        """False once the URL's host has answered a range request with the whole file."""
        return _origin(url) not in self._without_ranges

    @asynccontextmanager
    async def open_range(
        self, url: str, first: int | None, last: int
    ) -> AsyncIterator["UpstreamRange | HttpFile"]:
        """Bytes `first`..`last` (inclusive) of a listed file, or its last `last` bytes when
        `first` is None (RFC 9110 14.1.2). An upstream that ignores Range answers 200 with
        the whole file: that answer is yielded as a download, open while the block runs, so
        the caller can keep it rather than fetch the file again, and the host is remembered
        as one without ranges."""
        wanted = f"bytes={first}-{last}" if first is not None else f"bytes=-{last}"
        headers = {"Accept-Encoding": "identity", "Range": wanted}
        started = asyncio.get_running_loop().time()
        async with self._request(url, headers, auto_decompress=False) as response:
            if response.status == 206:
                yield await _read_range(response, url, first, last)
            elif response.status == 200:
                self._without_ranges.add(_origin(url))
                yield self._download(response, url, started)
            else:
                raise UpstreamError(f"upstream answered {response.status} to a range: {url}")

    async def fetch_range(self, url: str, first: int | None, last: int) -> UpstreamRange:
        """As open_range, for a host known to serve ranges: a whole file instead is an
        UpstreamError (the host is remembered all the same)."""
        async with self.open_range(url, first, last) as found:
            if isinstance(found, HttpFile):
                raise UpstreamError(f"upstream ignored a range request: {url}")
            return found

    @asynccontextmanager
    async def _request(
        self, url: str, headers: dict[str, str], *, auto_decompress: bool = True
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        headers = {**headers, "Via": self._via}
        allowed_hosts = {urlsplit(url).hostname, urlsplit(self._base_url).hostname}
        try:
            for _ in range(MAX_REDIRECTS + 1):
                self._check_not_busy(url)
                target = yarl.URL(url)  # parsed once, for the route and the request both
                route = await self._route(target)
                response = await self._session.get(
                    target,
                    headers=headers,
                    allow_redirects=False,
                    auto_decompress=auto_decompress,
                    auth=route.auth,
                    proxy=route.proxy,
                    proxy_auth=route.proxy_auth,
                )
                if response.status not in (301, 302, 303, 307, 308):
                    break
                location = response.headers.get("Location", "")
                response.release()
                url = _redirect_target(url, location, allowed_hosts)
            else:
                raise UpstreamError(f"upstream redirected more than {MAX_REDIRECTS} times")
            try:
                self._note_busy(url, response)
                _check_status(response)
                yield response
            finally:
                response.release()
        except TimeoutError as error:
            raise UpstreamTimeout(f"upstream did not answer in time: {url}") from error
        except aiohttp.ClientError as error:
            raise UpstreamError(
                f"upstream request for {_shown(url)} failed: {describe_failure(error)}"
            ) from error

    def _check_not_busy(self, url: str) -> None:
        host = urlsplit(url).hostname
        left = self._busy_until.get(host, 0.0) - asyncio.get_running_loop().time()
        if left > 0:
            raise UpstreamBusy(f"upstream {host} asked to wait {left:.0f} s more", left)

    def _note_busy(self, url: str, response: aiohttp.ClientResponse) -> None:
        if response.status not in (429, 503):
            return
        wait = _retry_after(response.headers.get("Retry-After"))
        if wait is None:
            return  # no usable Retry-After: a failure like any other
        host = urlsplit(url).hostname
        self._busy_until[host] = asyncio.get_running_loop().time() + wait
        raise UpstreamBusy(
            f"upstream answered {response.status} for {_shown(response.url)},"
            f" retry after {wait:.0f} s",
            wait,
        )

    async def probe(self, within: float) -> None:
        """Raises UpstreamError unless upstream answers a HEAD of its index root (any status
        below 500 shows it is there) within `within` seconds."""
        self._check_not_busy(self._base_url)
        try:
            async with asyncio.timeout(within):
                base = yarl.URL(self._base_url)
                route = await self._route(base)
                response = await self._session.head(
                    base,
                    headers={"Via": self._via},
                    allow_redirects=False,
                    auth=route.auth,
                    proxy=route.proxy,
                    proxy_auth=route.proxy_auth,
                )
                response.release()
        except TimeoutError:
            raise UpstreamTimeout(f"upstream did not answer within {within:g} s") from None
        except aiohttp.ClientError as error:
            raise UpstreamError(
                f"upstream {_shown(self._base_url)} is unreachable: {describe_failure(error)}"
            ) from None
        if response.status >= 500:
            raise UpstreamError(f"upstream answered {response.status}")

    async def _route(self, url: yarl.URL) -> "_Route":
        """How to reach the URL's host: read from the environment once per host."""
        key = (url.scheme, url.host or "")
        route = self._routes.get(key)
        if route is None:
            route = await asyncio.to_thread(_route_from_environment, url)
            self._routes[key] = route
        return route

    async def close(self) -> None:
        await self._session.close()
        await asyncio.sleep(0)  # let the connector's transports finish closing


@dataclass(frozen=True, slots=True)
class _Route:
    proxy: yarl.URL | None
    proxy_auth: aiohttp.BasicAuth | None
    auth: aiohttp.BasicAuth | None  # from ~/.netrc (or $NETRC), as pip and aiohttp read it


def _route_from_environment(url: yarl.URL) -> _Route:
    # The same rules aiohttp applies with trust_env: *_PROXY / NO_PROXY, then netrc.
    try:
        proxy, proxy_auth = get_env_proxy_for_url(url)
    except LookupError:
        proxy, proxy_auth = None, None
    auth = None
    netrc = netrc_from_env()
    if netrc is not None and url.host is not None and url.user is None:
        with contextlib.suppress(LookupError):
            auth = basicauth_from_netrc(netrc, url.host)
    return _Route(proxy, proxy_auth, auth)


def _redirect_target(current: str, location: str, allowed_hosts: set[str | None]) -> str:
    target = urljoin(current, location)
    old, new = urlsplit(current), urlsplit(target)
    downgrade = old.scheme == "https" and new.scheme != "https"
    if (
        new.scheme not in ("http", "https")
        or downgrade
        or new.username is not None
        or new.hostname not in allowed_hosts
    ):
        raise UpstreamError(f"upstream redirected to a location bodega does not follow: {target}")
    return target


async def _read_range(
    response: aiohttp.ClientResponse, url: str, first: int | None, last: int
) -> UpstreamRange:
    """The body of a 206, which must be exactly what Content-Range announces."""
    found = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
    if found is None:
        raise UpstreamError(f"upstream sent a 206 without a usable Content-Range: {url}")
    start, end, total = (int(g) for g in found.groups())
    length = end - start + 1
    if first is None:
        expected = length <= last and end == total - 1
    else:
        expected = start == first and end <= last
    if end >= total or not expected:
        raise UpstreamError(f"upstream sent another range than asked for: {url}")
    body = await _read_bounded(response, length)
    if len(body) != length:
        raise UpstreamError(f"upstream range body cut short: {url}")
    return UpstreamRange(body, start, total)


def _origin(url: str) -> str:
    return str(yarl.URL(url).origin())


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After value (delay-seconds or an HTTP-date), capped."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER) or None


def _check_status(response: aiohttp.ClientResponse) -> None:
    if response.status in (200, 206, 304):
        return
    if response.status in (404, 410):
        raise NotFound(f"upstream has no {response.url.path}")
    if response.status == 508:
        raise UpstreamLoop("the upstream is this bodega itself (request loop)")
    raise UpstreamError(f"upstream answered {response.status} for {response.url}")


def describe_failure(error: BaseException) -> str:
    """What failed, in words: these reach /-/ready, 502 pages and logs, where a Python repr
    (`ClientConnectorError(ConnectionKey(...))`) tells a reader nothing."""
    if isinstance(error, aiohttp.ClientConnectorError):
        return _connect_failure(error)
    for kind, words in _FAILURES:
        if isinstance(error, kind):
            return words
    if isinstance(error, OSError):
        return _os_reason(error)
    return str(error) or type(error).__name__


_FAILURES: tuple[tuple[type[BaseException], str], ...] = (
    (aiohttp.ServerDisconnectedError, "the server closed the connection before it answered"),
    (aiohttp.ClientPayloadError, "the body was cut short or malformed"),
)


def _connect_failure(error: aiohttp.ClientConnectorError) -> str:
    where = f"{error.host}:{error.port}"
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        return f"the TLS certificate of {where} is not trusted"
    if isinstance(error, aiohttp.ClientSSLError):
        return f"the TLS handshake with {where} failed"
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return f"cannot resolve the host name {error.host}"
    return f"cannot connect to {where} ({_os_reason(error.os_error)})"


def _os_reason(error: OSError) -> str:
    # asyncio's strerror is "Connect call failed (...)"; the errno's own words say why.
    if error.errno is not None and error.errno > 0:
        return os.strerror(error.errno)
    return error.strerror or str(error) or type(error).__name__


def _shown(url: str | yarl.URL) -> str:
    """A URL for messages, without credentials (threat: secrets never reach error bodies)."""
    return str(yarl.URL(str(url)).with_user(None))


def _overdue(url: str) -> str:
    return f"upstream took over {PAGE_DEADLINE:.0f} s for {url}"


async def _read_bounded(response: aiohttp.ClientResponse, limit: int) -> bytes:
    return b"".join([chunk async for chunk in _bounded_chunks(response, limit)])


async def _bounded_chunks(
    response: aiohttp.ClientResponse, limit: int
) -> AsyncGenerator[bytes, None]:
    # Count decompressed bytes: a small gzip body can expand enormously (threat 20).
    total = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        total += len(chunk)
        if total > limit:
            raise UpstreamError(f"upstream page larger than {limit} bytes")
        yield chunk
