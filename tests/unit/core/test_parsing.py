import contextlib
import json
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.utils import NormalizedName

from bodega.core.model import ProjectPage
from bodega.core.parsing import (
    HTML,
    JSON_V1,
    PageFormatError,
    parse_project_page,
)

PAGE_URL = "https://index.test/simple/demo/"
SHA = "a" * 64
NAME = NormalizedName("demo")


def html_page(*anchors: str) -> bytes:
    return ("<html><body>" + "".join(anchors) + "</body></html>").encode()


def test_html_page_keeps_everything_upstream_says_about_a_file() -> None:
    body = html_page(
        f'<a href="../../packages/demo-1.0-py3-none-any.whl#sha256={SHA}" '
        'data-requires-python="&gt;=3.8,&lt;4" data-yanked="bad &quot;build&quot;" '
        f'data-dist-info-metadata="sha256={"b" * 64}">demo-1.0-py3-none-any.whl</a>'
    )
    (file,) = parse_project_page(body, HTML, PAGE_URL, NAME).files
    assert file.url == "https://index.test/packages/demo-1.0-py3-none-any.whl"
    assert file.sha256 == SHA
    assert file.requires_python == ">=3.8,<4"
    assert file.yanked == 'bad "build"'
    assert file.metadata_sha256 == "b" * 64


def test_html_prefers_core_metadata_over_the_old_key() -> None:
    """PEP 714: both keys present; data-core-metadata wins."""
    body = html_page(
        f'<a href="/f/demo-1.0.tar.gz" data-core-metadata="sha256={"c" * 64}" '
        f'data-dist-info-metadata="sha256={"d" * 64}">x</a>'
    )
    (file,) = parse_project_page(body, HTML, PAGE_URL, NAME).files
    assert file.metadata_sha256 == "c" * 64


def test_bare_yanked_and_metadata_true() -> None:
    body = html_page('<a href="/f/demo-1.0.tar.gz" data-yanked data-core-metadata="true">x</a>')
    (file,) = parse_project_page(body, HTML, PAGE_URL, NAME).files
    assert file.yanked is True
    assert file.core_metadata is True
    assert file.metadata_sha256 is None


def test_base_href_is_honoured() -> None:
    body = b'<html><head><base href="https://files.test/x/"></head><a href="demo-1.0.tar.gz">d</a>'
    (file,) = parse_project_page(body, HTML, PAGE_URL, NAME).files
    assert file.url == "https://files.test/x/demo-1.0.tar.gz"


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        "data:text/plain,x",
        "file:///etc/passwd",
        "https://a:b@host.test/demo-1.0.tar.gz",
        "https://host.test/%2e%2e%2fdemo.tar.gz",
        "https://host.test/a%2fb.tar.gz",
        "https://host.test/",
    ],
)
def test_links_to_odd_targets_are_dropped(href: str) -> None:
    """Threat 19."""
    page = parse_project_page(html_page(f'<a href="{href}">x</a>'), HTML, PAGE_URL, NAME)
    assert page.files == ()


@pytest.mark.parametrize(
    ("fragment", "hashes"),
    [
        (f"sha256={SHA.upper()}", {"sha256": SHA}),
        ("sha256=", {}),
        (f"sha256={SHA}=x", {}),
        ("md5=" + "0" * 32, {"md5": "0" * 32}),
        ("sha256=zz", {}),
    ],
)
def test_hash_fragments_are_checked(fragment: str, hashes: dict[str, str]) -> None:
    """Threat 21: malformed hashes are dropped, upper-case hex is folded."""
    page = parse_project_page(
        html_page(f'<a href="/demo-1.0.tar.gz#{fragment}">x</a>'), HTML, PAGE_URL, NAME
    )
    assert page.files[0].hashes == hashes


def test_duplicate_filenames_with_different_hashes_are_skipped() -> None:
    body = html_page(
        f'<a href="/a/demo-1.0.tar.gz#sha256={SHA}">x</a>',
        f'<a href="/b/demo-1.0.tar.gz#sha256={"f" * 64}">x</a>',
        '<a href="/demo-2.0.tar.gz">x</a>',
    )
    page = parse_project_page(body, HTML, PAGE_URL, NAME)
    assert [f.filename for f in page.files] == ["demo-2.0.tar.gz"]


def test_json_page_with_every_pep_field() -> None:
    document = {
        "meta": {"api-version": "1.1", "_last-serial": "42"},
        "name": "demo",
        "versions": ["1.0"],
        "project-status": {"status": "archived", "reason": "old"},
        "files": [
            {
                "filename": "demo-1.0-py3-none-any.whl",
                "url": "https://files.test/p/demo-1.0-py3-none-any.whl",
                "hashes": {"sha256": SHA},
                "requires-python": ">=3.8",
                "size": 10,
                "upload-time": "2026-01-02T03:04:05.000000Z",
                "yanked": "broken",
                "core-metadata": {"sha256": "e" * 64},
                "provenance": "https://index.test/integrity/demo/1.0/x/provenance",
            }
        ],
    }
    page = parse_project_page(json.dumps(document).encode(), JSON_V1, PAGE_URL, NAME)
    (file,) = page.files
    assert (file.size, file.upload_time, file.yanked) == (
        10,
        "2026-01-02T03:04:05.000000Z",
        "broken",
    )
    assert file.metadata_sha256 == "e" * 64
    assert file.provenance is not None
    assert page.versions == ("1.0",)
    assert page.status is not None
    assert page.status.status == "archived"
    assert page.last_serial == 42


