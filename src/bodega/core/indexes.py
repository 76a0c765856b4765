"""The indexes one bodega serves, as configured: their names, kinds and routing rules.

An index is named `<user>/<index>`, as devpi names them, and is one of:
- a mirror: a pull-through cache of one upstream simple index;
- a virtual index: an ordered list of bases (other indexes). For each project the first base
  that has it serves it whole, versions and files alike (uv's `first-index` strategy, the
  rule that keeps a private name from being answered by a public base); a route pins the
  project names matching a glob to one base. `merge = true` unites the bases' pages as pip's
  `--extra-index-url` does, which lets any base add versions of any name (dependency
  confusion), so it is opt-in and documented as unsafe.
- hosted: the team's own packages, uploaded to bodega (the legacy upload API). A virtual
  index whose bases include a hosted index serves a name the hosted base has (or reserves)
  from it alone, whatever the base order and routes, unless `merge = true`: a squatted
  upstream name never reaches a client (no dependency confusion).

Routes match normalized project names (PEP 503): `torch*` matches `Torch_Audio` as
`torch-audio`, and a glob's own letters and separators are normalized the same way.
"""

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fnmatch import translate

from packaging.utils import canonicalize_name

from bodega.core.model import DistributionFile, ProjectPage
from bodega.errors import InvalidName

DEFAULT_INDEX = "root/pypi"  # today's single mirror; /simple/ serves it unless told otherwise
KINDS = ("mirror", "virtual", "hosted")
MAX_INDEX_NAME_LENGTH = 100  # both segments and the slash; keeps keys, labels and URLs small

# A segment is a URL path segment and a metrics label value: letters, digits and . _ - only,
# starting with a letter or digit, so never "+" (the UI's segments), "-" (operations) or ".".
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# First segments the short paths of the default index use (/simple/, /files/, /pypi/, /RPC2),
# so an index's user may not be named so.
RESERVED_USERS = frozenset({"simple", "files", "pypi", "rpc2"})
# `/<user>/json` is pip-tools' JSON API for project <user>, so no index is named json.
RESERVED_INDEXES = frozenset({"json"})

# What a route's glob may hold: the characters of a project name, and fnmatch's * ? [ ] !
# (with ! only as a set's negation, checked below).
_GLOB = re.compile(r"[A-Za-z0-9._*?\[\]!-]+")
_SEPARATORS = re.compile(r"[-_.]+")


@dataclass(frozen=True, slots=True)
class MirrorIndex:
    """A pull-through cache of one upstream simple index."""

    name: str  # "<user>/<index>"
    upstream: str  # its simple URL; credentials in it (or netrc) as for any upstream
    index_ttl: float
    revalidate_after: float
    upstream_timeout: float
    download_deadline: float
    offline: bool


@dataclass(frozen=True, slots=True)
class VirtualIndex:
    """Other indexes (its bases) served as one, each project from one base."""

    name: str
    bases: tuple[str, ...]  # in the order they are asked
    routes: tuple[tuple[str, str], ...] = ()  # (project-name glob, base), in file order
    merge: bool = False  # pip's union of every base's page; unsafe, see the module docstring
    _patterns: tuple[tuple[re.Pattern[str], str], ...] = field(
        init=False, repr=False, compare=False, default=()
    )

    def __post_init__(self) -> None:
        # candidates() runs on every request for a project: compile each glob once.
        patterns = tuple((compile_glob(glob), base) for glob, base in self.routes)
        object.__setattr__(self, "_patterns", patterns)

    def candidates(self, project: str) -> tuple[str, ...]:
        """The bases to try for a project, in order: the first matching route's base alone,
        else every base."""
        normalized = canonicalize_name(project)
        for pattern, base in self._patterns:
            if pattern.fullmatch(normalized):
                return (base,)
        return self.bases


