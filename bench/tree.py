"""The upstream: a static PEP 503/691 tree that nginx serves.

Layout (what `--tree DIR` must look like too):
    simple/index.html            root list (PEP 503), plus index.json (PEP 691) and .gz siblings
    simple/<project>/index.html  project pages linking to ../../files/<project>/<filename>
    simple-plain/<project>/...   the same pages without core-metadata (optional; the networked
                                 upstream serves them, like the many mirrors that carry none)
    files/<project>/<filename>   distributions, plus <filename>.metadata (PEP 658)
    manifest.json                what the bench installs and which files it times (optional)

Beside the install tree, a wider tree of small projects (`compile_projects`, 137 in the full
tree) is what `uv pip compile` resolves: its names and files live in the same directories.
"""

import gzip
import hashlib
import html
import json
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from dists import REQUIRES_PYTHON, Release, build_sdist, build_wheel, core_metadata

MIB = 1024 * 1024
MANIFEST = "manifest.json"
PLAIN = "simple-plain"  # the project pages without core-metadata
_FIRST_WORDS = (
    "amber",
    "brisk",
    "cedar",
    "dapper",
    "ember",
    "fable",
    "gentle",
    "harbor",
    "ivory",
    "jolly",
    "kestrel",
    "lumen",
    "maple",
    "nimble",
    "opal",
    "pebble",
    "quartz",
    "russet",
    "sable",
    "tidy",
    "umber",
    "velvet",
    "willow",
    "yonder",
    "zephyr",
)
_SECOND_WORDS = (
    "parser",
    "client",
    "cache",
    "schema",
    "codec",
    "router",
    "logger",
    "config",
    "tokens",
    "signal",
    "bridge",
    "vault",
    "stream",
    "matrix",
    "kernel",
    "ledger",
    "socket",
    "widget",
    "graph",
    "queue",
)


@dataclass(frozen=True)
class TreeSpec:
    """How big a tree to generate; `full` matches the issue, `smoke` keeps the test fast."""

    projects: int
    versions: int
    root_names: int
    large_size: int
    compile_projects: int
    seed: int = 6

    @classmethod
    def full(cls) -> "TreeSpec":
        return cls(
            projects=53, versions=3, root_names=800_000, large_size=20 * MIB, compile_projects=137
        )

    @classmethod
    def smoke(cls) -> "TreeSpec":
        return cls(projects=6, versions=2, root_names=2_000, large_size=2 * MIB, compile_projects=8)

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self)).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Manifest:
    """What the figures need to know about a tree."""

    requirement: str
    projects: tuple[str, ...]
    large_file: tuple[str, str]  # (project, filename) timed for first hit and throughput
    herd_file: tuple[str, str]  # another large file, kept cold for the herd
    compile_requirement: str = ""  # the root of the wide tree `uv pip compile` resolves
    compile_projects: tuple[str, ...] = ()
    has_plain_pages: bool = False  # simple-plain/ is there (pages without core-metadata)

    def save(self, root: Path) -> None:
        (root / MANIFEST).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, root: Path) -> "Manifest":
        data = json.loads((root / MANIFEST).read_text())
        return cls(
            requirement=data["requirement"],
            projects=tuple(data["projects"]),
            large_file=(data["large_file"][0], data["large_file"][1]),
            herd_file=(data["herd_file"][0], data["herd_file"][1]),
            compile_requirement=data.get("compile_requirement", ""),
            compile_projects=tuple(data.get("compile_projects", ())),
            has_plain_pages=bool(data.get("has_plain_pages", False)),
        )


def project_names(count: int, rng: random.Random) -> list[str]:
    pairs = [f"{a}-{b}" for a in _FIRST_WORDS for b in _SECOND_WORDS]
    rng.shuffle(pairs)
    return pairs[:count]


def compile_names(spec: TreeSpec) -> list[str]:
    """The wide tree's names: the same shuffle as the install tree's, taken after its names."""
    pairs = project_names(spec.projects + spec.compile_projects, random.Random(spec.seed))
    return pairs[spec.projects :]


def dependency_edges(count: int, rng: random.Random) -> dict[int, set[int]]:
    """A DAG rooted at 0: every project is reached, some more than once, like a real tree."""
    edges: dict[int, set[int]] = {index: set() for index in range(count)}
    for child in range(1, count):
        edges[rng.randrange(0, child)].add(child)
        if child >= 3 and rng.random() < 0.3:
            edges[rng.randrange(1, child)].add(child)
    return edges


def payload_sizes(spec: TreeSpec, rng: random.Random) -> list[int]:
    """Few KB for most, a handful of MB for some, one `large_size` (index 1) like real trees."""
    sizes = [int(4096 * (64 ** rng.random())) for _ in range(spec.projects)]  # 4 KiB..256 KiB
    for index in range(2, spec.projects, 9):
        sizes[index] = int(spec.large_size * rng.uniform(0.05, 0.3))
    sizes[1] = spec.large_size
    return sizes


def _tree_releases(
    spec: TreeSpec, names: list[str], edges: dict[int, set[int]], sizes: list[int], seed: int
) -> Iterator[Release]:
    for index, name in enumerate(names):
        requires = tuple(sorted(f"{names[child]}>=1.0" for child in edges[index]))
        for minor in range(spec.versions):
            yield Release(
                project=name,
                version=f"1.{minor}.0",
                requires=requires,
                payload_size=sizes[index],
                seed=seed * 1_000_003 + index * 101 + minor,
            )


