"""Which bytes a GET answers with (RFC 9110 sections 14 and 13.1.5)."""

import pytest

from bodega.core.ranges import UNSATISFIABLE, WHOLE, Answer, Selection, select_bytes

ETAG = '"abc"'
DATE = "Mon, 01 Jan 2024 00:00:00 GMT"


def pick(range_value: str | None, if_range: str | None = None) -> Selection:
    return select_bytes(range_value, if_range, size=100, etag=ETAG, last_modified=DATE)


@pytest.mark.parametrize(
    ("range_value", "expected"),
    [
        (None, WHOLE),
        ("bytes=0-9", Selection(Answer.PART, 0, 10)),
        ("bytes=90-", Selection(Answer.PART, 90, 100)),
        ("bytes=90-500", Selection(Answer.PART, 90, 100)),
        ("bytes=-10", Selection(Answer.PART, 90, 100)),
        ("bytes=-500", Selection(Answer.PART, 0, 100)),
        (" Bytes = 5-5 ", Selection(Answer.PART, 5, 6)),
        ("bytes=-0", UNSATISFIABLE),
        ("bytes=100-", UNSATISFIABLE),
        ("bytes=9-5", UNSATISFIABLE),
        ("bytes=-", UNSATISFIABLE),
        ("bytes=x-1", UNSATISFIABLE),
        ("bytes=0-1,5-6", WHOLE),
        ("items=0-1", WHOLE),
        ("garbage", WHOLE),
    ],
)
def test_one_range_is_a_part_several_are_the_whole_file(
    range_value: str | None, expected: Selection
) -> None:
    assert pick(range_value) == expected


@pytest.mark.parametrize(
    ("if_range", "applies"),
    [(ETAG, True), (DATE, True), ('"other"', False), ('W/"abc"', False), ("yesterday", False)],
)
def test_if_range_applies_the_range_only_for_the_current_validator(
    if_range: str, applies: bool
) -> None:
    assert pick("bytes=0-9", if_range).answer == (Answer.PART if applies else Answer.WHOLE)
