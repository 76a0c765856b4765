"""Project names and distribution filenames, validated before they become keys."""

import re

from packaging.utils import InvalidName as PackagingInvalidName
from packaging.utils import NormalizedName, canonicalize_name

from bodega.errors import InvalidName

# PyPI caps project names far below this; a bound keeps keys and log lines small (threat 5).
MAX_NAME_LENGTH = 200
# A filename is one path segment on every filesystem bodega may meet.
MAX_FILENAME_BYTES = 255

# The characters real distribution filenames use (PEP 427, PEP 625 and the older sdist and
# egg forms, with "+" for local versions). Anything else, "/" "\" "%" or control characters
# above all, never reaches a key or a URL.
_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!~-]*")


def normalize_project_name(raw: str) -> NormalizedName:
    """The PEP 503 form of a project name, or InvalidName.

    `validate=True` rejects non-ASCII look-alikes instead of lower-casing them into a
    different valid name (threat 4).
    """
    if len(raw) > MAX_NAME_LENGTH:
        raise InvalidName(f"project name longer than {MAX_NAME_LENGTH} characters")
    try:
        return canonicalize_name(raw, validate=True)
    except PackagingInvalidName:
        raise InvalidName(f"not a valid project name: {raw!r}") from None


def validate_filename(raw: str) -> str:
    """A distribution filename that is safe as a key and a URL segment, or InvalidName."""
    if len(raw.encode()) > MAX_FILENAME_BYTES or not _FILENAME.fullmatch(raw) or ".." in raw:
        raise InvalidName(f"not a valid distribution filename: {raw!r}")
    return raw
