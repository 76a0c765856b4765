"""Parsing upstream simple-API pages (PEP 503 HTML and PEP 691 JSON) into the index model.

Upstream pages are untrusted input: every file entry is checked on its own and a bad one
is skipped, never the whole page (threat 21). Sizes are bounded by the caller. The root list
(/simple/) has a streaming parser of its own, in root_list.py.
"""

import functools
import json
import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

from packaging.utils import NormalizedName

from bodega.core.model import DistributionFile, ProjectPage, ProjectStatus
from bodega.core.names import validate_filename
from bodega.errors import BodegaError, UpstreamError

JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
HTML = "text/html"

# A bound on what one page may list; the largest real projects list tens of thousands. A page
# over it is refused whole (threat 20): cutting it short would hide the newest releases.
MAX_FILES_PER_PAGE = 200_000
_HEX = re.compile(r"[0-9a-f]+")
_HASH_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128, "md5": 32, "blake2b_256": 64}


class PageFormatError(UpstreamError):
    """An upstream page bodega cannot read at all."""


def parse_project_page(
    body: bytes, media_type: str, page_url: str, name: NormalizedName
) -> ProjectPage:
    """The project page in `body`, served by upstream at `page_url` with `media_type`."""
    if media_type == JSON_V1:
        return _parse_json_page(body, page_url, name)
    if media_type in (HTML_V1, HTML):
        return _parse_html_page(body, page_url, name)
    raise PageFormatError(f"upstream answered with an unsupported content type {media_type!r}")


# --- JSON (PEP 691) ---------------------------------------------------------------------


