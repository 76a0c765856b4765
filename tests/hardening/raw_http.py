"""HTTP/1.1 over a bare socket, for requests no client library would send (threats 1, 5,
8, 13) and for checking that every answer is well-formed."""

import asyncio
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-5][0-9][0-9]) [^\r\n]*")
_HEADER = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([^\r\n]*?)[ \t]*")


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    header_lines: list[tuple[str, str]]
    body: bytes


async def send_raw(base_url: str, request: bytes) -> RawResponse:
    """Send `request` as is, read until the server closes, parse strictly (AssertionError
    for a malformed answer)."""
    parts = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(15):
            raw = await reader.read(-1)
    finally:
        writer.close()
        await writer.wait_closed()
    return parse_response(raw)


def get(path: bytes, *headers: bytes, host: bytes = b"127.0.0.1") -> bytes:
    lines = [b"GET " + path + b" HTTP/1.1", b"Host: " + host, b"Connection: close", *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def parse_response(raw: bytes, *, is_head: bool = False) -> RawResponse:
    head, separator, body = raw.partition(b"\r\n\r\n")
    assert separator, f"no end of headers in {raw[:200]!r}"
    status_line, *lines = head.split(b"\r\n")
    status = _STATUS_LINE.fullmatch(status_line)
    assert status, f"bad status line {status_line!r}"
    header_lines = []
    for line in lines:
        found = _HEADER.fullmatch(line)
        assert found, f"bad header line {line!r}"
        header_lines.append((found.group(1).decode().lower(), found.group(2).decode("latin-1")))
    headers = dict(header_lines)
    if is_head:
        assert body == b"", "a body in answer to HEAD"
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    elif "content-length" in headers:
        assert len(body) == int(headers["content-length"]), "body length differs"
    return RawResponse(int(status.group(1)), headers, header_lines, body)


def _dechunk(body: bytes) -> bytes:
    out = b""
    while True:
        size_line, separator, body = body.partition(b"\r\n")
        assert separator, "chunked body cut short"
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return out
        out, body = out + body[:size], body[size:]
        assert body.startswith(b"\r\n"), "chunk not followed by CRLF"
        body = body[2:]


def send_raw_sync(base_url: str, request: bytes, *, is_head: bool = False) -> RawResponse:
    """send_raw for synchronous tests (hypothesis drives those)."""
    parts = urlsplit(base_url)
    assert parts.hostname is not None
    assert parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=15) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return parse_response(b"".join(chunks), is_head=is_head)
