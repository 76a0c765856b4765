"""Rendering the simple API (PEP 503 HTML, PEP 691 JSON) from the index model.

Every file URL is bodega's own, relative to the page, so the same bytes work under
/simple/ and /root/pypi/+simple/ and no Host header can poison them (threat 11).
"""

import json
from html import escape
from typing import Any
from urllib.parse import quote

from bodega.core.filenames import version_of
from bodega.core.model import DistributionFile, ProjectPage

# PEP 833 froze the HTML form at 1.4; bodega only claims what it fills in.
_HTML_BASE_VERSION = "1.0"


def file_href(project: str, filename: str) -> str:
    """A file's URL relative to its project page (/simple/<project>/)."""
    return f"../../files/{project}/{quote(filename)}"


def render_project_html(page: ProjectPage) -> bytes:
    files = listed_files(page)
    version = _html_version(page)
    head = [
        "<!DOCTYPE html>",
        "<html>",
        "  <head>",
        f'    <meta name="pypi:repository-version" content="{version}">',
    ]
    if page.status is not None:
        head.append(f'    <meta name="pypi:project-status" content="{escape(page.status.status)}">')
        if page.status.reason:
            reason = escape(page.status.reason)
            head.append(f'    <meta name="pypi:project-status-reason" content="{reason}">')
    head += [f"    <title>Links for {page.name}</title>", "  </head>", "  <body>"]
    head.append(f"    <h1>Links for {page.name}</h1>")
    anchors = [_html_anchor(page.name, f) for f in files]
    tail = ["  </body>", "</html>", ""]
    return "\n".join(head + anchors + tail).encode()


def _html_anchor(project: str, file: DistributionFile) -> str:
    href = file_href(project, file.filename)
    if file.sha256:
        href += f"#sha256={file.sha256}"
    attributes = [f'href="{escape(href)}"']
    if file.requires_python:
        attributes.append(f'data-requires-python="{escape(file.requires_python)}"')
    if file.yanked is True:
        attributes.append("data-yanked")
    elif file.yanked:
        attributes.append(f'data-yanked="{escape(file.yanked)}"')
    metadata = _metadata_attribute(file)
    if metadata:
        # PEP 714: emit both keys so clients older than the rename still find it.
        attributes.append(f'data-core-metadata="{metadata}"')
        attributes.append(f'data-dist-info-metadata="{metadata}"')
    if file.provenance:
        attributes.append(f'data-provenance="{escape(file.provenance)}"')
    return f"    <a {' '.join(attributes)}>{escape(file.filename)}</a><br>"


def _metadata_attribute(file: DistributionFile) -> str | None:
    if file.metadata_sha256:
        return f"sha256={file.metadata_sha256}"
    return "true" if file.core_metadata else None


def render_project_json(page: ProjectPage) -> bytes:
    files = listed_files(page)
    document: dict[str, Any] = {
        "meta": {"api-version": _json_version(page)},
        "name": page.name,
        "files": [_json_file(page.name, f) for f in files],
    }
    if page.last_serial is not None:
        document["meta"]["_last-serial"] = page.last_serial
    document["versions"] = list(page.versions) or _versions_from_files(page)
    if page.status is not None:
        status = {"status": page.status.status}
        if page.status.reason:
            status["reason"] = page.status.reason
        document["project-status"] = status
    return json.dumps(document, separators=(",", ":")).encode()


def _json_file(project: str, file: DistributionFile) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "filename": file.filename,
        "url": file_href(project, file.filename),
        "hashes": dict(file.hashes),
        "requires-python": file.requires_python,
        "yanked": file.yanked,
    }
    # PEP 714: JSON carries only "core-metadata"; "dist-info-metadata" breaks pip 22.3-23.1.
    if file.metadata_sha256:
        entry["core-metadata"] = {"sha256": file.metadata_sha256}
    else:
        entry["core-metadata"] = bool(file.core_metadata)
    if file.size is not None:
        entry["size"] = file.size
    if file.upload_time is not None:
        entry["upload-time"] = file.upload_time
    if file.provenance is not None:
        entry["provenance"] = file.provenance
    # No gpg-sig: bodega serves no <file>.asc, so it never claims one (spec 16).
    return entry


def listed_files(page: ProjectPage) -> tuple[DistributionFile, ...]:
    # PEP 792: a quarantined project's index MUST NOT offer its files.
    if page.status is not None and page.status.status == "quarantined":
        return ()
    return page.files


def _json_version(page: ProjectPage) -> str:
    # PEP 700 (1.1) makes size mandatory: claim it only when every file has one.
    if not all(f.size is not None for f in page.files):
        return "1.0"
    if page.status is not None:
        return "1.4"
    if any(f.provenance for f in page.files):
        return "1.3"
    return "1.1"


def _html_version(page: ProjectPage) -> str:
    if page.status is not None:
        return "1.4"
    if any(f.provenance for f in page.files):
        return "1.3"
    return _HTML_BASE_VERSION


def _versions_from_files(page: ProjectPage) -> list[str]:
    versions = {v for v in (version_of(f.filename) for f in page.files) if v is not None}
    return sorted(versions)
