"""The legacy upload API (warehouse's `forklift`), checked as the public index checks it.

Every publisher speaks it: a POST of multipart/form-data with `:action=file_upload`, the
release's core metadata as text fields and the file as the `content` part (twine, `uv
publish`, `poetry publish`, `pdm publish`, `hatch publish`, flit). This module judges the
values a client sent and the digests and METADATA bodega read from the bytes; each
rejection is an InvalidUpload whose message is the reason clients show.

What is checked, in the order warehouse checks it:
- the action and protocol version, then the name and version: a valid project name, a
  PEP 440 version without a local part (the public index refuses local versions);
- the filename: one path segment of a distribution's characters, a wheel per the binary
  distribution format or an sdist per PEP 625 (`<normalized_name>-<version>.tar.gz`), whose
  name and version are the form's (both normalized);
- `filetype` matches the file's kind; at least one digest is declared and each declared one
  matches the bytes; the file is within the index's size limit;
- the wheel's `*.dist-info/METADATA` (the sdist's `PKG-INFO`) names the same project and
  version;
- no control character in any field (a tab and line breaks only in free text).
"""

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from bodega.core.names import normalize_project_name, validate_filename
from bodega.errors import InvalidName, InvalidUpload

UPLOAD_ACTION = "file_upload"
CONTENT_FIELD = "content"
MAX_FIELD_BYTES = 1024 * 1024  # per text field; a long README as description fits
MAX_FIELDS_BYTES = 4 * 1024 * 1024  # all text fields together
MAX_FIELDS = 1000  # parts in one upload; a release has a few dozen (classifiers)
# Free text may hold tabs and line breaks; no field holds any other control character.
_FREE_TEXT = frozenset({"description", "summary", "license", "license_expression", "keywords"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FILETYPES = {"sdist": ".tar.gz", "bdist_wheel": ".whl"}
# PEP 625 / the binary distribution format: the name part of a filename, normalized.
_SEPARATORS = re.compile(r"[-_.]+")
DIGEST_FIELDS = ("md5_digest", "sha256_digest", "blake2_256_digest")


@dataclass(frozen=True, slots=True)
class Digests:
    """What bodega computed of the bytes it received."""

    sha256: str
    md5: str
    blake2b_256: str
    size: int


@dataclass(frozen=True, slots=True)
class DeclaredUpload:
    """An upload's form, checked: what the file must turn out to be."""

    project: NormalizedName
    name: str  # as the client spells it, for display
    version: str  # normalized PEP 440
    filename: str
    filetype: str  # sdist or bdist_wheel
    requires_python: str | None
    digests: Mapping[str, str]  # the declared ones, by field name, lower-case hex
    attestations: str | None  # PEP 740: the JSON list sent, re-serialized compactly

    @property
    def is_wheel(self) -> bool:
        return self.filetype == "bdist_wheel"


def check_form(fields: Mapping[str, Sequence[str]], filename: str) -> DeclaredUpload:
    """The upload the text fields and the content part's filename declare, or
    InvalidUpload saying why not."""
    _check_text(fields)
    action = _one(fields, ":action")
    if action != UPLOAD_ACTION:
        raise InvalidUpload(f"Unknown :action {action!r}; only {UPLOAD_ACTION!r} is supported")
    if _one(fields, "protocol_version", "1") != "1":
        raise InvalidUpload("Unknown protocol version")
    name = _required(fields, "name")
    try:
        project = normalize_project_name(name)
    except InvalidName as error:
        raise InvalidUpload(f"Invalid value for name. {error}") from None
    version = _check_version(_required(fields, "version"))
    filename = _check_filename(filename)
    filetype = _required(fields, "filetype")
    if filetype not in _FILETYPES:
        raise InvalidUpload(f"Invalid value for filetype: {filetype!r} (sdist or bdist_wheel)")
    if not filename.endswith(_FILETYPES[filetype]):
        raise InvalidUpload(f"Invalid filename {filename!r} for filetype {filetype}")
    _check_filename_release(filename, project, version)
    return DeclaredUpload(
        project,
        name,
        version,
        filename,
        filetype,
        _check_requires_python(_one(fields, "requires_python")),
        _declared_digests(fields),
        _check_attestations(_one(fields, "attestations")),
    )


def check_digests(declared: DeclaredUpload, computed: Digests, max_size: int) -> None:
    """The bytes are what the form says and within the index's limit."""
    if computed.size > max_size:
        raise InvalidUpload(f"File too large. Limit for this index is {max_size} bytes")
    if computed.size == 0:
        raise InvalidUpload("The file is empty")
    actual = {
        "md5_digest": computed.md5,
        "sha256_digest": computed.sha256,
        "blake2_256_digest": computed.blake2b_256,
    }
    for field, value in declared.digests.items():
        if actual[field] != value:
            raise InvalidUpload(f"The digest supplied does not match a digest calculated ({field})")


def check_metadata(declared: DeclaredUpload, metadata: bytes) -> str | None:
    """The file's own METADATA (PKG-INFO) names the project and version of the form;
    returns its Requires-Python."""
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(metadata)
    except (ValueError, TypeError):  # the email parser's errors on bytes it cannot read
        raise InvalidUpload("The distribution's metadata cannot be read") from None
    name, version = headers.get("Name"), headers.get("Version")
    if name is None or version is None:
        raise InvalidUpload("The distribution's metadata lacks Name or Version")
    if canonicalize_name(str(name)) != declared.project:
        raise InvalidUpload(
            f"The distribution's metadata names project {str(name)!r}, not {declared.name!r}"
        )
    if Version(_normalized_version(str(version))) != Version(declared.version):
        raise InvalidUpload(
            f"The distribution's metadata says version {str(version)!r}, not {declared.version}"
        )
    requires_python = headers.get("Requires-Python")
    return None if requires_python is None else str(requires_python)


def provenance_document(attestations: str) -> bytes:
    """PEP 740's provenance object for the attestations uploaded with a file. bodega has no
    trusted publisher to name, so the bundle's publisher says only that it was uploaded."""
    bundle = {"publisher": {"kind": "bodega-upload"}, "attestations": json.loads(attestations)}
    document = {"version": 1, "attestation_bundles": [bundle]}
    return json.dumps(document, separators=(",", ":")).encode()


def _check_text(fields: Mapping[str, Sequence[str]]) -> None:
    total = 0
    for field, values in fields.items():
        if _CONTROL.search(field):
            raise InvalidUpload("A field name holds a control character")
        pattern = _CONTROL_IN_TEXT if field in _FREE_TEXT else _CONTROL
        for value in values:
            size = len(value.encode())
            total += size
            if size > MAX_FIELD_BYTES or total > MAX_FIELDS_BYTES:
                raise InvalidUpload(f"Field {field!r} is too long")
            if pattern.search(value):
                raise InvalidUpload(f"Field {field!r} holds a control character")


def _one(fields: Mapping[str, Sequence[str]], field: str, default: str | None = None) -> str | None:
    values = [value for value in fields.get(field, ()) if value != ""]
    if len(values) > 1:
        raise InvalidUpload(f"Field {field!r} was sent more than once")
    return values[0] if values else default


def _required(fields: Mapping[str, Sequence[str]], field: str) -> str:
    value = _one(fields, field)
    if value is None:
        raise InvalidUpload(f"Missing field {field!r}")
    return value


def _normalized_version(text: str) -> str:
    try:
        return str(Version(text))
    except InvalidVersion:
        raise InvalidUpload(f"Invalid version {text!r}: not a PEP 440 version") from None


def _check_version(text: str) -> str:
    version = Version(_normalized_version(text))
    if version.local is not None:
        raise InvalidUpload("Can't use PEP 440 local versions")
    return str(version)


def _check_filename(filename: str) -> str:
    if not filename or "/" in filename or "\\" in filename or _CONTROL.search(filename):
        raise InvalidUpload(f"Invalid filename {filename!r}: a path or control character")
    try:
        return validate_filename(filename)
    except InvalidName:
        raise InvalidUpload(f"Invalid filename {filename!r}") from None


def _check_filename_release(filename: str, project: NormalizedName, version: str) -> None:
    """The filename's name and version are the form's (PEP 625 for sdists, the binary
    distribution format for wheels)."""
    try:
        if filename.endswith(".whl"):
            name, found, _, _ = parse_wheel_filename(filename)
        else:
            name, found = parse_sdist_filename(filename)
            # PEP 625: the name part is the normalized name with underscores.
            expected = _SEPARATORS.sub("_", project)
            if not filename.startswith(f"{expected}-"):
                raise InvalidUpload(
                    f"Invalid filename {filename!r}: PEP 625 wants {expected}-{version}.tar.gz"
                )
    except (InvalidWheelFilename, InvalidSdistFilename) as error:
        raise InvalidUpload(f"Invalid filename {filename!r}: {error}") from None
    if name != project:
        raise InvalidUpload(
            f"Start filename for {project!r} with {_SEPARATORS.sub('_', project)!r}"
        )
    if found != Version(version):
        raise InvalidUpload(f"Version in filename should be {version!r} not {str(found)!r}")


def _check_requires_python(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        SpecifierSet(text)
    except InvalidSpecifier:
        raise InvalidUpload(f"Invalid value for requires_python: {text!r}") from None
    return text


def _declared_digests(fields: Mapping[str, Sequence[str]]) -> dict[str, str]:
    declared: dict[str, str] = {}
    for field in DIGEST_FIELDS:
        value = _one(fields, field)
        if value is None:
            continue
        if not re.fullmatch(r"[0-9a-fA-F]+", value):
            raise InvalidUpload(f"Invalid value for {field}: not a hexadecimal digest")
        declared[field] = value.lower()
    if not declared:
        raise InvalidUpload("Include at least one message digest")
    return declared


def _check_attestations(text: str | None) -> str | None:
    """PEP 740: a JSON list of attestation objects, kept as sent (bodega serves it as the
    file's provenance; it verifies no signature, as a private index has no trusted
    publisher to check them against)."""
    if text is None:
        return None
    try:
        attestations = json.loads(text)
    except ValueError:
        raise InvalidUpload("Invalid attestations: not JSON") from None
    if not isinstance(attestations, list) or not all(isinstance(a, dict) for a in attestations):
        raise InvalidUpload("Invalid attestations: not a list of attestation objects")
    return json.dumps(attestations, separators=(",", ":"), sort_keys=True)
