"""Reading an sdist's `PKG-INFO` (its core metadata) from the archive, safely.

An sdist is untrusted input. Nothing is extracted to a filesystem: member names are only
compared with `<top>/PKG-INFO`, so `../x` or `/etc/x` can never match or be written. Reads
are bounded: the PKG-INFO member by MAX_METADATA_BYTES (a zip member cannot inflate past
its declared size; a tar member is a byte count), and a compressed tar stream is scanned
for at most MAX_SCANNED_BYTES of its uncompressed content, so a tar bomb stops there.
Build backends differ in where they put PKG-INFO (setuptools near the start, hatchling at
the end), so the whole archive may be scanned, up to that cap.
"""

import struct
import tarfile
import zipfile
import zlib
from lzma import LZMAError
from typing import IO

from bodega.core.wheel_metadata import MAX_METADATA_BYTES
from bodega.errors import BodegaError

MAX_SCANNED_BYTES = 1024 * 1024 * 1024
_MAX_MEMBERS = 100_000
# What the stdlib's archive readers raise on corrupt input (found by fuzzing): zipfile's
# NotImplementedError for an unknown method or version, gzip's BadGzipFile (an OSError).
_UNREADABLE = (
    tarfile.TarError,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    zlib.error,
    LZMAError,
    OSError,
    NotImplementedError,
    ValueError,
    struct.error,
)
_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar")


class SdistMetadataError(BodegaError):
    """The sdist's PKG-INFO cannot be read safely."""


def is_readable_sdist(filename: str) -> bool:
    """Whether this is an archive PKG-INFO can be read from."""
    return filename.endswith((".zip", *_TAR_SUFFIXES))


def read_pkg_info(archive: IO[bytes], filename: str) -> bytes:
    """The bytes of the sdist's top-level `PKG-INFO`, from the open archive `archive`."""
    try:
        if filename.endswith(".zip"):
            return _from_zip(archive)
        if filename.endswith(_TAR_SUFFIXES):
            return _from_tar(archive)
    except _UNREADABLE as error:
        raise SdistMetadataError(f"{filename} is not a readable archive: {error}") from None
    raise SdistMetadataError(f"{filename} is no sdist archive bodega reads")


def _is_pkg_info(name: str) -> bool:
    parts = name.removeprefix("./").split("/")
    return len(parts) == 2 and parts[1] == "PKG-INFO" and parts[0] not in ("", ".", "..")


def _from_tar(archive: IO[bytes]) -> bytes:
    # Stream mode ("r|*") reads forward only and never seeks: gzip, bzip2 and xz alike.
    with tarfile.open(fileobj=archive, mode="r|*") as tar:
        for count, member in enumerate(tar):
            if count >= _MAX_MEMBERS or member.offset_data + member.size > MAX_SCANNED_BYTES:
                break
            if not (member.isfile() and _is_pkg_info(member.name)):
                continue
            if member.size > MAX_METADATA_BYTES:
                raise SdistMetadataError(f"PKG-INFO of {member.size} bytes is over the cap")
            extracted = tar.extractfile(member)
            if extracted is None:
                break
            return extracted.read(member.size)
    raise SdistMetadataError("no PKG-INFO at the top of the sdist")


def _from_zip(archive: IO[bytes]) -> bytes:
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist()[:_MAX_MEMBERS]:
            if info.is_dir() or not _is_pkg_info(info.filename):
                continue
            if info.file_size > MAX_METADATA_BYTES or info.flag_bits & 0x1:
                raise SdistMetadataError("PKG-INFO is over the cap or encrypted")
            # A member never inflates past its declared size: zipfile stops there, and
            # checks the CRC-32 once it is read whole.
            with zipped.open(info) as member:
                return member.read(MAX_METADATA_BYTES + 1)
    raise SdistMetadataError("no PKG-INFO at the top of the sdist")
