"""Property-based tests (hypothesis) of the pure parts that meet hostile input: names and
filenames (scenarios 2-6), the page parsers on hostile and huge pages (scenarios 19-21) and
Accept negotiation (scenario 10). Range parsing is fuzzed through the live server in
test_fuzz_routes.py, since aiohttp's FileResponse owns it."""

import contextlib
import json
import string
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.utils import canonicalize_name

from bodega.core.names import MAX_FILENAME_BYTES, normalize_project_name, validate_filename
from bodega.core.negotiation import choose_media_type
from bodega.core.parsing import (
    HTML,
    HTML_V1,
    JSON_V1,
    MAX_FILES_PER_PAGE,
    PageFormatError,
    parse_project_page,
)
from bodega.errors import BodegaError, InvalidName

PAGE_URL = "https://index.example/simple/demo/"
NAME = canonicalize_name("demo")
OFFERS = {HTML, HTML_V1, JSON_V1}

hostile_text = st.text(
    st.characters(codec="utf-8") | st.sampled_from("/\\%.\x00\r\n\"'<>&#?=:@ \t\u202e\u200d"),
    max_size=80,
)


@given(hostile_text)
def test_a_valid_filename_is_one_safe_segment(raw: str) -> None:
    """Scenarios 2 and 5: whatever passes validation has no separator, no dot segment, no
    control or percent character, and fits one filesystem name."""
    try:
        filename = validate_filename(raw)
    except InvalidName:
        return
    assert filename == raw
    assert not set(filename) & set("/\\%\x00\r\n\t ?#:@<>\"'")
    assert ".." not in filename
    assert len(filename.encode()) <= MAX_FILENAME_BYTES
    assert filename.isascii()


@given(hostile_text)
def test_a_normalized_name_is_its_own_normal_form(raw: str) -> None:
    """Scenarios 3, 6, 8: normalizing is idempotent and the result needs no escaping in a
    URL or a header (so a redirect built from it cannot loop or inject)."""
    try:
        name = normalize_project_name(raw)
    except InvalidName:
        return
    assert normalize_project_name(name) == name
    assert set(name) <= set(string.ascii_lowercase + string.digits + "-")
    assert not name.startswith("-")
    assert not name.endswith("-")


hrefs = st.one_of(
    hostile_text,
    st.sampled_from(
        [
            "https://evil.example/x.whl",
            "../../../x-1.0.tar.gz",
            "javascript:alert(1)//x-1.0.tar.gz",
            "data:text/plain,x-1.0.tar.gz",
            "file:///etc/passwd",
            "https://a:b@host.example/x-1.0.tar.gz",
            "https://files.example/x%2F..%2Fy-1.0.tar.gz",
            "https://files.example/..%2Fx-1.0.tar.gz",
            "//other.example/x-1.0.tar.gz#sha256=" + "a" * 64,
            "x-1.0.tar.gz#sha256=",
            "x-1.0.tar.gz#sha256=a=b",
            "x-1.0.tar.gz#md5=" + "A" * 32,
        ]
    ),
)


@given(st.lists(st.tuples(hrefs, hostile_text, hostile_text), max_size=20))
def test_any_link_on_an_html_page_yields_a_safe_file_or_nothing(
    anchors: list[tuple[str, str, str]],
) -> None:
    """Scenarios 19 and 21: every file bodega keeps has an http(s) URL without userinfo, a
    filename that is the validated basename of that URL, and well-formed hashes."""
    body = "".join(
        f'<a href="{href.replace(chr(34), "&quot;")}" data-yanked="{yanked.replace(chr(34), "")}"'
        f' data-requires-python="{rp.replace(chr(34), "")}">{rp}</a>'
        for href, yanked, rp in anchors
    )
    page = parse_project_page(body.encode(), HTML, PAGE_URL, NAME)
    for file in page.files:
        parts = urlsplit(file.url)
        assert parts.scheme in ("http", "https")
        assert parts.username is None
        assert parts.password is None
        assert validate_filename(file.filename) == file.filename
        assert unquote(parts.path.rsplit("/", 1)[-1]) == file.filename
        for algorithm, digest in file.hashes.items():
            assert digest == digest.lower()
            assert all(c in "0123456789abcdef" for c in digest), algorithm


