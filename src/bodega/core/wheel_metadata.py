"""Finding and reading a wheel's `*.dist-info/METADATA` from pieces of the zip (PEP 658).

A wheel is untrusted input: every offset and size is checked against the file, the caps
below bound what is read and inflated (a zip bomb stops at the cap), and only the one
member is ever decompressed, in memory. Nothing here touches a filesystem, so hostile
member names (`../x`, `/etc/x`) are only strings that never match.

The reader works in two steps, each on bytes the caller fetched however it likes (a blob,
HTTP Range requests): `locate_central_directory(tail)` reads the end of the file, then
`find_metadata_member(directory)` names the byte span of METADATA, then
`extract_metadata(span)` returns its bytes. Layouts follow APPNOTE.TXT (PKWARE) 4.3;
ZIP64 (4.3.14-4.3.15 end records, 4.5.3 extra field) is read wherever a field says so, as
wheels over 4 GiB or 65,535 files have it.
"""

import re
import struct
import zlib
from dataclasses import dataclass

from packaging.utils import canonicalize_name

from bodega.errors import BodegaError

# The first read: enough for the end record, its comment and most central directories.
TAIL_BYTES = 64 * 1024
MAX_CENTRAL_DIRECTORY_BYTES = 16 * 1024 * 1024
# The longest real METADATA files (a long README as description) are a few hundred KB.
MAX_METADATA_BYTES = 8 * 1024 * 1024
# A local header's name and extra field may differ from the central directory's copy.
_MAX_LOCAL_HEADER = 30 + 2 * 0xFFFF

_END = struct.Struct("<IHHHHIIH")  # end of central directory record
_END_SIGNATURE = 0x06054B50
_ZIP64_LOCATOR = struct.Struct("<IIQI")  # signature, disk, offset of the ZIP64 end, disks
_ZIP64_LOCATOR_SIGNATURE = 0x07064B50
_ZIP64_END = struct.Struct("<IQHHIIQQQQ")  # ZIP64 end of central directory record
_ZIP64_END_SIGNATURE = 0x06064B50
_ZIP64_EXTRA_ID = 0x0001
_EXTRA_HEADER = struct.Struct("<HH")  # id, size
_ENTRY = struct.Struct("<IHHHHHHIIIHHHHHII")  # central directory file header
_ENTRY_SIGNATURE = 0x02014B50
_LOCAL = struct.Struct("<IHHHHHIIIHH")  # local file header
_LOCAL_SIGNATURE = 0x04034B50
_STORED, _DEFLATED = 0, 8
_ENCRYPTED = 0x1
_ZIP64_MARK = 0xFFFFFFFF  # "the value is in the ZIP64 record or extra field"
_DIST_INFO = re.compile(r"([^/]+)-([^/-]+)\.dist-info/METADATA")


class WheelMetadataError(BodegaError):
    """The wheel's METADATA cannot be read safely from these bytes."""


@dataclass(frozen=True, slots=True)
class Span:
    """Bytes [start, end) of the wheel."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class MetadataMember:
    """Where METADATA lies in the wheel and what it must inflate to."""

    span: Span  # its local header and compressed data, and possibly a little more
    compressed_size: int
    size: int
    crc32: int
    method: int


def locate_central_directory(tail: bytes, file_size: int) -> Span:
    """The central directory's span, from the last `len(tail)` bytes of a file this long."""
    if len(tail) > file_size:
        raise WheelMetadataError("more tail bytes than the file holds")
    # The end record is 22 bytes plus a comment of up to 64 KiB: search backwards for it.
    position = tail.rfind(struct.pack("<I", _END_SIGNATURE), max(0, len(tail) - 22 - 0xFFFF))
    if position < 0 or len(tail) - position < _END.size:
        raise WheelMetadataError("no end of central directory record in the last bytes")
    fields = _END.unpack_from(tail, position)
    disk, directory_disk, size, offset = fields[1], fields[2], fields[5], fields[6]
    end_record_at = file_size - len(tail) + position
    locator_at = position - _ZIP64_LOCATOR.size
    if locator_at >= 0 and tail[locator_at : locator_at + 4] == struct.pack(
        "<I", _ZIP64_LOCATOR_SIGNATURE
    ):
        disk, directory_disk, size, offset, end_record_at = _zip64_end(tail, file_size, locator_at)
    elif _ZIP64_MARK in (size, offset):
        raise WheelMetadataError("a ZIP64 mark without its ZIP64 end record")
    if disk != 0 or directory_disk != 0:
        raise WheelMetadataError("multi-disk archives are not wheels")
    if offset + size > end_record_at:
        raise WheelMetadataError("central directory overlaps the end record")
    if size > MAX_CENTRAL_DIRECTORY_BYTES:
        raise WheelMetadataError(f"central directory of {size} bytes is over the cap")
    return Span(offset, offset + size)


def _zip64_end(tail: bytes, file_size: int, locator_at: int) -> tuple[int, int, int, int, int]:
    """(disk, directory disk, directory size, directory offset, where the record starts)
    from the ZIP64 end record that the locator at `locator_at` in `tail` points to."""
    _, end_disk, end_offset, disks = _ZIP64_LOCATOR.unpack_from(tail, locator_at)
    if end_disk != 0 or disks != 1:
        raise WheelMetadataError("multi-disk archives are not wheels")
    # The record sits right before its locator (any extensible data would come between).
    at = end_offset - (file_size - len(tail))
    if at < 0 or at + _ZIP64_END.size > locator_at:
        raise WheelMetadataError("the ZIP64 end record is not where its locator says")
    fields = _ZIP64_END.unpack_from(tail, at)
    if fields[0] != _ZIP64_END_SIGNATURE:
        raise WheelMetadataError("bad ZIP64 end record signature")
    return fields[4], fields[5], fields[8], fields[9], end_offset


