"""PKG-INFO from an sdist archive: tar (gz, bz2) and zip, bounded, never extracted."""

import contextlib
import io
import tarfile
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bodega.core.sdist_metadata import SdistMetadataError, is_readable_sdist, read_pkg_info
from bodega.core.wheel_metadata import MAX_METADATA_BYTES

_TAR_MODES = {"x-1.tar.gz": "w:gz", "x-1.tar.bz2": "w:bz2", "x-1.tar": "w"}
PKG_INFO = "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nSummary: Überall\n".encode()


def _tar(members: list[tuple[str, bytes]], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:  # type: ignore[call-overload]
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        # hatchling writes PKG-INFO last, after every other member
        ("demo-1.0.tar.gz", _tar([("demo-1.0/demo.py", b"x"), ("demo-1.0/PKG-INFO", PKG_INFO)])),
        ("demo-1.0.tar.bz2", _tar([("demo-1.0/PKG-INFO", PKG_INFO)], "w:bz2")),
        ("demo-1.0.zip", _zip([("demo-1.0/setup.py", b""), ("demo-1.0/PKG-INFO", PKG_INFO)])),
    ],
)
def test_pkg_info_is_read_from_tar_and_zip_sdists(filename: str, data: bytes) -> None:
    assert is_readable_sdist(filename)
    assert read_pkg_info(io.BytesIO(data), filename) == PKG_INFO


def test_only_the_top_level_pkg_info_counts_whatever_the_member_names() -> None:
    hostile = [
        ("../PKG-INFO", b"no"),
        ("/PKG-INFO", b"no"),
        ("demo-1.0/demo.egg-info/PKG-INFO", b"no"),
        ("./demo-1.0/PKG-INFO", PKG_INFO),
    ]
    assert read_pkg_info(io.BytesIO(_tar(hostile)), "demo-1.0.tar.gz") == PKG_INFO
    with pytest.raises(SdistMetadataError, match="no PKG-INFO"):
        read_pkg_info(io.BytesIO(_zip(hostile[:3])), "demo-1.0.zip")


@pytest.mark.parametrize("filename", ["bomb-1.0.tar.gz", "bomb-1.0.zip"])
def test_a_pkg_info_over_the_cap_is_refused_not_inflated(filename: str) -> None:
    members = [("bomb-1.0/PKG-INFO", bytes(MAX_METADATA_BYTES + 1))]
    data = _zip(members) if filename.endswith(".zip") else _tar(members)
    assert len(data) < MAX_METADATA_BYTES // 100  # zeros compress a thousandfold
    with pytest.raises(SdistMetadataError, match="over the cap"):
        read_pkg_info(io.BytesIO(data), filename)


@pytest.mark.parametrize("filename", ["demo-1.0.tar.gz", "demo-1.0.zip", "demo-1.0.egg"])
def test_garbage_is_a_clear_error(filename: str) -> None:
    with pytest.raises(SdistMetadataError):
        read_pkg_info(io.BytesIO(b"\x1f\x8b not really an archive"), filename)


@settings(max_examples=300)
@given(
    st.sampled_from(["x-1.tar.gz", "x-1.zip", "x-1.tar.bz2", "x-1.tar"]),
    st.binary(max_size=600),
    st.integers(min_value=0, max_value=400),
)
def test_corrupt_archives_are_a_clear_error(filename: str, noise: bytes, at: int) -> None:
    """Valid archives with bytes overwritten, and pure noise: PKG-INFO or SdistMetadataError."""
    members = [("x-1/PKG-INFO", PKG_INFO)]
    valid = _zip(members) if filename.endswith(".zip") else _tar(members, _TAR_MODES[filename])
    for data in (noise, valid[:at] + noise + valid[at + len(noise) :]):
        with contextlib.suppress(SdistMetadataError):
            read_pkg_info(io.BytesIO(data), filename)
