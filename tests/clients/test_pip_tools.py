"""pip-tools: `pip-compile --generate-hashes` takes hashes from `<index root>/<project>/json`
(spec finding 7) instead of downloading every candidate file to hash it."""

from pathlib import Path

from tests.clients.conftest import served
from tests.support.clients import client_tool, pip_env, run
from tests.support.distributions import BuiltFile, build_sdist
from tests.support.fake_index import FakeIndex
from tests.support.servers import BodegaProcess


def test_pip_compile_generates_hashes_without_downloading_any_file(
    bodega: BodegaProcess,
    fake_index: FakeIndex,
    published: dict[str, list[BuiltFile]],
    tmp_path: Path,
) -> None:
    # A second file of the chosen release: its hash belongs in the output, and only the JSON
    # API can give it without a download.
    sdist = build_sdist("app", "2.0", requires=["liba>=1", "libb"])
    fake_index.add("app", sdist)
    (tmp_path / "requirements.in").write_text("app\n")
    command = [str(client_tool("pip-tools", "pip-compile")), "--generate-hashes", "--quiet"]
    command += ["--index-url", f"{bodega.url}simple/", "--cache-dir", str(tmp_path / "cache")]
    command += ["--output-file", "requirements.txt", "requirements.in"]
    run(command, pip_env(tmp_path / "pip-cache"), tmp_path, bodega)

    compiled = (tmp_path / "requirements.txt").read_text()
    for project, version in {"app": "2.0", "liba": "1.1", "libb": "1.0", "libc": "2.0"}.items():
        assert f"{project}=={version}" in compiled
        file = next(f for f in published[project] if f.filename.startswith(f"{project}-{version}-"))
        assert f"--hash=sha256:{file.sha256}" in compiled
    assert f"--hash=sha256:{sdist.sha256}" in compiled
    assert served(bodega, "GET /app/json")
    # pip prepares the chosen wheels to read their dependencies; nothing else is downloaded.
    downloads = [
        r.path.rsplit("/", 1)[-1]
        for r in fake_index.requests
        if r.server == "files" and not r.path.endswith(".metadata")
    ]
    assert sdist.filename not in downloads
    assert len(downloads) == len(set(downloads)) <= 4