def releases(spec: TreeSpec) -> Iterator[Release]:
    """The install tree (its bytes as before the wide tree existed), then the wide tree."""
    rng = random.Random(spec.seed)
    names = project_names(spec.projects, rng)
    edges = dependency_edges(spec.projects, rng)
    sizes = payload_sizes(spec, rng)
    yield from _tree_releases(spec, names, edges, sizes, spec.seed)
    wide_rng = random.Random(spec.seed + 1)
    wide_names = compile_names(spec)
    wide_edges = dependency_edges(len(wide_names), wide_rng)
    # Small wheels (4-64 KiB): resolving reads metadata, and without PEP 658 a whole wheel.
    wide_sizes = [int(4096 * (16 ** wide_rng.random())) for _ in wide_names]
    yield from _tree_releases(spec, wide_names, wide_edges, wide_sizes, spec.seed + 1)


def _write(path: Path, data: bytes, *, gzipped: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if gzipped:  # served by nginx's gzip_static, as a CDN would
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(data, 6, mtime=0))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _project_pages(
    project: str, files: list[dict[str, str]], *, with_metadata: bool
) -> tuple[bytes, bytes]:
    anchors = []
    for file in files:
        attributes = f'href="../../files/{project}/{file["filename"]}#sha256={file["sha256"]}"'
        attributes += f' data-requires-python="{html.escape(REQUIRES_PYTHON)}"'
        if with_metadata and "metadata" in file:
            # PEP 714: older clients read data-dist-info-metadata, newer data-core-metadata.
            value = f"sha256={file['metadata']}"
            attributes += f' data-dist-info-metadata="{value}" data-core-metadata="{value}"'
        anchors.append(f"<a {attributes}>{file['filename']}</a><br/>")
    page = (
        '<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="1.1">'
        f"<title>Links for {project}</title></head><body><h1>Links for {project}</h1>\n"
        + "\n".join(anchors)
        + "\n</body></html>\n"
    )
    json_files = []
    for file in files:
        entry: dict[str, object] = {
            "filename": file["filename"],
            "url": f"../../files/{project}/{file['filename']}",
            "hashes": {"sha256": file["sha256"]},
            "requires-python": REQUIRES_PYTHON,
            "size": int(file["size"]),
            "yanked": False,
        }
        if with_metadata and "metadata" in file:
            entry["core-metadata"] = {"sha256": file["metadata"]}
            entry["data-dist-info-metadata"] = {"sha256": file["metadata"]}
        json_files.append(entry)
    versions = sorted({file["version"] for file in files})
    document = {
        "meta": {"api-version": "1.1"},
        "name": project,
        "versions": versions,
        "files": json_files,
    }
    return page.encode(), json.dumps(document).encode()


def _root_pages(names: list[str]) -> tuple[bytes, bytes]:
    page = "<!DOCTYPE html>\n<html><head><title>Simple index</title></head><body>\n"
    page += "".join(f'<a href="{name}/">{name}</a>\n' for name in names)
    page += "</body></html>\n"
    document = {"meta": {"api-version": "1.0"}, "projects": [{"name": name} for name in names]}
    return page.encode(), json.dumps(document).encode()


def filler_names(count: int, seed: int) -> list[str]:
    """Names for the root list only: as many as the real index has, none of them served."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return [
        "".join(rng.choices(letters, k=rng.randint(4, 12))) + f"-{index}" for index in range(count)
    ]


def generate(spec: TreeSpec, root: Path) -> Manifest:
    """Write the tree under `root` (skipped when a complete tree with this spec is there)."""
    if (root / MANIFEST).exists():
        return Manifest.load(root)
    by_project: dict[str, list[Release]] = {}
    for release in releases(spec):
        by_project.setdefault(release.project, []).append(release)
    for project, project_releases in by_project.items():
        files: list[dict[str, str]] = []
        for release in project_releases:
            wheel = build_wheel(release)
            metadata = core_metadata(release)
            sdist = build_sdist(release)
            directory = root / "files" / project
            _write(directory / release.wheel_filename, wheel)
            _write(directory / (release.wheel_filename + ".metadata"), metadata)
            _write(directory / release.sdist_filename, sdist)
            files.append(
                {
                    "filename": release.wheel_filename,
                    "sha256": _sha256(wheel),
                    "metadata": _sha256(metadata),
                    "size": str(len(wheel)),
                    "version": release.version,
                }
            )
            files.append(
                {
                    "filename": release.sdist_filename,
                    "sha256": _sha256(sdist),
                    "size": str(len(sdist)),
                    "version": release.version,
                }
            )
        for pages, with_metadata in (("simple", True), (PLAIN, False)):
            page, document = _project_pages(project, files, with_metadata=with_metadata)
            _write(root / pages / project / "index.html", page, gzipped=True)
            _write(root / pages / project / "index.json", document, gzipped=True)
    every_project = list(by_project)
    names = sorted([*every_project, *filler_names(spec.root_names - len(every_project), spec.seed)])
    page, document = _root_pages(names)
    for name, data in (("index.html", page), ("index.json", document)):
        _write(root / "simple" / name, data, gzipped=True)
        for suffix in ("", ".gz"):  # one root list on disk for both kinds of pages
            link = root / PLAIN / (name + suffix)
            link.unlink(missing_ok=True)  # left by a generation that was interrupted
            link.symlink_to(Path("..", "simple", name + suffix))
    projects = every_project[: spec.projects]
    wide = every_project[spec.projects :]
    large = by_project[projects[1]]
    manifest = Manifest(
        requirement=projects[0],
        projects=tuple(projects),
        large_file=(projects[1], large[-1].wheel_filename),
        herd_file=(projects[1], large[0].wheel_filename),
        compile_requirement=wide[0],
        compile_projects=tuple(wide),
        has_plain_pages=True,
    )
    manifest.save(root)
    return manifest
