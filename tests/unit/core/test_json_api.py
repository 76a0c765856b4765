"""The JSON API document, field by field against what the public index renders.

`json_api_data/` holds real METADATA / PKG-INFO files (from `pip download --no-deps`) and,
beside each, the `info` warehouse renders for that upload, written by `make_expected.py`
(its docstring says how) from warehouse's own code, not from bodega's.
"""

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.utils import NormalizedName

from bodega.core.core_metadata import parse_core_metadata
from bodega.core.filenames import spelled_version
from bodega.core.json_api import (
    ApiUrls,
    find_version,
    group_releases,
    render_json_api,
)
from bodega.core.model import DistributionFile, ProjectPage
from bodega.core.releases import latest_version

DATA = Path(__file__).parent / "json_api_data"
URLS = ApiUrls("http://bodega.test/files/", "http://bodega.test/+project/")
# Fields whose value points at bodega rather than at the public index.
BODEGA_URLS = {"package_url", "project_url", "release_url"}


def _file(filename: str, **fields: object) -> DistributionFile:
    defaults: dict[str, object] = {
        "url": f"https://files.test/{filename}",
        "hashes": {"sha256": "a" * 64},
        "size": 10,
        "upload_time": "2024-02-03T04:05:06.123456Z",
    }
    return DistributionFile(filename, **{**defaults, **fields})  # type: ignore[arg-type]


def _document(page: ProjectPage, version: str | None, metadata: bytes | None) -> dict:  # type: ignore[type-arg]
    parsed = None if metadata is None else parse_core_metadata(metadata)
    body = render_json_api(page, group_releases(page), version, parsed, URLS, with_releases=True)
    assert body.endswith(b"\n")
    return json.loads(body)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "source",
    sorted(p.name for p in DATA.iterdir() if p.name.endswith(("METADATA", "PKG-INFO"))),
)
def test_info_matches_the_public_index_field_by_field(source: str) -> None:
    expected = json.loads((DATA / f"{source}.expected.json").read_text("utf-8"))
    project, version = source.split("-", maxsplit=1)[0], expected["version"]
    page = ProjectPage(
        NormalizedName(project.replace("_", "-")), (_file(f"{project}-{version}.tar.gz"),)
    )
    info = _document(page, version, (DATA / source).read_bytes())["info"]
    assert set(info) - BODEGA_URLS == set(expected)
    for field, value in expected.items():
        assert (field, info[field]) == (field, value)


def test_the_document_is_utf8_with_sorted_keys() -> None:
    page = ProjectPage(NormalizedName("pypinyin"), (_file("pypinyin-0.55.0.tar.gz"),))
    metadata = (DATA / "pypinyin-0.55.0.METADATA").read_bytes()
    releases = group_releases(page)
    info = parse_core_metadata(metadata)
    body = render_json_api(page, releases, "0.55.0", info, URLS, with_releases=False)
    assert "汉字拼音转换模块".encode() in body  # not \u escapes, as warehouse sends it
    document = json.loads(body)
    assert list(document) == sorted(document)
    assert list(document["info"]) == sorted(document["info"])


def test_releases_hold_every_listed_file_keyed_as_upstream_spells_the_version() -> None:
    files = (
        _file("pytz-2004d.tar.bz2"),
        _file("pytz-2004d-py2.4.egg"),
        _file("pytz-2004d.win32.exe"),
        _file("pytz-2024.1-py2.py3-none-any.whl"),
        _file("pytz-2024.1.tar.gz"),
    )
    page = ProjectPage(NormalizedName("pytz"), files, versions=("2004d", "2004e", "2024.1"))
    releases = _document(page, None, None)["releases"]
    assert {v: sorted(f["filename"] for f in fs) for v, fs in releases.items()} == {
        "2004d": ["pytz-2004d-py2.4.egg", "pytz-2004d.tar.bz2", "pytz-2004d.win32.exe"],
        "2004e": [],  # listed with no files
        "2024.1": ["pytz-2024.1-py2.py3-none-any.whl", "pytz-2024.1.tar.gz"],
    }
    kinds = {f["filename"]: (f["packagetype"], f["python_version"]) for f in releases["2004d"]}
    assert kinds == {
        "pytz-2004d.tar.bz2": ("sdist", "source"),
        "pytz-2004d-py2.4.egg": ("bdist_egg", "2.4"),
        "pytz-2004d.win32.exe": ("bdist_wininst", "any"),
    }
    assert latest_version(group_releases(page)) == "2024.1"


