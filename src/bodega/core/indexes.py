"""STUB (lead's local stand-in until seam-config lands)."""

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass

from packaging.utils import canonicalize_name

from bodega.core.model import ProjectPage
from bodega.errors import InvalidName

_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True, slots=True)
class MirrorIndex:
    name: str
    upstream: str
    index_ttl: float
    revalidate_after: float
    upstream_timeout: float
    download_deadline: float
    offline: bool


@dataclass(frozen=True, slots=True)
class VirtualIndex:
    name: str
    bases: tuple[str, ...]
    routes: tuple[tuple[str, str], ...] = ()
    merge: bool = False

    def candidates(self, project: str) -> tuple[str, ...]:
        key = canonicalize_name(project)
        for glob, base in self.routes:
            if fnmatch.fnmatchcase(key, glob):
                return (base,)
        return self.bases


IndexSpec = MirrorIndex | VirtualIndex


def check_index_name(text: str) -> str:
    parts = text.split("/")
    if len(parts) != 2 or not all(_SEGMENT.fullmatch(p) for p in parts):
        raise InvalidName(f"not an index name (<user>/<index>): {text!r}")
    return text


def merge_pages(pages: Sequence[ProjectPage]) -> ProjectPage:
    first = pages[0]
    seen: dict[str, object] = {}
    files = []
    for page in pages:
        for file in page.files:
            if file.filename not in seen:
                seen[file.filename] = file
                files.append(file)
    return ProjectPage(first.name, tuple(files))
