"""Real, installable distributions built in memory for tests.

No build backend is involved: wheels and sdists are assembled with zipfile/tarfile, so tests
stay fast and offline. Output is deterministic (fixed timestamps, seeded payload), so the same
call always yields the same bytes and therefore the same sha256.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import functools
import gzip
import hashlib
import io
import random
import re
import tarfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from unittest import mock

from packaging.utils import parse_sdist_filename, parse_wheel_filename
from packaging.version import Version

# Zip cannot store dates before 1980; any fixed date gives reproducible archives.
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)
_TAR_MTIME = 1577836800  # 2020-01-01T00:00:00Z, matching the zip date
_WHEEL_TAG = "py3-none-any"


@dataclass(frozen=True)
class BuiltFile:
    """A distribution file and, for wheels, the exact bytes of its METADATA."""

    filename: str
    data: bytes
    metadata: bytes | None
    # Carried along so a fake index can publish requires-python without re-parsing the file.
    requires_python: str | None = None

    @property
    def sha256(self) -> str:
        """Hex sha256 of the file bytes."""
        return hashlib.sha256(self.data).hexdigest()

    @property
    def metadata_sha256(self) -> str | None:
        """Hex sha256 of the METADATA bytes, or None when there is no metadata file."""
        if self.metadata is None:
            return None
        return hashlib.sha256(self.metadata).hexdigest()

    @property
    def size(self) -> int:
        """Length of the file in bytes."""
        return len(self.data)


def build_wheel(
    name: str,
    version: str,
    *,
    requires: Sequence[str] = (),
    requires_python: str | None = None,
    summary: str = "",
    payload_size: int = 0,
    tag: str = _WHEEL_TAG,
    zip64: bool = False,
) -> BuiltFile:
    """Build a pure-Python ``py3-none-any`` wheel that pip can install (or one that claims
    another ``tag``, such as ``cp313-cp313-manylinux_2_17_x86_64``, for tests of what an
    index lists; its content stays pure Python).

    It holds ``<pkg>/__init__.py`` defining ``__version__`` and, when ``payload_size > 0``, an
    incompressible ``<pkg>/payload.bin`` of that many bytes so tests get realistic file sizes.
    With ``zip64``, every size and offset and the end of the central directory are written
    in their ZIP64 forms, as in a wheel over 4 GiB or 65,535 files.
    """
    return _build_wheel(
        name,
        version,
        requires=tuple(requires),
        requires_python=requires_python,
        summary=summary,
        payload_size=payload_size,
        tag=tag,
        zip64=zip64,
    )


def build_sdist(
    name: str,
    version: str,
    *,
    requires: Sequence[str] = (),
    requires_python: str | None = None,
    summary: str = "",
) -> BuiltFile:
    """Build a ``<name>-<version>.tar.gz`` sdist with PKG-INFO, pyproject.toml and the module."""
    return _build_sdist(name, version, tuple(requires), requires_python, summary)


def _dist_name(name: str) -> str:
    """Return the filename form of a project name (wheel spec / PEP 625): ``[-_.]+`` -> ``_``."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _metadata(
    name: str,
    version: str,
    requires: tuple[str, ...],
    requires_python: str | None,
    summary: str,
) -> bytes:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if summary:
        lines.append(f"Summary: {summary}")
    if requires_python is not None:
        lines.append(f"Requires-Python: {requires_python}")
    lines.extend(f"Requires-Dist: {req}" for req in requires)
    return ("\n".join(lines) + "\n").encode()


def _module_source(version: str) -> bytes:
    return f'"""Generated test package."""\n\n__version__ = "{version}"\n'.encode()


def _payload(name: str, version: str, size: int) -> bytes:
    # A str seed is hashed with SHA-512 by random.seed, so it is stable across runs and
    # independent of PYTHONHASHSEED; Mersenne Twister output does not compress.
    return random.Random(f"{name}=={version}").randbytes(size)


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _zip_add(archive: zipfile.ZipFile, path: str, data: bytes, compress_type: int) -> None:
    info = zipfile.ZipInfo(path, date_time=_ZIP_DATE)
    info.external_attr = 0o644 << 16  # regular file, rw-r--r--
    info.compress_type = compress_type
    archive.writestr(info, data)


