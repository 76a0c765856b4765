import pytest

from bodega.core.negotiation import choose_media_type
from bodega.core.parsing import HTML, HTML_V1, JSON_V1

PIP = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"  # noqa: E501
UV = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"  # noqa: E501
POETRY = "application/vnd.pypi.simple.v1+json, */*;q=0.1"
PYPI_SIMPLE = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html, text/html;q=0.01"
)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (PIP, JSON_V1),
        (UV, JSON_V1),
        (POETRY, JSON_V1),
        (PYPI_SIMPLE, HTML_V1),  # a tie goes to v1+html, as on the public index
        ("*/*", HTML),
        (None, HTML),
        ("", HTML),
        ("text/html", HTML),
        ("application/vnd.pypi.simple.v1+html", HTML_V1),
        ("application/vnd.pypi.simple.latest+json", JSON_V1),
        ("application/json", HTML),
        ("garbage;;;q=x,,", HTML),
        ("application/vnd.pypi.simple.v1+json;q=0, */*", HTML),
        ("text/*;q=0.5, application/vnd.pypi.simple.v1+json;q=0.4", HTML),
    ],
)
def test_negotiation_follows_pep_691_and_the_public_index(
    accept: str | None, expected: str
) -> None:
    """Conformance items 6-9, threat 10."""
    assert choose_media_type(accept) == expected


def test_format_parameter_wins_over_accept() -> None:
    assert choose_media_type("text/html", JSON_V1) == JSON_V1
    assert choose_media_type(PIP, "nonsense") == HTML


def test_a_huge_accept_header_is_bounded() -> None:
    assert choose_media_type(",".join(["x/y"] * 10_000) + f",{JSON_V1}") == HTML
