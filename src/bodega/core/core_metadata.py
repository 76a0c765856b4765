"""Reading a METADATA or PKG-INFO file as the core metadata specification says.

The file is UTF-8 text in RFC 822 form: `packaging.metadata.parse_email` reads it with the
stdlib email parser and the policy the specification names (compat32), decodes non-ASCII
header bytes as UTF-8, groups multiple-use fields into lists and takes `Description` from
the body (metadata 2.1+) or its header. What it leaves as "unparsed" (a field given twice,
bytes that are not UTF-8) is kept here leniently: bodega describes files it did not
write, and a summary in Latin-1 is better shown than dropped.

Folded header lines are unfolded as the public index sees them: its uploads are form
fields that twine reads with pkginfo, which joins a folded field's lines with spaces and
takes the 8-space indent off each continuation line of a header `Description`.
"""

import re
from typing import cast

from packaging.metadata import RawMetadata, parse_email

# Single-use fields a file may repeat or mis-encode, by their raw name: the first is kept.
_SINGLE_USE = {
    "name": "name",
    "version": "version",
    "summary": "summary",
    "home-page": "home_page",
    "download-url": "download_url",
    "author": "author",
    "author-email": "author_email",
    "maintainer": "maintainer",
    "maintainer-email": "maintainer_email",
    "license": "license",
    "license-expression": "license_expression",
    "requires-python": "requires_python",
    "description-content-type": "description_content_type",
}
_HEADER_DESCRIPTION = re.compile(rb"^description:", re.IGNORECASE | re.MULTILINE)
_END_OF_HEADERS = re.compile(rb"\r?\n\r?\n")
# The continuation-line prefixes of a header Description: 8 spaces, or the spec's 7 and a "|".
_DESCRIPTION_INDENTS = (" " * 8, " " * 7 + "|")


def parse_core_metadata(data: bytes) -> RawMetadata:
    """The fields of a METADATA / PKG-INFO file, by packaging's raw names."""
    raw, parsed_leftovers = parse_email(data)
    # A body that is not UTF-8 comes back as bytes: shown with replacement characters.
    unparsed = {k: [_as_text(v) for v in values] for k, values in parsed_leftovers.items()}
    fields = cast(dict[str, object], raw)
    for email_name, raw_name in _SINGLE_USE.items():
        if raw_name not in fields and unparsed.get(email_name):
            fields[raw_name] = unparsed[email_name][0]
    if "description" not in fields and unparsed.get("description"):
        # Given as a header and as the body: the body is the newer form (metadata 2.1).
        fields["description"] = unparsed["description"][-1]
    for name, value in fields.items():
        if isinstance(value, str) and name != "description":
            fields[name] = _unfold(value)
        elif isinstance(value, list):
            fields[name] = [_unfold(item) for item in value]
    description = fields.get("description")
    if isinstance(description, str) and _is_header_description(data):
        fields["description"] = _dedent_description(description)
    return raw


def _as_text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _unfold(value: str) -> str:
    return " ".join(line.strip() for line in value.splitlines()).strip()


def _is_header_description(data: bytes) -> bool:
    """Whether Description is a header (folded, indented) rather than the message body."""
    headers = _END_OF_HEADERS.split(data, maxsplit=1)[0]
    return _HEADER_DESCRIPTION.search(headers) is not None and not _has_body(data)


def _has_body(data: bytes) -> bool:
    parts = _END_OF_HEADERS.split(data, maxsplit=1)
    return len(parts) == 2 and parts[1].strip() != b""


def _dedent_description(value: str) -> str:
    lines = value.strip().splitlines()
    return "\n".join(
        next((line[len(p) :] for p in _DESCRIPTION_INDENTS if line.startswith(p)), line)
        for line in lines
    )