# Cached because the output is deterministic and large payloads are costly to rebuild in
# every test; BuiltFile is immutable, so sharing instances is safe.
@functools.lru_cache(maxsize=64)
def _build_wheel(
    name: str,
    version: str,
    *,
    requires: tuple[str, ...],
    requires_python: str | None,
    summary: str,
    payload_size: int,
    tag: str,
    zip64: bool,
) -> BuiltFile:
    dist = _dist_name(name)
    norm_version = str(Version(version))
    filename = f"{dist}-{norm_version}-{tag}.whl"
    parse_wheel_filename(filename)  # fail loudly on a name the wheel spec would reject
    dist_info = f"{dist}-{norm_version}.dist-info"
    metadata = _metadata(name, norm_version, requires, requires_python, summary)
    wheel_file = (
        f"Wheel-Version: 1.0\nGenerator: bodega-tests (1.0)\nRoot-Is-Purelib: true\nTag: {tag}\n"
    ).encode()

    # (path, bytes, compression); package files first and dist-info last, as the spec advises.
    entries: list[tuple[str, bytes, int]] = [
        (f"{dist}/__init__.py", _module_source(norm_version), zipfile.ZIP_DEFLATED)
    ]
    if payload_size > 0:
        # Stored, not deflated: random bytes would not shrink and deflating them costs time.
        entries.append(
            (f"{dist}/payload.bin", _payload(name, norm_version, payload_size), zipfile.ZIP_STORED)
        )
    entries.append((f"{dist_info}/METADATA", metadata, zipfile.ZIP_DEFLATED))
    entries.append((f"{dist_info}/WHEEL", wheel_file, zipfile.ZIP_DEFLATED))

    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for path, data, _ in entries:
        writer.writerow([path, _record_hash(data), str(len(data))])
    writer.writerow([f"{dist_info}/RECORD", "", ""])  # RECORD cannot hash itself
    entries.append((f"{dist_info}/RECORD", record.getvalue().encode(), zipfile.ZIP_DEFLATED))

    buffer = io.BytesIO()
    with (
        _zip64_everywhere() if zip64 else contextlib.nullcontext(),
        zipfile.ZipFile(buffer, "w") as archive,
    ):
        for path, data, compress_type in entries:
            _zip_add(archive, path, data, compress_type)
    return BuiltFile(filename, buffer.getvalue(), metadata, requires_python)


@contextlib.contextmanager
def _zip64_everywhere() -> Iterator[None]:
    # zipfile writes ZIP64 fields only past these limits (4 GiB, 65,535 members); with them
    # at 0 a small wheel has the layout of a huge one. Only this writer runs meanwhile.
    with (
        mock.patch.object(zipfile, "ZIP64_LIMIT", 0),
        mock.patch.object(zipfile, "ZIP_FILECOUNT_LIMIT", 0),
    ):
        yield


@functools.lru_cache(maxsize=32)
def _build_sdist(
    name: str,
    version: str,
    requires: tuple[str, ...],
    requires_python: str | None,
    summary: str,
) -> BuiltFile:
    dist = _dist_name(name)
    norm_version = str(Version(version))
    filename = f"{dist}-{norm_version}.tar.gz"
    parse_sdist_filename(filename)
    root = f"{dist}-{norm_version}"

    pyproject = [
        "[build-system]",
        'requires = ["setuptools>=61"]',
        'build-backend = "setuptools.build_meta"',
        "",
        "[project]",
        f"name = {_toml_str(name)}",
        f"version = {_toml_str(norm_version)}",
        f"description = {_toml_str(summary)}",
    ]
    if requires_python is not None:
        pyproject.append(f"requires-python = {_toml_str(requires_python)}")
    pyproject.append("dependencies = [" + ", ".join(_toml_str(r) for r in requires) + "]")

    members = [
        (f"{root}/PKG-INFO", _metadata(name, norm_version, requires, requires_python, summary)),
        (f"{root}/pyproject.toml", ("\n".join(pyproject) + "\n").encode()),
        (f"{root}/{dist}/__init__.py", _module_source(norm_version)),
    ]

    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path, data in members:
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mtime = _TAR_MTIME
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))

    gz_buffer = io.BytesIO()
    # mtime=0 and an empty embedded filename keep the gzip header reproducible.
    with gzip.GzipFile(filename="", mode="wb", fileobj=gz_buffer, mtime=0) as gz:
        gz.write(tar_buffer.getvalue())
    return BuiltFile(filename, gz_buffer.getvalue(), None, requires_python)


def _toml_str(value: str) -> str:
    """Quote a TOML basic string (backslash and quote escaped; enough for test inputs)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