# The public index's default upload limit (warehouse's MAX_FILESIZE is 100 MiB).
DEFAULT_MAX_UPLOAD_SIZE = 100 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class HostedIndex:
    """Packages uploaded to bodega itself."""

    name: str
    reserved: tuple[str, ...] = ()  # normalized project names held before any upload
    max_upload_size: int = DEFAULT_MAX_UPLOAD_SIZE  # bytes per file


IndexSpec = MirrorIndex | VirtualIndex | HostedIndex


def check_index_name(text: str) -> str:
    """`text` if it names an index (`<user>/<index>`, each a safe path segment), else
    InvalidName saying why."""
    if len(text) > MAX_INDEX_NAME_LENGTH:
        raise InvalidName(f"index name longer than {MAX_INDEX_NAME_LENGTH} characters")
    segments = text.split("/")
    if len(segments) != 2 or not all(_SEGMENT.fullmatch(s) for s in segments):
        raise InvalidName(
            f"not an index name: {text!r} (expected <user>/<index>, each of letters, digits"
            " and . _ -, starting with a letter or digit)"
        )
    user, index = segments
    if user.lower() in RESERVED_USERS:
        raise InvalidName(f"not an index name: {text!r} ({user!r} is a path bodega uses)")
    if index.lower() in RESERVED_INDEXES:
        raise InvalidName(f"not an index name: {text!r} ({index!r} is a path bodega uses)")
    return text


def glob_problem(glob: str) -> str | None:
    """What makes `glob` no project-name glob, or None when it is one."""
    if not glob:
        return "is empty"
    if not _GLOB.fullmatch(glob):
        return "may hold only a project name's characters (letters, digits, . _ -) and * ? [ ]"
    in_set = False
    for position, character in enumerate(glob):
        if character == "[" and not in_set:
            in_set = True
        elif character == "]" and in_set and glob[position - 1] not in "[!":
            in_set = False
        elif character == "]" and not in_set:
            return "has a ] that closes no ["
        elif character == "!" and glob[position - 1 : position] != "[":
            return "has a ! that does not start a [!...] set"
    return "has a [ that is never closed" if in_set else None


def compile_glob(glob: str) -> re.Pattern[str]:
    """The pattern a route's glob matches normalized project names with. Letters are
    lower-cased and runs of separators become "-" outside sets, as PEP 503 does to names."""
    parts = re.split(r"(\[!?\]?[^\]]*\])", glob)  # sets at the odd positions
    normalized = "".join(
        part.lower() if index % 2 else _SEPARATORS.sub("-", part.lower())
        for index, part in enumerate(parts)
    )
    return re.compile(translate(normalized))


def graph_problems(specs: Sequence[IndexSpec]) -> list[str]:
    """One line per base that cannot work: unknown, the index itself, a cycle through
    virtual indexes, or a route to a base the index does not list."""
    by_name = {spec.name: spec for spec in specs}
    problems: list[str] = []
    for spec in specs:
        if not isinstance(spec, VirtualIndex):
            continue
        for base in spec.bases:
            if base == spec.name:
                problems.append(f"{_label(spec.name)} bases: {base!r} is the index itself")
            elif base not in by_name:
                problems.append(f"{_label(spec.name)} bases: no index named {base!r}")
        for glob, base in spec.routes:
            if base not in spec.bases:
                problems.append(
                    f"{_label(spec.name)} routes: {glob!r} goes to {base!r}, which is not"
                    " one of its bases"
                )
    problems.extend(
        f"bases form a cycle: {' -> '.join((*cycle, cycle[0]))}" for cycle in _cycles(by_name)
    )
    return problems


def _cycles(by_name: Mapping[str, IndexSpec]) -> list[tuple[str, ...]]:
    """Each cycle of virtual indexes through their bases once, starting at its least name
    (an index that is its own base is reported on its own, not here)."""
    found: set[tuple[str, ...]] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        spec = by_name.get(name)
        if not isinstance(spec, VirtualIndex):
            return
        for base in spec.bases:
            if base in path:
                cycle = path[path.index(base) :]
                if len(cycle) > 1:
                    start = cycle.index(min(cycle))
                    found.add(cycle[start:] + cycle[:start])
            else:
                visit(base, (*path, base))

    for name in by_name:
        visit(name, (name,))
    return sorted(found)


