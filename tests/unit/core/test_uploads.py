"""The upload form's checks (core.uploads), value in, verdict out."""

from typing import Any

import pytest

from bodega.core.uploads import Digests, check_digests, check_form, check_metadata
from bodega.errors import InvalidUpload

WHEEL = "acme_lib-1.0-py3-none-any.whl"


def _fields(**overrides: Any) -> dict[str, list[str]]:
    fields: dict[str, Any] = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": "Acme.Lib",
        "version": "1.0",
        "filetype": "bdist_wheel",
        "sha256_digest": "a" * 64,
        **overrides,
    }
    return {key: [value] for key, value in fields.items() if value is not None}


def test_a_good_form_declares_its_upload() -> None:
    declared = check_form(_fields(requires_python=">=3.9", attestations="[{}]"), WHEEL)
    assert declared.project == "acme-lib"
    assert declared.name == "Acme.Lib"
    assert declared.version == "1.0"
    assert declared.is_wheel
    assert declared.requires_python == ">=3.9"
    assert declared.digests == {"sha256_digest": "a" * 64}
    assert declared.attestations == "[{}]"


def test_versions_are_compared_normalized() -> None:
    assert (
        check_form(
            _fields(version="1.0.0-rc1"),
            "acme_lib-1.0.0rc1.tar.gz".replace(".tar.gz", "-py3-none-any.whl"),
        ).version
        == "1.0.0rc1"
    )
    sdist = check_form(_fields(filetype="sdist", version="01.0"), "acme_lib-1.0.tar.gz")
    assert sdist.version == "1.0"


@pytest.mark.parametrize(
    ("overrides", "filename", "reason"),
    [
        ({":action": "doc_upload"}, WHEEL, ":action"),
        ({"protocol_version": "2"}, WHEEL, "protocol"),
        ({"name": None}, WHEEL, "Missing field 'name'"),
        ({"name": "acme lib"}, WHEEL, "name"),
        ({"version": "1.0+cpu"}, "acme_lib-1.0+cpu-py3-none-any.whl", "local versions"),
        ({"version": "latest"}, WHEEL, "PEP 440"),
        ({}, "acme_lib-2.0-py3-none-any.whl", "Version in filename"),
        ({}, "other-1.0-py3-none-any.whl", "Start filename"),
        ({}, "acme_lib-1.0.whl", "Invalid filename"),
        ({}, "../" + WHEEL, "path"),
        ({}, WHEEL + "\n", "path or control"),
        ({"filetype": "bdist_egg"}, WHEEL, "filetype"),
        ({"filetype": "sdist"}, WHEEL, "for filetype sdist"),
        ({"filetype": "sdist"}, "acme_lib-1.0.zip", "for filetype sdist"),
        ({"filetype": "sdist"}, "Acme.Lib-1.0.tar.gz", "PEP 625"),
        ({"sha256_digest": None}, WHEEL, "at least one message digest"),
        ({"md5_digest": "zz"}, WHEEL, "hexadecimal"),
        ({"requires_python": ">=3.9,<<4"}, WHEEL, "requires_python"),
        ({"attestations": "{not json"}, WHEEL, "attestations"),
        ({"attestations": '{"a": 1}'}, WHEEL, "attestations"),
        ({"author": "x\x00y"}, WHEEL, "control character"),
        ({"summary": "x\ny"}, WHEEL, None),  # free text may break lines
        ({"author": "x" * 2_000_000}, WHEEL, "too long"),
    ],
)
def test_a_bad_form_is_refused_with_its_reason(
    overrides: dict[str, Any], filename: str, reason: str | None
) -> None:
    if reason is None:
        check_form(_fields(**overrides), filename)
        return
    with pytest.raises(InvalidUpload, match=reason):
        check_form(_fields(**overrides), filename)


def test_a_field_sent_twice_is_refused() -> None:
    fields = _fields()
    fields["version"] = ["1.0", "2.0"]
    with pytest.raises(InvalidUpload, match="more than once"):
        check_form(fields, WHEEL)


def test_digests_and_size() -> None:
    declared = check_form(_fields(md5_digest="B" * 32), WHEEL)
    check_digests(declared, Digests("a" * 64, "b" * 32, "c" * 64, 10), max_size=10)
    with pytest.raises(InvalidUpload, match="too large"):
        check_digests(declared, Digests("a" * 64, "b" * 32, "c" * 64, 11), max_size=10)
    with pytest.raises(InvalidUpload, match="md5_digest"):
        check_digests(declared, Digests("a" * 64, "d" * 32, "c" * 64, 10), max_size=10)
    with pytest.raises(InvalidUpload, match="empty"):
        check_digests(declared, Digests("a" * 64, "b" * 32, "c" * 64, 0), max_size=10)


def test_the_files_metadata_must_name_the_same_release() -> None:
    declared = check_form(_fields(), WHEEL)
    good = b"Metadata-Version: 2.1\nName: acme_lib\nVersion: 1.0.0\nRequires-Python: >=3.8\n"
    assert check_metadata(declared, good) == ">=3.8"
    with pytest.raises(InvalidUpload, match="names project"):
        check_metadata(declared, b"Name: other\nVersion: 1.0\n")
    with pytest.raises(InvalidUpload, match="says version"):
        check_metadata(declared, b"Name: acme-lib\nVersion: 1.1\n")
    with pytest.raises(InvalidUpload, match="lacks"):
        check_metadata(declared, b"Summary: nothing\n")
