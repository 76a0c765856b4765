"""The root list (/simple/): every project upstream has, 800k names in tens of MB, so it is
never held whole. A scanner takes the page's bytes chunk by chunk and returns the names each
chunk completes; the renderers turn one batch of names into bytes. Memory stays at one chunk
and its names, whatever the length of the list.

Upstream's page is untrusted: a bad entry is skipped, and a page that never finishes an
entry fails once its unfinished rest passes MAX_TAIL, instead of growing it (threat 20).
"""

import codecs
import json
import re
from collections.abc import Iterable
from html import escape
from typing import Protocol

from packaging.utils import NormalizedName

from bodega.core.names import normalize_project_name
from bodega.core.parsing import HTML, HTML_V1, JSON_V1, PageFormatError
from bodega.errors import BodegaError

# A name is at most 200 characters: an entry still unfinished after 64 KiB is a page that
# never closes it, not a long name.
MAX_TAIL = 64 * 1024

Entry = tuple[NormalizedName, str]  # (PEP 503 key, upstream's spelling)


class ProjectListScanner(Protocol):
    def feed(self, chunk: bytes) -> list[Entry]:
        """The valid names this chunk completes, in page order; duplicates are kept."""

    def close(self) -> list[Entry]:
        """The end of the page: the names still pending; PageFormatError if it was no list."""


def project_list_scanner(media_type: str) -> ProjectListScanner:
    """A scanner for a root page served with `media_type`."""
    if media_type == JSON_V1:
        return _JsonScanner()
    if media_type in (HTML_V1, HTML):
        return _HtmlScanner()
    raise PageFormatError(f"upstream answered with an unsupported content type {media_type!r}")


def parse_project_list(body: bytes, media_type: str) -> list[str]:
    """The project names of a whole root page, in upstream's spelling."""
    scanner = project_list_scanner(media_type)
    entries = scanner.feed(body) + scanner.close()
    return [name for _, name in entries]


def _entry(raw: str) -> Entry | None:
    try:
        return normalize_project_name(raw), raw
    except BodegaError:
        return None


# --- HTML (PEP 503) ---------------------------------------------------------------------

# The root page is tens of MB of one anchor per project: a regex is an order of magnitude
# faster than an HTML parser here, and the names are validated anyway.
#
# The tag's inside stops at "<a" as well as at ">": with `[^>]*` every "<a" of a hostile
# `<a <a <a ...` rescanned to the end, quadratic (a MB took minutes). An "<a" inside a tag
# would meet the same ">" and text, so starting from it finds the same name; this way each
# character is scanned from one start only. Possessive: a failed start never backtracks.
_TAG_INSIDE = r"[^<>]*+(?:<(?!a\b)[^<>]*+)*+"
_ROOT_ANCHOR = re.compile(rf"<a\b{_TAG_INSIDE}>([^<]*+)</a>", re.IGNORECASE)
# A prefix of a _ROOT_ANCHOR match that runs to the end: what more text may still complete.
_UNFINISHED_ANCHOR = re.compile(
    rf"<(?:a(?:(?=\W){_TAG_INSIDE}(?:>[^<]*+(?:<(?:/a?)?)?)?)?)?\Z", re.IGNORECASE
)


class _HtmlScanner:
    def __init__(self) -> None:
        # Decoded incrementally: a character split between chunks is never replaced.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._tail = ""

    def feed(self, chunk: bytes) -> list[Entry]:
        return self._scan(self._decoder.decode(chunk))

    def close(self) -> list[Entry]:
        entries = self._scan(self._decoder.decode(b"", final=True))
        self._tail = ""  # an anchor the page never finished is not a name
        return entries

    def _scan(self, text: str) -> list[Entry]:
        buffer = self._tail + text
        entries, end = [], 0
        for match in _ROOT_ANCHOR.finditer(buffer):
            entry = _entry(match.group(1).strip())
            if entry is not None:
                entries.append(entry)
            end = match.end()
        self._tail = buffer[_unfinished_anchor(buffer, end) :]
        if len(self._tail) > MAX_TAIL:
            raise PageFormatError(f"upstream root list has an anchor over {MAX_TAIL} bytes")
        return entries


def _unfinished_anchor(buffer: str, end: int) -> int:
    """Where the first anchor that more text may complete starts; len(buffer) when none.

    After the last complete match every earlier start has failed for good, so only a
    prefix that reaches the end of the buffer can still become a match.
    """
    found = _UNFINISHED_ANCHOR.search(buffer, end)
    return len(buffer) if found is None else found.start()


