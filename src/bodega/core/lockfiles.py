"""What a requirements file or lock file pins: projects, exact versions, and the files'
hashes when the file records them.

Understood: requirements files (`name==1.0`, with or without `--hash`), `uv.lock`,
`poetry.lock`, `Pipfile.lock` and PEP 751 `pylock.toml` (`pylock.<name>.toml`). Entries that
do not come from an index (git, local paths, direct URLs, editables) are listed as skipped.
Environment markers are ignored on purpose: a cache serves every platform.
"""

import json
import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from bodega.core.filenames import version_of
from bodega.errors import InvalidLockfile


@dataclass(frozen=True, slots=True)
class Pin:
    """One project at one version; `hashes` (sha256, hex) narrows it to those files."""

    project: NormalizedName
    version: str
    hashes: frozenset[str] = frozenset()

    def __str__(self) -> str:
        return f"{self.project}=={self.version}"


@dataclass(slots=True)
class Pins:
    pins: list[Pin] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # not from an index, with the reason
    includes: list[str] = field(default_factory=list)  # `-r other.txt`, relative to the file


def parse_pins(filename: str, text: str) -> Pins:
    """The pins of a file, recognised by its name; requirements format otherwise."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    try:
        if name == "uv.lock":
            return _uv_lock(_toml(text))
        if name == "poetry.lock":
            return _poetry_lock(_toml(text))
        if name == "Pipfile.lock":
            return _pipfile_lock(json.loads(text))
        if re.fullmatch(r"pylock(\.[^.]+)?\.toml", name):
            return _pylock(_toml(text))
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise InvalidLockfile(f"{filename}: {error}") from None
    except (KeyError, TypeError, AttributeError) as error:
        raise InvalidLockfile(f"{filename}: not a {name} as expected ({error!r})") from None
    return _requirements(filename, text)


def _toml(text: str) -> dict[str, Any]:
    return tomllib.loads(text)


# ------------------------------------------------------------------------------ requirements

# pip's options that take a value and apply to the whole file; their lines pin nothing.
_FILE_OPTIONS = re.compile(
    r"-(i|f|c)\b|--(index-url|extra-index-url|find-links|trusted-host|constraint|no-binary"
    r"|only-binary|prefer-binary|pre|require-hashes|no-index|use-feature|config-settings)\b"
)
_HASH_OPTION = re.compile(r"\s--hash[=\s]\s*(\w+):([0-9a-fA-F]+)")
_INCLUDE = re.compile(r"(?:-r|--requirement)[=\s]\s*(\S+)")
_EDITABLE = re.compile(r"(?:-e|--editable)[=\s]\s*(\S+)")


def _requirements(filename: str, text: str) -> Pins:
    found = Pins()
    for number, line in _logical_lines(text):
        where = f"{filename}:{number}"
        if include := _INCLUDE.fullmatch(line):
            found.includes.append(include.group(1))
        elif editable := _EDITABLE.fullmatch(line):
            found.skipped.append(f"{editable.group(1)} (editable, not from an index)")
        elif _FILE_OPTIONS.match(line):
            continue
        else:
            pin = _requirement_pin(where, line)
            if isinstance(pin, Pin):
                found.pins.append(pin)
            else:
                found.skipped.append(pin)
    return found


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Lines with comments removed and backslash continuations joined, as pip reads them."""
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        # A comment starts at a "#" at the line's start or after whitespace (pip's rule).
        line = re.sub(r"(^|\s+)#.*$", "", raw)
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined, pending = (pending + line).strip(), ""
        if joined:
            yield start, joined
    if pending.strip():
        yield start, pending.strip()


