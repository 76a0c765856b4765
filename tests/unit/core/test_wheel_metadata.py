import io
import struct
import zipfile

import pytest

from bodega.core.wheel_metadata import (
    MAX_METADATA_BYTES,
    TAIL_BYTES,
    WheelMetadataError,
    extract_metadata,
    find_metadata_member,
    locate_central_directory,
)
from tests.support.distributions import build_wheel

FILENAME = "demo-1.0-py3-none-any.whl"


def read_metadata(wheel: bytes, filename: str = FILENAME) -> bytes:
    """The three steps bodega runs over HTTP ranges, here over bytes in memory."""
    tail = wheel[-TAIL_BYTES:]
    directory_span = locate_central_directory(tail, len(wheel))
    directory = wheel[directory_span.start : directory_span.end]
    member = find_metadata_member(directory, directory_span, filename)
    return extract_metadata(wheel[member.span.start : member.span.end], member)


def make_zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_reads_the_metadata_of_a_zip64_wheel() -> None:
    """Issue 17: a ZIP64 wheel (over 4 GiB or 65,535 files) was refused outright."""
    built = build_wheel("demo", "1.0", requires=["six"], payload_size=100_000, zip64=True)
    tail = built.data[-TAIL_BYTES:]
    assert struct.pack("<I", 0x06064B50) in tail  # the ZIP64 end record is there
    assert zipfile.ZipFile(io.BytesIO(built.data)).read("demo-1.0.dist-info/METADATA") == (
        built.metadata
    )
    assert read_metadata(built.data) == built.metadata


def test_a_zip64_mark_without_its_record_or_extra_field_is_refused() -> None:
    built = build_wheel("demo", "1.0", zip64=True)
    end = built.data.rindex(struct.pack("<I", 0x06054B50))
    locator = end - 20
    no_locator = built.data[:locator] + b"\0" * 4 + built.data[locator + 4 :]
    ending = bytearray(no_locator)
    struct.pack_into("<I", ending, end + 16, 0xFFFFFFFF)  # directory offset: "see ZIP64"
    with pytest.raises(WheelMetadataError, match="ZIP64"):
        read_metadata(bytes(ending))
    # The central directory's ZIP64 extra field (id 1) renamed: its marks lead nowhere.
    directory = bytearray(built.data)
    entry = directory.index(b"PK\x01\x02")
    (name_length,) = struct.unpack_from("<H", directory, entry + 28)
    extra = entry + 46 + name_length
    assert directory[extra : extra + 2] == b"\x01\x00"
    directory[extra] = 0x99
    with pytest.raises(WheelMetadataError):
        read_metadata(bytes(directory))


def test_reads_the_exact_metadata_bytes_of_a_built_wheel() -> None:
    built = build_wheel("demo", "1.0", requires=["six"], payload_size=100_000)
    assert read_metadata(built.data) == built.metadata


def test_the_member_span_excludes_the_payload_of_a_large_wheel() -> None:
    built = build_wheel("demo", "1.0", payload_size=300_000)
    directory_span = locate_central_directory(built.data[-TAIL_BYTES:], len(built.data))
    directory = built.data[directory_span.start : directory_span.end]
    member = find_metadata_member(directory, directory_span, FILENAME)
    assert member.span.length < 1024
    assert member.span.start > 300_000


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_stored_and_deflated_members_both_read(method: int) -> None:
    metadata = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"
    wheel = make_zip({"demo/__init__.py": b"", "demo-1.0.dist-info/METADATA": metadata}, method)
    assert read_metadata(wheel) == metadata


def test_a_comment_after_the_directory_is_skipped() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("demo-1.0.dist-info/METADATA", b"Name: demo\n")
        archive.comment = b"x" * 60_000
    assert read_metadata(buffer.getvalue()) == b"Name: demo\n"


def test_a_dist_info_of_another_project_or_nested_is_not_taken() -> None:
    wheel = make_zip(
        {
            "other-1.0.dist-info/METADATA": b"Name: other\n",
            "demo/vendor/demo-1.0.dist-info/METADATA": b"Name: nested\n",
        }
    )
    with pytest.raises(WheelMetadataError, match="0 matching"):
        read_metadata(wheel)


def test_two_matching_dist_infos_are_refused() -> None:
    wheel = make_zip({"demo-1.0.dist-info/METADATA": b"a", "demo-2.0.dist-info/METADATA": b"b"})
    with pytest.raises(WheelMetadataError, match="2 matching"):
        read_metadata(wheel)


def test_path_traversal_names_never_match() -> None:
    wheel = make_zip({"../demo-1.0.dist-info/METADATA": b"x", "/demo-1.0.dist-info/METADATA": b"y"})
    with pytest.raises(WheelMetadataError, match="0 matching"):
        read_metadata(wheel)


def test_a_zip_bomb_stops_at_the_cap() -> None:
    bomb = b"\0" * (MAX_METADATA_BYTES + 10)
    wheel = make_zip({"demo-1.0.dist-info/METADATA": bomb})
    with pytest.raises(WheelMetadataError, match="over the cap"):
        read_metadata(wheel)


def test_a_bomb_that_lies_about_its_size_stops_at_the_cap() -> None:
    bomb = b"\0" * (MAX_METADATA_BYTES + 10)
    wheel = bytearray(make_zip({"demo-1.0.dist-info/METADATA": bomb}))
    # Rewrite the central directory's uncompressed size to something innocent.
    entry = wheel.index(struct.pack("<I", 0x02014B50))
    struct.pack_into("<I", wheel, entry + 24, 100)
    with pytest.raises(WheelMetadataError, match="size and CRC"):
        read_metadata(bytes(wheel))


def test_a_corrupted_member_fails_its_crc() -> None:
    metadata = b"Name: demo\nVersion: 1.0\n"
    wheel = bytearray(make_zip({"demo-1.0.dist-info/METADATA": metadata}, zipfile.ZIP_STORED))
    at = wheel.index(b"Version")
    wheel[at] ^= 0xFF
    with pytest.raises(WheelMetadataError, match="CRC"):
        read_metadata(bytes(wheel))


def test_not_a_zip_is_refused() -> None:
    with pytest.raises(WheelMetadataError, match="no end of central directory"):
        read_metadata(b"\0" * 1000)


def test_a_directory_offset_beyond_the_file_is_refused() -> None:
    wheel = bytearray(make_zip({"demo-1.0.dist-info/METADATA": b"x"}))
    end = wheel.rindex(struct.pack("<I", 0x06054B50))
    struct.pack_into("<I", wheel, end + 16, 10**9)
    with pytest.raises(WheelMetadataError, match="overlaps"):
        read_metadata(bytes(wheel))


def test_a_member_offset_inside_the_directory_is_refused() -> None:
    wheel = bytearray(make_zip({"demo-1.0.dist-info/METADATA": b"x"}))
    entry = wheel.index(struct.pack("<I", 0x02014B50))
    struct.pack_into("<I", wheel, entry + 42, entry)
    with pytest.raises(WheelMetadataError, match="inside the central directory"):
        read_metadata(bytes(wheel))


def test_a_truncated_directory_is_refused() -> None:
    wheel = bytearray(make_zip({"demo-1.0.dist-info/METADATA": b"x"}))
    end = wheel.rindex(struct.pack("<I", 0x06054B50))
    size = struct.unpack_from("<I", wheel, end + 12)[0]
    struct.pack_into("<I", wheel, end + 12, size - 10)
    with pytest.raises(WheelMetadataError):
        read_metadata(bytes(wheel))
