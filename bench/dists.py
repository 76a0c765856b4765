"""Real, installable distribution files with deterministic bytes.

A wheel here is what `pip` and `uv` accept (PEP 427: METADATA, WHEEL, RECORD in a `.dist-info`
directory) carrying an incompressible payload, so that proxies cannot win by compressing and every
run of the generator yields the same bytes (fixed timestamps, seeded random payload).
"""

import base64
import gzip
import hashlib
import io
import random
import tarfile
import zipfile
from dataclasses import dataclass

# Any fixed date after 1980 (the ZIP epoch) keeps archives byte-for-byte reproducible.
ZIP_DATE = (2024, 1, 1, 0, 0, 0)
REQUIRES_PYTHON = ">=3.8"


@dataclass(frozen=True)
class Release:
    """One version of a project, with what its wheel declares."""

    project: str
    version: str
    requires: tuple[str, ...]
    payload_size: int
    seed: int

    @property
    def module(self) -> str:
        return self.project.replace("-", "_")

    @property
    def wheel_filename(self) -> str:
        return f"{self.module}-{self.version}-py3-none-any.whl"

    @property
    def sdist_filename(self) -> str:
        # PEP 625: the sdist name is the normalized project name with underscores.
        return f"{self.module}-{self.version}.tar.gz"


def core_metadata(release: Release) -> bytes:
    """The METADATA file (core metadata 2.1), also served alone per PEP 658."""
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {release.project}",
        f"Version: {release.version}",
        f"Summary: Benchmark distribution {release.project}",
        f"Requires-Python: {REQUIRES_PYTHON}",
        *(f"Requires-Dist: {requirement}" for requirement in release.requires),
    ]
    return ("\n".join(lines) + "\n").encode()


def payload(release: Release, size: int) -> bytes:
    return random.Random(release.seed).randbytes(size)


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def _zip_entry(archive: zipfile.ZipFile, name: str, data: bytes, *, compress: bool) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    archive.writestr(info, data)


def build_wheel(release: Release) -> bytes:
    dist_info = f"{release.module}-{release.version}.dist-info"
    wheel_file = b"Wheel-Version: 1.0\nGenerator: bodega-bench\nRoot-Is-Purelib: true\n"
    wheel_file += b"Tag: py3-none-any\n"
    entries = {
        f"{release.module}/__init__.py": f'__version__ = "{release.version}"\n'.encode(),
        f"{release.module}/_payload.bin": payload(release, release.payload_size),
        f"{dist_info}/METADATA": core_metadata(release),
        f"{dist_info}/WHEEL": wheel_file,
    }
    record_lines = [f"{name},{_record_hash(data)},{len(data)}" for name, data in entries.items()]
    record_lines.append(f"{dist_info}/RECORD,,")
    entries[f"{dist_info}/RECORD"] = ("\n".join(record_lines) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            _zip_entry(archive, name, data, compress=not name.endswith(".bin"))
    return buffer.getvalue()


def build_sdist(release: Release) -> bytes:
    root = f"{release.module}-{release.version}"
    pyproject = (
        "[build-system]\nrequires = []\nbuild-backend = 'none'\n\n"
        f'[project]\nname = "{release.project}"\nversion = "{release.version}"\n'
    ).encode()
    members = {
        f"{root}/PKG-INFO": core_metadata(release),
        f"{root}/pyproject.toml": pyproject,
        # Half the wheel's payload: sdists are listed and sometimes fetched, rarely installed.
        f"{root}/src/_payload.bin": payload(release, release.payload_size // 2),
    }
    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            archive.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=1) as compressed:
        compressed.write(tar_buffer.getvalue())
    return out.getvalue()