def test_a_release_is_found_by_its_spelling_or_its_canonical_version() -> None:
    page = ProjectPage(NormalizedName("setuptools"), (_file("setuptools-0.6c11.tar.gz"),))
    releases = group_releases(page)
    assert list(releases) == ["0.6c11"]
    assert find_version(releases, "0.6c11") == "0.6c11"
    assert find_version(releases, "0.6rc11") == "0.6c11"
    assert find_version(releases, "0.7") is None


def test_file_entries_carry_every_known_digest_and_warehouse_fields() -> None:
    hashes = {"sha256": "a" * 64, "md5": "b" * 32, "blake2b_256": "c" * 64}
    page = ProjectPage(NormalizedName("demo"), (_file("demo-1.0-py3-none-any.whl", hashes=hashes),))
    (entry,) = _document(page, "1.0", None)["urls"]
    assert entry["digests"] == hashes
    assert entry["md5_digest"] == "b" * 32
    assert entry["upload_time"] == "2024-02-03T04:05:06"
    assert entry["upload_time_iso_8601"] == "2024-02-03T04:05:06.123456Z"
    assert (entry["has_sig"], entry["downloads"], entry["comment_text"]) == (False, -1, None)
    assert entry["url"] == "http://bodega.test/files/demo/demo-1.0-py3-none-any.whl"


def test_urls_and_name_come_from_the_project_and_its_metadata() -> None:
    page = ProjectPage(
        NormalizedName("typing-extensions"), (_file("typing_extensions-4.16.0.tar.gz"),)
    )
    metadata = (DATA / "typing_extensions-4.16.0.METADATA").read_bytes()
    info = _document(page, "4.16.0", metadata)["info"]
    assert info["name"] == "typing_extensions"  # the project's own spelling
    assert (
        info["package_url"]
        == info["project_url"]
        == "http://bodega.test/+project/typing-extensions"
    )
    assert info["release_url"] == "http://bodega.test/+project/typing-extensions#4.16.0"


def test_without_metadata_info_has_the_shape_of_an_upload_that_declared_nothing() -> None:
    page = ProjectPage(NormalizedName("demo"), (_file("demo-1.0.tar.gz", requires_python=">=3.9"),))
    info = _document(page, "1.0", None)["info"]
    with_metadata = _document(page, "1.0", b"Metadata-Version: 2.1\nName: Demo\nVersion: 1.0\n")
    assert set(info) == set(with_metadata["info"])
    assert (info["name"], info["version"], info["requires_python"]) == ("demo", "1.0", ">=3.9")
    assert (info["requires_dist"], info["summary"], info["classifiers"]) == (None, None, [])


@given(
    st.lists(st.text(alphabet="ab-_.1209cwinegzrpmhlx", min_size=1, max_size=30), max_size=20),
    st.lists(st.text(alphabet="ab.1209c", min_size=1, max_size=8), max_size=6),
)
def test_every_file_with_a_version_part_is_in_releases(
    stems: list[str], versions: list[str]
) -> None:
    suffixes = (".tar.gz", ".whl", ".egg", ".exe", ".zip", ".rpm")
    names = {f"{stem}{suffixes[n % len(suffixes)]}" for n, stem in enumerate(stems)}
    files = tuple(_file(name) for name in sorted(names))
    page = ProjectPage(NormalizedName("ab"), files, versions=tuple(dict.fromkeys(versions)))
    document = _document(page, None, None)
    listed = [f["filename"] for entries in document["releases"].values() for f in entries]
    assert sorted(listed) == sorted(n for n in names if spelled_version(n, "ab") is not None)
    assert set(page.versions) <= set(document["releases"])