def test_json_entries_with_wrong_types_are_skipped_one_by_one() -> None:
    """Threat 21: per-file tolerance, never a failed page."""
    files = [
        {"filename": 1, "url": "x"},
        {"filename": "demo-1.0.tar.gz"},
        "nonsense",
        {"filename": "demo-1.0.tar.gz", "url": "/other-name.tar.gz"},
        {"filename": "demo-2.0.tar.gz", "url": "/demo-2.0.tar.gz", "size": "big", "yanked": 3},
    ]
    body = json.dumps({"meta": {"api-version": "1.0"}, "name": "demo", "files": files}).encode()
    (file,) = parse_project_page(body, JSON_V1, PAGE_URL, NAME).files
    assert (file.filename, file.size, file.yanked) == ("demo-2.0.tar.gz", None, False)


@pytest.mark.parametrize("body", [b"", b"\xff\xfe", b"[]", b'{"files": 3}', b"<html>"])
def test_unreadable_json_pages_are_a_clear_error(body: bytes) -> None:
    with pytest.raises(PageFormatError):
        parse_project_page(body, JSON_V1, PAGE_URL, NAME)


def test_an_unknown_content_type_is_an_error() -> None:
    """Threat 17: a captive portal's page is never taken for an index page."""
    with pytest.raises(PageFormatError):
        parse_project_page(b"{}", "application/json", PAGE_URL, NAME)


def test_the_record_round_trips() -> None:
    body = html_page(f'<a href="/demo-1.0.tar.gz#sha256={SHA}" data-yanked="">x</a>')
    page = parse_project_page(body, HTML, PAGE_URL, NAME)
    assert ProjectPage.from_record(json.loads(json.dumps(page.to_record()))) == page


@settings(max_examples=200)
@given(st.binary(max_size=2000))
def test_any_html_bytes_parse_without_crashing(body: bytes) -> None:
    """Threat 20/21 as a property: hostile HTML is data, never an exception."""
    parse_project_page(body, HTML, PAGE_URL, NAME)


@settings(max_examples=200)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
    )
)
def test_any_json_parses_to_a_page_or_a_format_error(value: object) -> None:
    body = json.dumps({"files": [value], "versions": value, "project-status": value}).encode()
    with contextlib.suppress(PageFormatError):
        parse_project_page(body, JSON_V1, PAGE_URL, NAME)


LINKS = [
    "demo-1.0.tar.gz",
    "./demo-1.0.tar.gz",
    "../../files/demo/demo-1.0.tar.gz",
    "/files/demo/demo-1.0.tar.gz",
    "../a/./b/../demo-1.0.tar.gz",
    "../../../../../../demo-1.0.tar.gz",
    "//mirror.test/files/demo-1.0.tar.gz",
    "https://files.test/packages/ab/cd/demo-1.0.tar.gz",
    "http://files.test:8080/p/demo-1.0.tar.gz",
    "https://files.test/a/../b/./demo-1.0.tar.gz",
    "https://files.test/p/demo-1.0.tar.gz?",
    "https://files.test/p/demo-1.0.tar.gz?token=x/y",
    "https://files.test/p;v=1/demo-1.0.tar.gz",
    "files/demo-1.0.tar.gz?a=/demo-1.0.tar.gz",
    "files%2Fx/demo%2D1.0.tar.gz",
    "HTTPS://files.test/p/demo-1.0.tar.gz",
    "ftp://files.test/demo-1.0.tar.gz",
    "https://user:pw@files.test/demo-1.0.tar.gz",
    "https://files.test/p/demo\t-1.0.tar.gz",
    "\\files\\demo-1.0.tar.gz",
    "https:///files/demo-1.0.tar.gz",
    "http:/files/demo-1.0.tar.gz",
    "http:demo-1.0.tar.gz",
    "https://files.test",
]


@pytest.mark.parametrize("base", [PAGE_URL, "https://index.test/simple/demo", "http://h:1/"])
def test_file_urls_are_exactly_what_urljoin_gives(base: str) -> None:
    """Links are joined without urljoin where it cannot change them (its cost was two thirds
    of parsing a large page): every link, plain or odd, ends as urljoin would have it."""
    for _ in range(2):  # the second time from the joined directories kept
        for link in LINKS:
            body = json.dumps(
                {
                    "meta": {"api-version": "1.0"},
                    "name": "demo",
                    "files": [{"filename": "demo-1.0.tar.gz", "url": link, "hashes": {}}],
                }
            ).encode()
            files = parse_project_page(body, JSON_V1, base, NAME).files
            expected = urljoin(base, link)
            parts = urlsplit(expected)
            is_followed = (
                parts.scheme in ("http", "https")
                and bool(parts.hostname)
                and parts.username is None
                and unquote(parts.path.rsplit("/", 1)[-1]) == "demo-1.0.tar.gz"
            )
            assert [f.url for f in files] == ([expected] if is_followed else []), link