# --- JSON (PEP 691) ---------------------------------------------------------------------

# The "name" members of the entries, found in the bytes: a JSON parser would build all 800k
# objects first. A string literal is the unrolled [^"\\] | \\. loop, linear on any input.
_NAME_MEMBER = re.compile(rb'"name"\s*:\s*"([^"\\]*(?:\\.[^"\\]*)*)"', re.DOTALL)
# A prefix of a _NAME_MEMBER match that runs to the end, as _UNFINISHED_ANCHOR.
_UNFINISHED_MEMBER = re.compile(
    rb'"(?:n(?:a(?:m(?:e(?:"\s*(?::\s*(?:"[^"\\]*(?:\\.[^"\\]*)*\\?)?)?)?)?)?)?)?\Z', re.DOTALL
)
_PROJECTS_KEY = b'"projects"'


class _JsonScanner:
    def __init__(self) -> None:
        self._tail = b""
        self._has_started = False
        self._has_projects = False
        self._last_bytes = b""  # the end of the page so far: a key may span two chunks

    def feed(self, chunk: bytes) -> list[Entry]:
        if not self._has_started:
            chunk = self._check_start(chunk)
        if not self._has_projects:
            window = self._last_bytes + chunk[: len(_PROJECTS_KEY)]
            self._has_projects = _PROJECTS_KEY in window or _PROJECTS_KEY in chunk
            self._last_bytes = (self._last_bytes + chunk)[-len(_PROJECTS_KEY) :]
        buffer = self._tail + chunk
        entries, end = [], 0
        for match in _NAME_MEMBER.finditer(buffer):
            name = _json_string(match.group(1))
            entry = None if name is None else _entry(name)
            if entry is not None:
                entries.append(entry)
            end = match.end()
        self._tail = buffer[_unfinished_member(buffer, end) :]
        if len(self._tail) > MAX_TAIL:
            raise PageFormatError(f"upstream root list has a name entry over {MAX_TAIL} bytes")
        return entries

    def close(self) -> list[Entry]:
        self._tail = b""
        if not self._has_projects:
            raise PageFormatError("upstream root list has no 'projects' list")
        return []

    def _check_start(self, chunk: bytes) -> bytes:
        start = chunk.lstrip()
        if start.startswith(codecs.BOM_UTF8):
            start = start[len(codecs.BOM_UTF8) :].lstrip()
        if not start:
            return b""  # only whitespace so far
        if not start.startswith(b"{"):
            raise PageFormatError("upstream root list is not a JSON object")
        self._has_started = True
        return start


def _unfinished_member(buffer: bytes, end: int) -> int:
    """As _unfinished_anchor, for a "name" member."""
    found = _UNFINISHED_MEMBER.search(buffer, end)
    return len(buffer) if found is None else found.start()


def _json_string(literal: bytes) -> str | None:
    """The value of a JSON string literal's content; None when it is not valid."""
    if b"\\" not in literal:
        try:
            return literal.decode()
        except UnicodeDecodeError:
            return None
    try:
        value = json.loads(b'"' + literal + b'"')
    except ValueError:
        return None
    return value if isinstance(value, str) else None


# --- rendering --------------------------------------------------------------------------

ROOT_HTML_START = (
    b"<!DOCTYPE html>\n<html>\n  <head>\n"
    b'    <meta name="pypi:repository-version" content="1.0">\n'
    b"    <title>Simple index</title>\n  </head>\n  <body>\n"
)
ROOT_HTML_END = b"  </body>\n</html>\n"
ROOT_JSON_START = b'{"meta":{"api-version":"1.0"},"projects":['
ROOT_JSON_END = b"]}"


def root_html_anchors(entries: Iterable[Entry]) -> bytes:
    """The anchors of a batch of names, for between ROOT_HTML_START and ROOT_HTML_END."""
    # The key is the link, relative to /simple/ (PEP 503); escaped although a normalized
    # name has only [a-z0-9-], so no caller's string can leave the attribute.
    return "".join(
        f'    <a href="{escape(key)}/">{escape(name)}</a>\n' for key, name in entries
    ).encode()


def root_json_entries(entries: Iterable[Entry], *, is_first: bool) -> bytes:
    """The "projects" entries of a batch, for between ROOT_JSON_START and ROOT_JSON_END;
    every batch but the first starts with the comma that separates it from the last."""
    # One dumps per batch: the C encoder, not one Python call per name.
    items = json.dumps([{"name": name} for _, name in entries], separators=(",", ":"))[1:-1]
    if not items:
        return b""
    return (items if is_first else "," + items).encode()
