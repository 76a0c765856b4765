import pytest
from hypothesis import given
from hypothesis import strategies as st

from bodega.core.names import normalize_project_name, validate_filename
from bodega.errors import InvalidName


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [("Foo.Bar_baz", "foo-bar-baz"), ("FOO--bar", "foo-bar"), ("foo__bar", "foo-bar"), ("a", "a")],
)
def test_names_normalize_to_the_pep_503_form(raw: str, normalized: str) -> None:
    """Threat 3: every spelling maps to one key."""
    assert normalize_project_name(raw) == normalized


@pytest.mark.parametrize(
    "raw",
    [
        "ｆｏｏ",
        "рір",
        "Ⅸ",
        "fo\u200do",
        "\u202efoo",
        "",
        ".",
        "-foo",
        "foo-",
        "a b",
        "a?b",
        "a#b",
        "..",
        "../etc",
        "//evil.example/x",
        "a" * 201,
        "foo\r\nSet-Cookie:x",
    ],
)
def test_invalid_names_are_rejected_not_rewritten(raw: str) -> None:
    """Threats 4, 5, 6, 7, 8."""
    with pytest.raises(InvalidName):
        normalize_project_name(raw)


@given(st.text(max_size=60))
def test_a_name_is_either_rejected_or_normalized_to_ascii(raw: str) -> None:
    """Threat 4 as a property: no non-ASCII input turns into a valid ASCII key."""
    try:
        name = normalize_project_name(raw)
    except InvalidName:
        return
    assert name.isascii()
    assert raw.isascii()
    assert normalize_project_name(name) == name


@pytest.mark.parametrize(
    "filename",
    ["demo-1.0-py3-none-any.whl", "demo-1.0.tar.gz", "demo-1.0+local-py3-none-any.whl", "x.zip"],
)
def test_real_filenames_are_valid(filename: str) -> None:
    assert validate_filename(filename) == filename


@pytest.mark.parametrize(
    "filename",
    ["../x.whl", "a/b.whl", "a\\b.whl", "a\x00b.whl", "..", ".hidden", "%2e%2e", "x" * 256, ""],
)
def test_unsafe_filenames_are_rejected(filename: str) -> None:
    """Threat 2: a filename never carries a path."""
    with pytest.raises(InvalidName):
        validate_filename(filename)
