"""The root list scanned from byte chunks and rendered a batch at a time."""

import json
import re
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.utils import NormalizedName

from bodega.core.parsing import HTML, HTML_V1, JSON_V1, PageFormatError
from bodega.core.root_list import (
    MAX_TAIL,
    ROOT_HTML_END,
    ROOT_HTML_START,
    ROOT_JSON_END,
    ROOT_JSON_START,
    Entry,
    parse_project_list,
    project_list_scanner,
    root_html_anchors,
    root_json_entries,
)

# Anchors as upstreams write them, and as they go wrong: upper case and odd spacing, an
# attribute across lines, a name split mid-character, bytes that are no UTF-8, an entity (not
# decoded, as before: no valid name needs one), a "<" inside the tag, a tag that is not an
# anchor, a close tag with a space (no match, as before).
HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><body>\n"
    b'<a href="/simple/a/">A</a>\n'
    b'<A  HREF="/simple/b-c/"  data-x="1" >  b_c  </A>\n'
    b'<a\nhref="/simple/d-e/"\n>d.e</a>\n'
    b'<a href="/simple/caf/">caf\xc3\xa9</a><a href="x">\xff</a>\n'
    b'<a href="/simple/x/">a&amp;b</a><abbr>no</abbr><a>f</a><a href="<">g</a>\n'
    b'<a href="/simple/h/">h</a ><a href="/simple/i/">i</a>\n'
    b"</body></html>\n"
)
HTML_NAMES = ["A", "b_c", "d.e", "f", "g", "i"]

# The fake index's form (indented, more members per entry) with escapes and bad entries.
JSON_PAGE = (
    b'{\n "meta": {"api-version": "1.1", "_last-serial": 7},\n "projects": [\n'
    b'  {"name": "A", "_last-serial": 1},\n'
    b'  {"_last-serial": 2, "name" :\n "b_c"},\n'
    b'  {"name": "\\u0044.e"},\n'
    b'  {"name": 3}, {"name": "\xef\xbd\x86oo"}, {"name": "x\\"y"}, {"name": "z\\\\"},\n'
    b'  {"name": "\xff"}, {"name": "\\ud800"},\n'
    b'  {"name": "f"}\n ]\n}\n'
)
JSON_NAMES = ["A", "b_c", "D.e", "f"]


def scan(pieces: Sequence[bytes], media_type: str) -> list[str]:
    scanner = project_list_scanner(media_type)
    entries = [entry for piece in pieces for entry in scanner.feed(piece)]
    return [name for _, name in entries + scanner.close()]


def reference_html(body: bytes) -> list[str]:
    """The whole-body parse the scanner replaced: the same regex over the decoded page."""
    found = re.findall(r"<a\b[^>]*>([^<]*)</a>", body.decode(errors="replace"), re.IGNORECASE)
    names = (name.strip() for name in found)
    return [n for n in names if re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", n)]


def test_the_whole_page_in_one_chunk() -> None:
    assert parse_project_list(HTML_PAGE, HTML) == HTML_NAMES == reference_html(HTML_PAGE)
    assert parse_project_list(HTML_PAGE, HTML_V1) == HTML_NAMES
    assert parse_project_list(JSON_PAGE, JSON_V1) == JSON_NAMES


def test_html_names_split_at_every_offset_are_found_once() -> None:
    for cut in range(len(HTML_PAGE) + 1):
        assert scan([HTML_PAGE[:cut], HTML_PAGE[cut:]], HTML) == HTML_NAMES, cut
    assert scan([HTML_PAGE[i : i + 1] for i in range(len(HTML_PAGE))], HTML) == HTML_NAMES


def test_json_names_split_at_every_offset_are_found_once() -> None:
    for cut in range(len(JSON_PAGE) + 1):
        assert scan([JSON_PAGE[:cut], JSON_PAGE[cut:]], JSON_V1) == JSON_NAMES, cut
    assert scan([JSON_PAGE[i : i + 1] for i in range(len(JSON_PAGE))], JSON_V1) == JSON_NAMES


HTML_PIECES = [b"<a", b"<A", b' href="x"', b">", b"<", b"</a>", b"</A>", b"</", b"a", b"b_c"]
HTML_PIECES += [b" ", b"\n", b"<abbr>", b"\xc3", b"\xa9", b"\xff", b"<a>", b"/", b"-"]
HTML_PIECES += [b'<a href="/simple/b-c/">b_c</a>\n'] * 4
JSON_PIECES = [b'"name"', b'"', b":", b" ", b"\\", b'\\"', b"a", b"B.c", b"{", b"}", b","]
JSON_PIECES += [b'"projects":[', b"n", b"\\u0041", b"\xff", b"]"]
JSON_PIECES += [b'{"name": "b_c"},'] * 4


def cut(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(body)) for c in cuts})
    return [body[start:end] for start, end in zip([0, *points], [*points, len(body)], strict=True)]


@settings(max_examples=300)
@given(
    st.lists(st.sampled_from(HTML_PIECES), max_size=60), st.lists(st.integers(0, 400), max_size=40)
)
def test_any_html_split_anywhere_scans_as_the_whole_page(
    pieces: list[bytes], cuts: list[int]
) -> None:
    body = b"".join(pieces)
    assert scan(cut(body, cuts), HTML) == reference_html(body)


@settings(max_examples=300)
@given(
    st.lists(st.sampled_from(JSON_PIECES), max_size=60), st.lists(st.integers(0, 400), max_size=40)
)
def test_any_json_split_anywhere_scans_as_the_whole_page(
    pieces: list[bytes], cuts: list[int]
) -> None:
    body = b'{"projects":' + b"".join(pieces)
    assert scan(cut(body, cuts), JSON_V1) == scan([body], JSON_V1)