short_text = st.text(max_size=12) | st.sampled_from(["x-1.0.tar.gz", "https://f.example/x.whl"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | short_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(short_text, children, max_size=4)
    ),
    max_leaves=8,
)


@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(
                ["filename", "url", "hashes", "size", "yanked", "core-metadata", "requires-python"]
            ),
            json_values,
        ),
        max_size=10,
    )
)
@settings(max_examples=60)
def test_hostile_json_entries_are_skipped_one_by_one(entries: list[dict[str, object]]) -> None:
    """Scenario 21: wrong types in any field skip that file, never fail the page."""
    body = json.dumps({"meta": {"api-version": "1.1"}, "files": entries}).encode()
    page = parse_project_page(body, JSON_V1, PAGE_URL, NAME)
    assert len(page.files) <= len(entries)


@pytest.mark.parametrize("opener", [b"[", b'{"a":', b'{"files":['])
def test_deeply_nested_json_is_a_format_error_not_a_crash(opener: bytes) -> None:
    """Scenario 20: json.loads recurses per level; 100k levels are 100 KB of input."""
    with pytest.raises(PageFormatError):
        parse_project_page(opener * 100_000, JSON_V1, PAGE_URL, NAME)


def test_deeply_nested_html_is_just_data() -> None:
    """Scenario 20: the HTML parser does not recurse; nesting costs nothing."""
    body = b"<div>" * 100_000 + b'<a href="x-1.0.tar.gz">x</a>' + b"</div>" * 100_000
    page = parse_project_page(body, HTML, PAGE_URL, NAME)
    assert [f.filename for f in page.files] == ["x-1.0.tar.gz"]


@pytest.mark.parametrize("media_type", [HTML, JSON_V1])
def test_a_page_over_the_link_cap_is_refused_whole(media_type: str) -> None:
    """Scenario 20: a page listing more files than MAX_FILES_PER_PAGE is refused (502 at the
    edge), not silently cut, which would hide the newest releases."""
    count = MAX_FILES_PER_PAGE + 1
    body = b"<a>" * count if media_type == HTML else json.dumps({"files": [{}] * count}).encode()
    with pytest.raises(PageFormatError):
        parse_project_page(body, media_type, PAGE_URL, NAME)


@given(st.binary(max_size=2000))
def test_invalid_utf8_never_crashes_either_parser(body: bytes) -> None:
    """Scenario 21: invalid UTF-8 is replaced in HTML and a format error in JSON."""
    for media_type in (HTML, JSON_V1):
        with contextlib.suppress(PageFormatError):
            parse_project_page(body, media_type, PAGE_URL, NAME)


@given(st.text(max_size=300), st.none() | hostile_text)
def test_negotiation_always_picks_an_offer(accept: str, format_param: str | None) -> None:
    """Scenario 10: any Accept header (and ?format=) gives one of the three offers."""
    assert choose_media_type(accept, format_param) in OFFERS


media_ranges = st.sampled_from(
    [
        JSON_V1,
        HTML_V1,
        HTML,
        "application/vnd.pypi.simple.latest+json",
        "*/*",
        "text/*",
        "application/*",
        "image/png",
        "application/json",
    ]
)


@given(
    st.lists(
        st.tuples(media_ranges, st.sampled_from(["", ";q=0", ";q=0.5", ";q=1", ";q=0.001"])),
        min_size=1,
        max_size=6,
    )
)
def test_json_only_when_the_client_accepts_it(ranges: list[tuple[str, str]]) -> None:
    """Scenario 10: JSON goes only to a client that named a JSON type (or a wildcard that
    covers it) with q > 0, and never when it gave JSON q=0 explicitly."""
    accept = ", ".join(media + q for media, q in ranges)
    chosen = choose_media_type(accept)
    if chosen == JSON_V1:
        json_ranges = [
            (m, q)
            for m, q in ranges
            if m in (JSON_V1, "application/vnd.pypi.simple.latest+json", "*/*", "application/*")
        ]
        assert any(q != ";q=0" for _, q in json_ranges)
    explicit = {q for m, q in ranges if m in (JSON_V1, "application/vnd.pypi.simple.latest+json")}
    if explicit == {";q=0"}:
        assert chosen != JSON_V1


def test_name_errors_are_bodega_errors() -> None:
    with pytest.raises(BodegaError):
        normalize_project_name("\u202e")