def _label(name: str) -> str:
    """An index as its table is written in the config file."""
    return f'[indexes."{name}"]'


def mirror_names(specs: Mapping[str, IndexSpec], name: str) -> tuple[str, ...]:
    """The mirrors an index serves from, in base order, each once (`specs` by name, checked
    for unknown bases and cycles already)."""
    spec = specs[name]
    if isinstance(spec, MirrorIndex):
        return (spec.name,)
    if isinstance(spec, HostedIndex):
        return ()
    found = [mirror for base in spec.bases for mirror in mirror_names(specs, base)]
    return tuple(dict.fromkeys(found))


def hosted_names(specs: Mapping[str, IndexSpec], name: str) -> tuple[str, ...]:
    """The hosted indexes an index serves from, in base order, each once."""
    spec = specs[name]
    if isinstance(spec, HostedIndex):
        return (spec.name,)
    if isinstance(spec, MirrorIndex):
        return ()
    found = [hosted for base in spec.bases for hosted in hosted_names(specs, base)]
    return tuple(dict.fromkeys(found))


def source_names(specs: Mapping[str, IndexSpec], name: str, project: str) -> tuple[str, ...]:
    """The mirror and hosted indexes that may serve `project` through the index `name`,
    following each virtual index's routes on the way down, in the order they are asked."""
    spec = specs[name]
    if not isinstance(spec, VirtualIndex):
        return (spec.name,)
    found = [
        source for base in spec.candidates(project) for source in source_names(specs, base, project)
    ]
    return tuple(dict.fromkeys(found))


def listing_filter(
    specs: Mapping[str, IndexSpec], name: str, source: str
) -> Callable[[str], bool] | None:
    """Which normalized names `source` (a mirror or hosted index under the index `name`)
    may put in `name`'s root list: not a name that a route pins to another base, which
    alone serves it. None when no route under `name` pins any name (it lists all it has)."""
    globs = sorted(_route_globs(specs, name))
    if not globs:
        return None
    # One pattern of every glob: nearly every name of a root list matches none, and then
    # every base serves it alike (source_names for each name would cost seconds).
    routed = re.compile("|".join(f"(?:{compile_glob(glob).pattern})" for glob in globs))

    def may_list(project: str) -> bool:
        return routed.match(project) is None or source in source_names(specs, name, project)

    return may_list


def _route_globs(specs: Mapping[str, IndexSpec], name: str) -> set[str]:
    spec = specs[name]
    if not isinstance(spec, VirtualIndex):
        return set()
    below = (_route_globs(specs, base) for base in spec.bases)
    return {glob for glob, _ in spec.routes}.union(*below)


def merge_pages(pages: Sequence[ProjectPage]) -> ProjectPage:
    """One page from the pages of several bases (`merge = true`), in base order: every
    file once, the first base's entry winning for a filename two bases list."""
    if not pages:
        raise ValueError("merge_pages needs at least one page")
    first = pages[0]
    if len(pages) == 1:
        return first
    files: dict[str, DistributionFile] = {}
    for page in pages:
        for file in page.files:
            files.setdefault(file.filename, file)
    return replace(
        first,
        files=tuple(files.values()),
        versions=_merged_versions(pages),
        status=next((page.status for page in pages if page.status is not None), None),
        last_serial=None,  # serials of different upstreams do not compare
    )


def _merged_versions(pages: Sequence[ProjectPage]) -> tuple[str, ...]:
    """Every base's versions (PEP 700), or none when a base with files did not say its
    own: a partial list would hide versions, and renderers derive them from the files."""
    if any(page.files and not page.versions for page in pages):
        return ()
    return tuple(dict.fromkeys(version for page in pages for version in page.versions))