def _load_json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError as error:
        raise PageFormatError(f"upstream sent invalid JSON: {error}") from None
    except RecursionError:
        # json.loads recurses per nesting level: "[" * 100_000 is a few bytes (threat 20).
        raise PageFormatError("upstream sent JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise PageFormatError("upstream JSON page is not an object")
    return data


def _parse_json_page(body: bytes, page_url: str, name: NormalizedName) -> ProjectPage:
    data = _load_json(body)
    entries = data.get("files")
    if not isinstance(entries, list):
        raise PageFormatError("upstream JSON page has no 'files' list")
    if len(entries) > MAX_FILES_PER_PAGE:
        raise PageFormatError(f"upstream page lists more than {MAX_FILES_PER_PAGE} files")
    files = [_json_file(entry, page_url) for entry in entries]
    versions = data.get("versions")
    meta = data.get("meta")
    serial = meta.get("_last-serial") if isinstance(meta, dict) else None
    return ProjectPage(
        name=name,
        files=_unique(f for f in files if f is not None),
        versions=tuple(v for v in versions if isinstance(v, str))
        if isinstance(versions, list)
        else (),
        status=_json_status(data.get("project-status")),
        last_serial=_serial(serial),
    )


def _json_file(entry: object, page_url: str) -> DistributionFile | None:
    if not isinstance(entry, dict):
        return None
    raw_filename, raw_url = entry.get("filename"), entry.get("url")
    if not isinstance(raw_filename, str) or not isinstance(raw_url, str):
        return None
    url = _file_url(page_url, raw_url)
    filename = _valid_filename(raw_filename)
    if url is None or filename is None or _url_basename(url) != filename:
        return None
    raw_hashes = entry.get("hashes")
    hashes = _clean_hashes(raw_hashes) if isinstance(raw_hashes, dict) else {}
    # PEP 714: "core-metadata" is the key; upstreams may still send only the old one.
    metadata = entry.get("core-metadata", entry.get("dist-info-metadata", False))
    size = entry.get("size")
    return DistributionFile(
        filename=filename,
        url=url,
        hashes=hashes,
        requires_python=_optional_str(entry.get("requires-python")),
        yanked=_json_yanked(entry.get("yanked", False)),
        core_metadata=_json_core_metadata(metadata),
        size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        upload_time=_optional_str(entry.get("upload-time")),
        provenance=_secure_url(entry.get("provenance")),
        gpg_sig=entry.get("gpg-sig") if isinstance(entry.get("gpg-sig"), bool) else None,
    )


def _json_yanked(value: object) -> bool | str:
    if isinstance(value, str):
        return value or True
    return value is True


def _json_core_metadata(value: object) -> bool | dict[str, str]:
    if isinstance(value, dict):
        return _clean_hashes(value)
    return value is True


def _json_status(value: object) -> ProjectStatus | None:
    if not isinstance(value, dict) or not isinstance(value.get("status"), str):
        return None
    return ProjectStatus(value["status"], _optional_str(value.get("reason")))


# --- HTML (PEP 503) ---------------------------------------------------------------------


class _AnchorCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[dict[str, str | None]] = []
        self.meta: dict[str, str] = {}
        self.base: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            if len(self.anchors) == MAX_FILES_PER_PAGE:
                # Raised from inside feed(), so the rest of a hostile page is never parsed.
                raise PageFormatError(f"upstream page lists more than {MAX_FILES_PER_PAGE} files")
            self.anchors.append(dict(attrs))
        elif tag == "meta":
            found = dict(attrs)
            if found.get("name") and found.get("content") is not None:
                self.meta[str(found["name"])] = str(found["content"])
        elif tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")


def _parse_html_page(body: bytes, page_url: str, name: NormalizedName) -> ProjectPage:
    collector = _AnchorCollector()
    collector.feed(body.decode("utf-8", errors="replace"))
    collector.close()
    base = urljoin(page_url, collector.base) if collector.base else page_url
    files = (_html_file(anchor, base) for anchor in collector.anchors)
    status = collector.meta.get("pypi:project-status")
    serial_match = re.search(rb"<!--SERIAL (\d+)-->", body[-200:])
    return ProjectPage(
        name=name,
        files=_unique(f for f in files if f is not None),
        status=None
        if status is None
        else ProjectStatus(status, collector.meta.get("pypi:project-status-reason")),
        last_serial=int(serial_match.group(1)) if serial_match else None,
    )


def _html_file(anchor: dict[str, str | None], base: str) -> DistributionFile | None:
    href = anchor.get("href")
    if not href:
        return None
    raw_url, fragment = urldefrag(href)
    url = _file_url(base, raw_url)
    filename = _valid_filename(_url_basename(url)) if url else None
    if url is None or filename is None:
        return None
    hashes = {}
    if "=" in fragment:
        algorithm, _, value = fragment.partition("=")
        hashes = _clean_hashes({algorithm: value})
    return DistributionFile(
        filename=filename,
        url=url,
        hashes=hashes,
        requires_python=anchor.get("data-requires-python") or None,
        yanked=_html_yanked(anchor),
        core_metadata=_html_core_metadata(anchor),
        provenance=_secure_url(anchor.get("data-provenance")),
        gpg_sig={"true": True, "false": False}.get(anchor.get("data-gpg-sig") or ""),
    )


def _html_yanked(anchor: dict[str, str | None]) -> bool | str:
    if "data-yanked" not in anchor:
        return False
    return anchor["data-yanked"] or True


def _html_core_metadata(anchor: dict[str, str | None]) -> bool | dict[str, str]:
    # PEP 714: prefer data-core-metadata, fall back to the older data-dist-info-metadata.
    value = anchor.get("data-core-metadata", anchor.get("data-dist-info-metadata"))
    if value is None:
        return False
    if value == "true":
        return True
    algorithm, _, digest = value.partition("=")
    hashes = _clean_hashes({algorithm: digest})
    return hashes or True


# --- shared -----------------------------------------------------------------------------


def _unique(files: Any) -> tuple[DistributionFile, ...]:
    """Files in page order; a filename listed twice with different hashes is dropped."""
    seen: dict[str, DistributionFile | None] = {}
    for file in files:
        previous = seen.get(file.filename, file)
        seen[file.filename] = file if previous == file or previous is file else None
    return tuple(f for f in seen.values() if f is not None)


def _clean_hashes(raw: dict[Any, Any]) -> dict[str, str]:
    hashes = {}
    for algorithm, value in raw.items():
        if not isinstance(algorithm, str) or not isinstance(value, str):
            continue
        digest = value.lower()
        expected_length = _HASH_LENGTHS.get(algorithm)
        if expected_length == len(digest) and _HEX.fullmatch(digest):
            hashes[algorithm] = digest
    return hashes


def _file_url(base: str, raw: str) -> str | None:
    """An absolute http(s) URL for a file link, or None for anything else (threat 19)."""
    url = _joined(base, raw.strip())
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if "@" in parts.netloc:  # credentials in a link: never followed
        return None
    return url


def _joined(base: str, raw: str) -> str:
    """urljoin(base, raw), without urljoin's cost on every link of a large page (two thirds
    of parsing one): a plain absolute link is its own URL, and a plain relative one is its
    directory, joined once per page, and its name."""
    if _UNPLAIN.search(raw):
        return urljoin(base, raw)
    if raw.startswith(("https://", "http://")):
        # Without a host ("https:///f") urljoin takes it as a path on the page's host.
        return raw if urlsplit(raw).netloc else urljoin(base, raw)
    directory, slash, name = raw.rpartition("/")
    if not slash or name in ("", ".", ".."):
        return urljoin(base, raw)
    return _joined_directory(base, directory + slash) + name


# What urljoin would rewrite or read apart (controls it drops, queries, fragments, params):
# links with any of it take the slow road.
_UNPLAIN = re.compile(r"[\x00-\x20\x7f?#;\\]")


@functools.lru_cache(maxsize=256)
def _joined_directory(base: str, directory: str) -> str:
    return urljoin(base, directory)


def _url_basename(url: str) -> str:
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])


# What a distribution file can be called: wheels and sdists (PEP 427, PEP 625), the archive
# forms pip accepts, and the legacy kinds PEP 527 stopped new uploads of but the index keeps.
# Anything else on an index page (a captive portal's "login" link) is not a file (threat 17).
_DISTRIBUTION_SUFFIXES = (
    ".whl", ".tar.gz", ".zip", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".tgz", ".tar",
    ".tar.lz", ".tlz", ".tar.lzma", ".egg", ".exe", ".msi", ".rpm", ".dmg", ".deb",
)  # fmt: skip


def _valid_filename(raw: str) -> str | None:
    if not raw.lower().endswith(_DISTRIBUTION_SUFFIXES):
        return None
    try:
        return validate_filename(raw)
    except BodegaError:
        return None


def _serial(value: object) -> int | None:
    # Warehouse sends meta._last-serial as a string, older mirrors as a number.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 19:
        return int(value)
    return None


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _secure_url(value: object) -> str | None:
    # PEP 740: a provenance URL must be a secure origin.
    return value if isinstance(value, str) and value.startswith("https://") else None
