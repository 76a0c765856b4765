"""Pins from requirements files and the lock files of uv, Poetry, Pipenv and PEP 751."""

import json

import pytest
from packaging.utils import canonicalize_name

from bodega.core.lockfiles import Pin, parse_pins
from bodega.errors import InvalidLockfile

H1, H2, H3 = "a" * 64, "b" * 64, "c" * 64


def pin(project: str, version: str, hashes: frozenset[str] = frozenset()) -> Pin:
    return Pin(canonicalize_name(project), version, hashes)


def test_requirements_pinned_with_and_without_hashes() -> None:
    text = f"""
# compiled by pip-compile
--index-url http://127.0.0.1:3141/simple/
Requests==2.32.3 \\
    --hash=sha256:{H1.upper()} \\
    --hash=sha256:{H2}
    # via my-app
idna==3.10 ; python_version >= "3.8"  # markers do not narrow a cache
six===1.16.0
-e ./local-package
"""
    found = parse_pins("requirements.txt", text)
    assert found.pins == [
        pin("requests", "2.32.3", frozenset({H1, H2})),
        pin("idna", "3.10"),
        pin("six", "1.16.0"),
    ]
    assert found.skipped == ["./local-package (editable, not from an index)"]


def test_requirements_includes_and_direct_urls() -> None:
    text = "-r base.txt\n--requirement=dev.txt\ndemo @ https://example.invalid/demo-1.0.tar.gz\n"
    found = parse_pins("requirements.txt", text)
    assert found.includes == ["base.txt", "dev.txt"]
    assert found.skipped == ["demo (a direct URL, not from an index)"]
    assert found.pins == []


@pytest.mark.parametrize("line", ["requests", "requests>=2", "requests==2.*", "a==1,!=2"])
def test_an_unpinned_requirement_is_refused_with_its_line(line: str) -> None:
    with pytest.raises(InvalidLockfile, match=r"^req.txt:2: .* is not pinned to one version"):
        parse_pins("req.txt", f"idna==3.10\n{line}\n")


def test_a_hash_bodega_cannot_check_is_refused() -> None:
    with pytest.raises(InvalidLockfile, match="only sha256"):
        parse_pins("r.txt", f"idna==3.10 --hash=md5:{'0' * 32}\n")


def test_uv_lock() -> None:
    text = f"""
version = 1
requires-python = ">=3.11"

[[package]]
name = "my-app"
version = "0.1.0"
source = {{ editable = "." }}

[[package]]
name = "Idna"
version = "3.10"
source = {{ registry = "http://127.0.0.1:3141/simple/" }}
sdist = {{ url = "http://x/idna-3.10.tar.gz", hash = "sha256:{H1}", size = 190490 }}
wheels = [
    {{ url = "http://x/idna-3.10-py3-none-any.whl", hash = "sha256:{H2}", size = 70442 }},
]

[[package]]
name = "tool"
version = "1.0"
source = {{ git = "https://example.invalid/tool.git?rev=abc" }}
"""
    found = parse_pins("some/dir/uv.lock", text)
    assert found.pins == [pin("idna", "3.10", frozenset({H1, H2}))]
    assert found.skipped == [
        "my-app (editable, not from an index)",
        "tool (git, not from an index)",
    ]


def test_poetry_lock() -> None:
    text = f"""
[[package]]
name = "idna"
version = "3.10"
description = "Internationalized Domain Names in Applications (IDNA)"
optional = false
python-versions = ">=3.6"
files = [
    {{file = "idna-3.10-py3-none-any.whl", hash = "sha256:{H1}"}},
    {{file = "idna-3.10.tar.gz", hash = "sha256:{H2}"}},
]

[[package]]
name = "local"
version = "0.1"
files = []

[package.source]
type = "directory"
url = "../local"

[metadata]
lock-version = "2.0"
"""
    found = parse_pins("poetry.lock", text)
    assert found.pins == [pin("idna", "3.10", frozenset({H1, H2}))]
    assert found.skipped == ["local (directory, not from an index)"]


def test_pipfile_lock() -> None:
    lock = {
        "_meta": {"hash": {"sha256": H3}, "sources": []},
        "default": {
            "idna": {"hashes": [f"sha256:{H1}"], "index": "pypi", "version": "==3.10"},
            "tool": {"git": "https://example.invalid/tool.git", "ref": "abc"},
        },
        "develop": {"idna": {"hashes": [f"sha256:{H1}"], "version": "==3.10"}},
    }
    found = parse_pins("Pipfile.lock", json.dumps(lock))
    assert found.pins == [pin("idna", "3.10", frozenset({H1}))]
    assert found.skipped == ["tool (not from an index)"]


def test_pylock_toml() -> None:
    text = f"""
lock-version = "1.0"
created-by = "a tool"

[[packages]]
name = "idna"
version = "3.10"
index = "http://127.0.0.1:3141/simple/"
sdist = {{ name = "idna-3.10.tar.gz", url = "http://x/s.tar.gz", hashes = {{ sha256 = "{H1}" }} }}
wheels = [
  {{ name = "idna-3.10-py3-none-any.whl", url = "http://x/w.whl", hashes = {{ sha256 = "{H2}" }} }},
]

[[packages]]
name = "no-version"
wheels = [{{ url = "http://x/no_version-2.0-py3-none-any.whl", hashes = {{ sha256 = "{H3}" }} }}]

[[packages]]
name = "tool"
vcs = {{ type = "git", url = "https://example.invalid/tool.git", commit-id = "abc" }}
"""
    for name in ("pylock.toml", "pylock.dev.toml"):
        found = parse_pins(name, text)
        assert found.pins == [
            pin("idna", "3.10", frozenset({H1, H2})),
            pin("no-version", "2.0", frozenset({H3})),
        ]
        assert found.skipped == ["tool (vcs, not from an index)"]


@pytest.mark.parametrize(
    ("name", "text"),
    [("uv.lock", "[[package]\n"), ("Pipfile.lock", "{"), ("poetry.lock", "[[package]]\nx = 1\n")],
)
def test_a_malformed_lock_file_is_one_clear_error(name: str, text: str) -> None:
    with pytest.raises(InvalidLockfile, match=f"^{name}: "):
        parse_pins(name, text)
