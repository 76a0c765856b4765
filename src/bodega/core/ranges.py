"""Which bytes of a stored file a GET answers with, from its Range and If-Range header
fields (RFC 9110 sections 14 and 13.1.5).

- One byte range: those bytes (206), or 416 when none of them exists, `bytes=-0` included
  (a zero suffix selects nothing, 14.1.1) and invalid ranges (last before first).
- Several ranges: the whole file (200). A server may ignore Range (14.2); a multipart
  answer would cost bodega work per range for clients that do not need it (pip, uv and
  the others ask for one range or none), and a thousand tiny ranges are a known abuse.
- A range unit other than bytes is ignored (whole file), as 14.2 requires.
- If-Range: the range applies only when the validator matches the file now: an
  entity-tag by strong comparison with its ETag, a date exactly as its Last-Modified.
"""

import re
from dataclasses import dataclass
from enum import Enum


class Answer(Enum):
    WHOLE = 200
    PART = 206
    UNSATISFIABLE = 416


@dataclass(frozen=True, slots=True)
class Selection:
    answer: Answer
    start: int = 0
    end: int = 0  # exclusive; for PART only


WHOLE = Selection(Answer.WHOLE)
UNSATISFIABLE = Selection(Answer.UNSATISFIABLE)

_BYTE_RANGE = re.compile(r"(\d*)-(\d*)")


def select_bytes(
    range_value: str | None,
    if_range: str | None,
    *,
    size: int,
    etag: str,
    last_modified: str,
) -> Selection:
    """`etag` and `last_modified` are the values the response carries for the file."""
    if range_value is None:
        return WHOLE
    unit, equals, specs = range_value.partition("=")
    if not equals or unit.strip().lower() != "bytes" or "," in specs:
        return WHOLE
    if if_range is not None and not _validator_matches(if_range.strip(), etag, last_modified):
        return WHOLE
    return _one_range(specs.strip(), size)


def _one_range(spec: str, size: int) -> Selection:
    found = _BYTE_RANGE.fullmatch(spec)
    if found is None or found.group(0) == "-":
        return UNSATISFIABLE
    first, last = found.groups()
    if not first:  # a suffix: the last N bytes
        count = min(int(last), size)
        return Selection(Answer.PART, size - count, size) if count else UNSATISFIABLE
    start = int(first)
    if start >= size or (last and int(last) < start):
        return UNSATISFIABLE
    end = min(int(last) + 1, size) if last else size
    return Selection(Answer.PART, start, end)


def _validator_matches(validator: str, etag: str, last_modified: str) -> bool:
    if validator.startswith(("W/", '"')):
        # Strong comparison (13.1.5): a weak tag never matches.
        return not validator.startswith("W/") and validator == etag
    return validator == last_modified
