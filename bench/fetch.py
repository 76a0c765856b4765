"""Plain HTTP GETs to 127.0.0.1 that ignore any proxy settings and time themselves."""

import gzip
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

# What pip sends: JSON preferred (PEP 691), HTML accepted, gzip welcome.
PIP_HEADERS = {
    "Accept": (
        "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
        "text/html; q=0.01"
    ),
    "Accept-Encoding": "gzip",
    "User-Agent": "bodega-bench",
}
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    seconds: float
    url: str  # after redirects
    content_type: str


def get(url: str, headers: dict[str, str] | None = None, timeout: float = 120) -> Response:
    request = urllib.request.Request(url, headers=headers or PIP_HEADERS)
    started = time.perf_counter()
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            body = answer.read()
            seconds = time.perf_counter() - started
            if answer.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            return Response(
                answer.status,
                body,
                seconds,
                answer.geturl(),
                answer.headers.get("Content-Type", ""),
            )
    except urllib.error.HTTPError as error:
        body = error.read()
        return Response(error.code, body, time.perf_counter() - started, url, "")


def answers(url: str) -> bool:
    """Whether anything speaking HTTP listens there (any status counts)."""
    try:
        get(url, timeout=2)
    except (OSError, urllib.error.URLError):
        return False
    return True


def send(url: str, method: str, body: bytes, headers: dict[str, str]) -> Response:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    started = time.perf_counter()
    with _OPENER.open(request, timeout=30) as answer:
        data = answer.read()
        return Response(answer.status, data, time.perf_counter() - started, url, "")