def _requirement_pin(where: str, line: str) -> Pin | str:
    hashes = {digest.lower() for algorithm, digest in _HASH_OPTION.findall(" " + line)}
    algorithms = {algorithm for algorithm, _ in _HASH_OPTION.findall(" " + line)}
    text = _HASH_OPTION.sub("", " " + line).strip()
    try:
        requirement = Requirement(text)
    except InvalidRequirement as error:
        raise InvalidLockfile(f"{where}: {error}") from None
    if requirement.url:
        return f"{requirement.name} (a direct URL, not from an index)"
    if algorithms - {"sha256"}:
        # bodega checks files by sha256, the one hash every index gives (PEP 503).
        raise InvalidLockfile(f"{where}: only sha256 hashes can be checked, not {algorithms}")
    specifiers = list(requirement.specifier)
    if (
        len(specifiers) != 1
        or specifiers[0].operator not in ("==", "===")
        or (specifiers[0].version.endswith(".*"))
    ):
        raise InvalidLockfile(f"{where}: {text!r} is not pinned to one version (name==version)")
    return Pin(canonicalize_name(requirement.name), specifiers[0].version, frozenset(hashes))


# ------------------------------------------------------------------------------ lock files


def _sha256s(values: Iterable[str]) -> frozenset[str]:
    """The sha256 digests among "sha256:<hex>" strings."""
    return frozenset(
        value.split(":", 1)[1].lower() for value in values if value.startswith("sha256:")
    )


def _uv_lock(lock: dict[str, Any]) -> Pins:
    found = Pins()
    for package in lock.get("package", []):
        name, source = package["name"], package.get("source", {})
        if "registry" not in source:
            kind = next(iter(source), "unknown source")
            found.skipped.append(f"{name} ({kind}, not from an index)")
            continue
        files = [package["sdist"]] if "sdist" in package else []
        files += package.get("wheels", [])
        hashes = _sha256s(f["hash"] for f in files if "hash" in f)
        found.pins.append(Pin(canonicalize_name(name), package["version"], hashes))
    return found


def _poetry_lock(lock: dict[str, Any]) -> Pins:
    found = Pins()
    for package in lock.get("package", []):
        name = package["name"]
        kind = package.get("source", {}).get("type", "")
        if kind in ("git", "directory", "file", "url"):
            found.skipped.append(f"{name} ({kind}, not from an index)")
            continue
        hashes = _sha256s(f["hash"] for f in package.get("files", []) if "hash" in f)
        found.pins.append(Pin(canonicalize_name(name), package["version"], hashes))
    return found


def _pipfile_lock(lock: dict[str, Any]) -> Pins:
    found = Pins()
    for section in ("default", "develop"):
        for name, entry in lock.get(section, {}).items():
            version = entry.get("version", "")
            if not version.startswith("=="):
                found.skipped.append(f"{name} (not from an index)")
                continue
            pin = Pin(canonicalize_name(name), version[2:], _sha256s(entry.get("hashes", [])))
            if pin not in found.pins:
                found.pins.append(pin)
    return found


def _pylock(lock: dict[str, Any]) -> Pins:
    """PEP 751: a package from an index lists its sdist and wheels with their hashes."""
    found = Pins()
    for package in lock.get("packages", []):
        name = package["name"]
        files = [package["sdist"]] if "sdist" in package else []
        files += package.get("wheels", [])
        if not files:
            kind = next((k for k in ("vcs", "directory", "archive") if k in package), "source")
            found.skipped.append(f"{name} ({kind}, not from an index)")
            continue
        version = package.get("version") or _version_of_files(files)
        if version is None:
            raise InvalidLockfile(f"pylock: package {name} has no version")
        hashes = frozenset(f["hashes"]["sha256"].lower() for f in files if "sha256" in f["hashes"])
        found.pins.append(Pin(canonicalize_name(name), version, hashes))
    return found


def _version_of_files(files: list[dict[str, Any]]) -> str | None:
    # PEP 751 makes `version` optional; the files' names carry it then.
    for file in files:
        name = file.get("name") or str(file.get("url", "")).rsplit("/", 1)[-1]
        if version := version_of(name):
            return version
    return None
