"""Descriptions rendered as the public index renders them, and sanitized."""

import pytest

from bodega.core.description import MAX_DESCRIPTION_CHARACTERS, render_description


@pytest.mark.parametrize(
    ("content_type", "text", "wanted"),
    [
        (None, "Title\n=====\n\nSome *text*.\n", "<em>text</em>"),  # the spec's default: reST
        ("text/x-rst; charset=UTF-8", "Some **text**.\n", "<strong>text</strong>"),
        ("text/markdown", "Some **text** ~~gone~~.\n", "<del>gone</del>"),  # GFM by default
        ("text/markdown; variant=CommonMark", "Some *text*.\n", "<em>text</em>"),
        ("text/plain", "Some *text*.\n", "Some *text*."),
        ("application/unknown", "a <b>b</b>", "a &lt;b&gt;b&lt;/b&gt;"),
    ],
)
def test_each_content_type_gets_its_renderer(
    content_type: str | None, text: str, wanted: str
) -> None:
    assert wanted in render_description(text, content_type)


def test_broken_restructured_text_falls_back_to_plain_text() -> None:
    html = render_description(".. raw:: html\n\n   <script>alert(1)</script>\n", "text/x-rst")
    assert "&lt;script&gt;" in html
    assert "<script" not in html


@pytest.mark.parametrize(
    "text",
    [
        '<script>alert(1)</script><a href="javascript:alert(1)" onclick="x()">a</a>',
        '<img src="https://x.example/a.png" onerror="alert(1)"><iframe src="/"></iframe>',
        '<picture><source srcset="x.png"></picture><style>body{}</style>',
    ],
)
def test_markup_that_could_act_or_load_is_removed(text: str) -> None:
    html = render_description(text, "text/markdown")
    for bad in ("<script", "javascript:", "onclick", "onerror", "<img", "<iframe", "<style"):
        assert bad not in html


def test_a_huge_description_is_shown_as_text_not_rendered() -> None:
    text = "*a* " * (MAX_DESCRIPTION_CHARACTERS // 4 + 1)
    assert "<em>" not in render_description(text, "text/markdown")