def test_each_name_comes_with_its_normalized_key() -> None:
    scanner = project_list_scanner(HTML)
    assert scanner.feed(HTML_PAGE)[:3] == [("a", "A"), ("b-c", "b_c"), ("d-e", "d.e")]


def test_an_anchor_that_never_closes_fails_instead_of_growing() -> None:
    """Threat 20: a hostile page cannot make the carried rest grow without bound."""
    for opening in (b'<a href="', b'<a href="/simple/x/">'):
        scanner = project_list_scanner(HTML)
        scanner.feed(b'<a href="/simple/a/">a</a>' + opening)
        for _ in range(MAX_TAIL // 4096 - 1):
            scanner.feed(b"x" * 4096)  # still within the bound
        with pytest.raises(PageFormatError):
            scanner.feed(b"x" * 8192)


def test_a_name_entry_that_never_closes_fails_instead_of_growing() -> None:
    scanner = project_list_scanner(JSON_V1)
    scanner.feed(b'{"projects": [{"name": "')
    for _ in range(MAX_TAIL // 4096 - 1):
        scanner.feed(b"x" * 4096)
    with pytest.raises(PageFormatError):
        scanner.feed(b"x" * 8192)


def test_one_huge_line_without_anchors_carries_nothing_over() -> None:
    scanner = project_list_scanner(HTML)
    for _ in range(4 * MAX_TAIL // 4096):
        assert scanner.feed(b"<p>" + b"x" * 4096 + b"</p>") == []
    assert scanner.feed(b'<a href="/simple/a/">a</a>') == [(NormalizedName("a"), "a")]


@pytest.mark.parametrize("body", [b"", b"  ", b"[]", b'"projects"', b'{"meta": {}}', b"<html>"])
def test_json_that_is_no_root_list_is_an_error(body: bytes) -> None:
    with pytest.raises(PageFormatError):
        parse_project_list(body, JSON_V1)


def test_an_unknown_content_type_is_an_error() -> None:
    with pytest.raises(PageFormatError):
        project_list_scanner("application/json")


def test_the_projects_key_may_be_split_between_chunks() -> None:
    page = b'{"projects": []}'
    for cut in range(len(page) + 1):
        assert scan([page[:cut], page[cut:]], JSON_V1) == []


# --- rendering --------------------------------------------------------------------------


def entries(names: Sequence[str]) -> list[Entry]:
    return [(NormalizedName(re.sub(r"[-_.]+", "-", n).lower()), n) for n in names]


def test_batches_render_the_same_bytes_as_before_and_parse_back() -> None:
    first, second = entries(["Project_0", "b.c"]), entries([f"p{i}" for i in range(3000)])
    html = ROOT_HTML_START + root_html_anchors(first) + root_html_anchors(second) + ROOT_HTML_END
    assert b'    <a href="project-0/">Project_0</a>\n    <a href="b-c/">b.c</a>\n' in html
    assert parse_project_list(html, HTML) == [n for _, n in first + second]
    body = (
        ROOT_JSON_START
        + root_json_entries(first, is_first=True)
        + root_json_entries([], is_first=False)
        + root_json_entries(second, is_first=False)
        + ROOT_JSON_END
    )
    assert body.startswith(b'{"meta":{"api-version":"1.0"},"projects":[{"name":"Project_0"},')
    assert json.loads(body)["projects"][:2] == [{"name": "Project_0"}, {"name": "b.c"}]
    assert parse_project_list(body, JSON_V1) == [n for _, n in first + second]


def test_no_name_can_leave_its_markup() -> None:
    hostile: list[Entry] = [(NormalizedName('x"><script>'), 'x"><script>')]
    assert b"<script>" not in root_html_anchors(hostile)
    assert json.loads(b"[" + root_json_entries(hostile, is_first=True) + b"]") == [
        {"name": 'x"><script>'}
    ]


@pytest.mark.timeout(30)  # the bound: before, this input took minutes (quadratic)
@pytest.mark.parametrize(
    "hostile",
    [
        "<a " * 300_000,  # never a ">": every start used to scan to the end
        "<a " * 300_000 + ">x<b",  # one ">" at the end, then no "</a>"
        "<A\n" * 300_000 + ">x</a",  # unfinished at the very end
    ],
    ids=["no-close", "far-close", "unfinished"],
)
def test_hostile_anchor_starts_are_scanned_in_linear_time(hostile: str) -> None:
    """Issue 17: the anchor regex rescanned from every "<a"; a root page of starts
    that never close took minutes of CPU per MB, holding a thread."""
    scanner = project_list_scanner(HTML)
    chunk = len(hostile) // 2  # two chunks: the rest of the first is carried over
    data = hostile.encode()
    entries = scanner.feed(data[:chunk]) + scanner.feed(data[chunk:]) + scanner.close()
    assert entries == []


def test_an_anchor_start_inside_a_tag_still_finds_the_name() -> None:
    """The linear scan restarts at an "<a" inside a tag; the name is the same."""
    scanner = project_list_scanner(HTML)
    page = b'<a href="<a"><a title="<a <a x">name-one</a><a <a href="/n/">name-two</a>'
    split = page.index(b"name-one") - 3
    entries = scanner.feed(page[:split]) + scanner.feed(page[split:]) + scanner.close()
    assert [raw for _, raw in entries] == ["name-one", "name-two"]
