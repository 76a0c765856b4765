"""Reading METADATA / PKG-INFO as the core metadata specification says (issue 16, item 1)."""

import json

from hypothesis import given
from hypothesis import strategies as st
from packaging.utils import NormalizedName

from bodega.core.core_metadata import parse_core_metadata
from bodega.core.json_api import ApiUrls, group_releases, render_json_api
from bodega.core.model import DistributionFile, ProjectPage


def test_non_ascii_fields_are_decoded_as_utf8_not_replaced() -> None:
    data = (
        "Metadata-Version: 2.4\nName: fastapi\nVersion: 1.0\n"
        "Author-Email: Sebastián Ramírez <s@example.test>\n"
        "Summary: 汉字拼音转换模块/工具.\nAuthor: mozillazg, 闲耘\n\nBody é\n"
    ).encode()
    metadata = parse_core_metadata(data)
    assert metadata["author_email"] == "Sebastián Ramírez <s@example.test>"
    assert metadata["summary"] == "汉字拼音转换模块/工具."
    assert metadata["author"] == "mozillazg, 闲耘"
    assert metadata["description"] == "Body é\n"


def test_folded_fields_are_unfolded_and_multiple_use_fields_are_lists() -> None:
    data = (
        b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"
        b"Summary: a summary folded\n  onto two lines\n"
        b"Classifier: Topic :: Utilities\nClassifier: Programming Language :: Python\n"
        b"Requires-Dist: six\nRequires-Dist: attrs; extra == 'x'\n"
        b"Project-URL: Source, https://example.test/src\n"
    )
    metadata = parse_core_metadata(data)
    assert metadata["summary"] == "a summary folded onto two lines"
    assert metadata["classifiers"] == ["Topic :: Utilities", "Programming Language :: Python"]
    assert metadata["requires_dist"] == ["six", "attrs; extra == 'x'"]
    assert metadata["project_urls"] == {"Source": "https://example.test/src"}


def test_a_header_description_loses_its_continuation_indent() -> None:
    data = (
        b"Metadata-Version: 1.1\nName: demo\nVersion: 1.0\n"
        b"Description: First line\n        second line\n        \n"
        b"       |    indented code\n"
        b"Platform: UNKNOWN\n"
    )
    metadata = parse_core_metadata(data)
    assert metadata["description"] == "First line\nsecond line\n\n    indented code"
    assert metadata["platforms"] == ["UNKNOWN"]


def test_a_body_description_is_kept_exactly() -> None:
    body = "# Title\n\n        code block\n"
    data = f"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n\n{body}".encode()
    assert parse_core_metadata(data)["description"] == body


def test_fields_packaging_leaves_unparsed_are_still_read() -> None:
    data = (
        b"Metadata-Version: 1.0\nName: demo\nVersion: 1.0\n"
        b"Summary: first\nSummary: second\nAuthor: Andr\xe9\n"
    )
    metadata = parse_core_metadata(data)
    assert metadata["summary"] == "first"
    assert metadata["author"] == "André"  # Latin-1, as packaging reads what is not UTF-8


@given(st.binary(max_size=2000))
def test_any_bytes_read_and_render_without_crashing(data: bytes) -> None:
    """A hostile METADATA / PKG-INFO gives fields or none, never an exception."""
    metadata = parse_core_metadata(data)
    assert all(isinstance(v, (str, list, dict)) for v in metadata.values())
    page = ProjectPage(NormalizedName("x"), (DistributionFile("x-1.tar.gz", "https://f.test/x"),))
    urls = ApiUrls("http://b.test/files/", "http://b.test/+project/")
    body = render_json_api(page, group_releases(page), "1", metadata, urls, with_releases=True)
    assert json.loads(body)["info"]["version"] == "1"


def test_a_body_that_is_not_utf8_is_shown_with_replacement_characters() -> None:
    metadata = parse_core_metadata(b"Metadata-Version: 2.1\nName: x\n\n\xff body")
    assert metadata["description"] == "\ufffd body"


@given(
    st.lists(
        st.sampled_from(
            [
                "Name",
                "Summary",
                "Description",
                "Keywords",
                "Project-URL",
                "Dynamic",
                "Requires-Dist",
                "Requires-Python",
                "License-Expression",
                "Provides-Extra",
                "Platform",
                "Classifier",
            ]
        ),
        max_size=8,
    ),
    st.text(max_size=40),
)
def test_any_header_values_read_and_render_without_crashing(names: list[str], value: str) -> None:
    text = "".join(f"{name}: {value}\n" for name in names) + "\n" + value
    metadata = parse_core_metadata(text.encode("utf-8", "surrogatepass"))
    page = ProjectPage(NormalizedName("x"), (DistributionFile("x-1.tar.gz", "https://f.test/x"),))
    urls = ApiUrls("http://b.test/files/", "http://b.test/+project/")
    render_json_api(page, group_releases(page), "1", metadata, urls, with_releases=False)