def _zip64_values(extra: bytes, wanted: int) -> list[int]:
    """The first `wanted` 8-byte values of the ZIP64 extra field in an entry's `extra`."""
    position = 0
    while position + _EXTRA_HEADER.size <= len(extra):
        header_id, size = _EXTRA_HEADER.unpack_from(extra, position)
        start = position + _EXTRA_HEADER.size
        if header_id == _ZIP64_EXTRA_ID:
            if size < 8 * wanted or start + size > len(extra):
                raise WheelMetadataError("ZIP64 extra field cut short")
            return list(struct.unpack_from(f"<{wanted}Q", extra, start))
        position = start + size
    raise WheelMetadataError("a ZIP64 mark without its ZIP64 extra field")


def find_metadata_member(
    directory: bytes, directory_span: Span, wheel_filename: str
) -> MetadataMember:
    """The METADATA member named in the central directory `directory` (read at `directory_span`).

    Exactly one top-level `<name>-<version>.dist-info/METADATA` must match the wheel's own
    project name (the wheel spec; pip refuses a wheel whose .dist-info does not match).
    """
    if len(directory) != directory_span.length:
        raise WheelMetadataError("central directory bytes do not match its span")
    project = canonicalize_name(wheel_filename.split("-", 1)[0])
    offsets: list[int] = []
    found: list[tuple[int, int, int, int, int]] = []  # offset, compressed, size, crc, method
    position = 0
    while position < len(directory):
        if len(directory) - position < _ENTRY.size:
            raise WheelMetadataError("central directory entry cut short")
        entry = _ENTRY.unpack_from(directory, position)
        if entry[0] != _ENTRY_SIGNATURE:
            raise WheelMetadataError("bad central directory entry signature")
        flags, method, crc, compressed, size = entry[3], entry[4], entry[7], entry[8], entry[9]
        name_length, extra_length, comment_length, local_offset = (
            entry[10],
            entry[11],
            entry[12],
            entry[16],
        )
        name_start = position + _ENTRY.size
        raw_name = directory[name_start : name_start + name_length]
        extra_start = name_start + name_length
        position = extra_start + extra_length + comment_length
        if position > len(directory):
            raise WheelMetadataError("central directory entry runs past its end")
        if _ZIP64_MARK in (size, compressed, local_offset):
            extra = directory[extra_start : extra_start + extra_length]
            size, compressed, local_offset = _with_zip64(extra, size, compressed, local_offset)
        if local_offset >= directory_span.start:
            raise WheelMetadataError("a member starts inside the central directory")
        offsets.append(local_offset)
        match = _DIST_INFO.fullmatch(raw_name.decode("utf-8", errors="replace"))
        if match is None or canonicalize_name(match.group(1)) != project:
            continue
        if flags & _ENCRYPTED:
            raise WheelMetadataError("METADATA is encrypted")
        found.append((local_offset, compressed, size, crc, method))
    if len(found) != 1:
        raise WheelMetadataError(f"{len(found)} matching .dist-info/METADATA members, not 1")
    offset, compressed, size, crc, method = found[0]
    if size > MAX_METADATA_BYTES or compressed > MAX_METADATA_BYTES:
        raise WheelMetadataError(f"METADATA of {size} bytes is over the cap")
    # The member ends where the next one (or the directory) begins; never read further.
    following = [o for o in offsets if o > offset]
    end = min([*following, directory_span.start, offset + _MAX_LOCAL_HEADER + compressed])
    return MetadataMember(Span(offset, end), compressed, size, crc, method)


def _with_zip64(
    extra: bytes, size: int, compressed: int, local_offset: int
) -> tuple[int, int, int]:
    # APPNOTE 4.5.3: the extra field holds only the values marked 0xFFFFFFFF, in this order.
    marked = [value == _ZIP64_MARK for value in (size, compressed, local_offset)]
    values = iter(_zip64_values(extra, sum(marked)))
    size, compressed, local_offset = (
        next(values) if is_marked else value
        for value, is_marked in zip((size, compressed, local_offset), marked, strict=True)
    )
    return size, compressed, local_offset


def extract_metadata(data: bytes, member: MetadataMember) -> bytes:
    """METADATA's bytes, from `data` = the wheel's bytes over `member.span`."""
    if len(data) != member.span.length:
        raise WheelMetadataError("member bytes do not match its span")
    if len(data) < _LOCAL.size:
        raise WheelMetadataError("local header cut short")
    header = _LOCAL.unpack_from(data, 0)
    if header[0] != _LOCAL_SIGNATURE:
        raise WheelMetadataError("bad local header signature")
    start = _LOCAL.size + header[9] + header[10]
    compressed = data[start : start + member.compressed_size]
    if len(compressed) != member.compressed_size:
        raise WheelMetadataError("METADATA runs past its member")
    if member.method == _STORED:
        content = compressed
    elif member.method == _DEFLATED:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            # max_length stops a bomb at the cap whatever the declared size says.
            content = inflater.decompress(compressed, MAX_METADATA_BYTES + 1)
        except zlib.error as error:
            raise WheelMetadataError(f"METADATA does not inflate: {error}") from None
    else:
        raise WheelMetadataError(f"METADATA uses compression method {member.method}")
    if len(content) != member.size or zlib.crc32(content) != member.crc32:
        raise WheelMetadataError("METADATA does not match its size and CRC-32")
    return content
