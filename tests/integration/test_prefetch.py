"""`bodega prefetch` against a running bodega in front of the fake upstream."""

import asyncio
import json
import sys
from pathlib import Path

import httpx
import pytest

from bodega.core.lockfiles import parse_pins
from bodega.prefetch import Outcome, State
from bodega.prefetch import prefetch as run_prefetch
from tests.conftest import StartBodega
from tests.integration.test_cli import clean_environ
from tests.support.distributions import BuiltFile, build_sdist, build_wheel
from tests.support.fake_index import FakeIndex

PROJECTS = [f"pkg-{number:02d}" for number in range(50)]
WHEELS = {name: build_wheel(name, "1.0", payload_size=2_000) for name in PROJECTS}
SDIST = build_sdist("pkg-00", "1.0")  # one project with two files


@pytest.fixture
def index(fake_index: FakeIndex) -> FakeIndex:
    for name, wheel in WHEELS.items():
        fake_index.add(name, wheel)
        fake_index.add(name, build_wheel(name, "0.9"))  # another version, never fetched
    fake_index.add("pkg-00", SDIST)
    return fake_index


def uv_lock(files: dict[str, list[BuiltFile]]) -> str:
    blocks = ['version = 1\nrequires-python = ">=3.11"\n']
    for name, built in files.items():
        entries = {
            f.filename: f'{{ url = "http://x/{f.filename}", hash = "sha256:{f.sha256}" }}'
            for f in built
        }
        wheels = ", ".join(
            entry for filename, entry in entries.items() if filename.endswith(".whl")
        )
        sdists = [entry for filename, entry in entries.items() if not filename.endswith(".whl")]
        sdist = f"sdist = {sdists[0]}\n" if sdists else ""
        blocks.append(
            f'[[package]]\nname = "{name}"\nversion = "1.0"\n'
            'source = { registry = "http://127.0.0.1:3141/simple/" }\n'
            f"{sdist}wheels = [{wheels}]\n"
        )
    return "\n".join(blocks)


async def prefetch(bodega: str, *files: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bodega", "prefetch", "--url", bodega, "--jobs", "8"),
        *map(str, files),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=clean_environ(),
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_prefetch_of_a_50_package_lock_file_shows_progress_and_a_summary(
    index: FakeIndex, start_bodega: StartBodega, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    lock = tmp_path / "uv.lock"
    lock.write_text(
        uv_lock({name: [WHEELS[name]] + ([SDIST] if name == "pkg-00" else []) for name in PROJECTS})
    )
    bodega = await start_bodega()

    code, out, err = await prefetch(bodega, lock)

    assert code == 0, err
    progress = err.splitlines()
    assert len(progress) == 51  # a line per file, in a log
    assert progress[0].startswith("[ 1/51] fetched: ")
    assert progress[-1].startswith("[51/51] fetched: ")
    assert out.startswith("50 pins, 51 files: 0 already cached, 51 fetched (")
    assert out.endswith(", 0 failed\n")
    for name, wheel in WHEELS.items():
        assert index.count("GET", wheel.filename) == 1
        assert index.count("GET", wheel.filename + ".metadata") == 1  # core metadata too
        cached = await client.get(f"{bodega}files/{name}/{wheel.filename}")
        assert cached.headers["X-Bodega-Cache"] == "HIT"
    assert index.count("GET", "pkg-00-0.9-py3-none-any.whl") == 0  # only what is pinned

    code, out, _ = await prefetch(bodega, lock)
    assert code == 0
    assert out == "50 pins, 51 files: 51 already cached, 0 fetched (0 B), 0 failed\n"


async def test_prefetch_takes_unhashed_pins_and_reports_what_failed(
    index: FakeIndex, start_bodega: StartBodega, tmp_path: Path
) -> None:
    requirements = tmp_path / "requirements.txt"
    base = tmp_path / "base.txt"
    base.write_text("pkg-01==1.0\n")
    requirements.write_text(
        "-r base.txt\npkg-00==1.0  # every file of the version\nmissing==1.0\npkg-02==7.0\n"
    )
    index.corrupt(WHEELS["pkg-01"].filename)
    bodega = await start_bodega()

    code, out, err = await prefetch(bodega, requirements)

    assert code == 1
    assert out == "4 pins, 5 files: 0 already cached, 2 fetched (" + out.split("(")[1]
    assert out.endswith(", 3 failed\n")
    assert "failed: missing==1.0: " in err
    assert "failed: pkg-02==7.0: no files of version 7.0 on the index" in err
    assert f"failed: {WHEELS['pkg-01'].filename}: " in err
    assert index.count("GET", SDIST.filename) == 1


async def test_prefetch_without_a_bodega_is_one_clear_line(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pkg-00==1.0\n")
    code, _, err = await prefetch("http://127.0.0.1:9/", requirements)
    assert code == 1
    assert err.startswith("Error: no bodega answers at http://127.0.0.1:9/")
    assert len(err.splitlines()) == 1


async def test_prefetch_url_is_the_base_url_as_for_configure_and_an_index_url_reads_the_same(
    index: FakeIndex, start_bodega: StartBodega, tmp_path: Path
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pkg-00==1.0\n")
    bodega = await start_bodega()
    for url in (bodega, bodega.rstrip("/"), f"{bodega}simple/"):
        code, out, err = await prefetch(url, requirements)
        assert code == 0, err
        assert out.startswith("1 pins, 2 files:")


async def test_prefetch_refuses_an_unpinned_requirement(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pkg-00>=1.0\n")
    code, _, err = await prefetch("http://127.0.0.1:9/", requirements)
    assert code == 1
    assert "requirements.txt:1: 'pkg-00>=1.0' is not pinned to one version" in err


def lock_files(wheel: BuiltFile, sdist: BuiltFile) -> dict[str, str]:
    """The same pin, `pkg-00==1.0` with its wheel and sdist, in every format prefetch reads."""
    w, s = wheel, sdist
    pipfile = {"default": {"pkg-00": {"version": "==1.0", "hashes": [f"sha256:{w.sha256}"]}}}
    return {
        "requirements.txt": f"pkg-00==1.0 --hash=sha256:{w.sha256} --hash=sha256:{s.sha256}\n",
        "uv.lock": uv_lock({"pkg-00": [w, s]}),
        "poetry.lock": (
            '[[package]]\nname = "pkg-00"\nversion = "1.0"\nfiles = [\n'
            f'  {{file = "{w.filename}", hash = "sha256:{w.sha256}"}},\n'
            f'  {{file = "{s.filename}", hash = "sha256:{s.sha256}"}},\n]\n'
        ),
        "Pipfile.lock": json.dumps(pipfile),
        "pylock.toml": (
            'lock-version = "1.0"\n[[packages]]\nname = "pkg-00"\nversion = "1.0"\n'
            f'sdist = {{ name = "{s.filename}", hashes = {{ sha256 = "{s.sha256}" }} }}\n'
            f'wheels = [{{ name = "{w.filename}", hashes = {{ sha256 = "{w.sha256}" }} }}]\n'
        ),
    }


@pytest.mark.parametrize(
    "lock_name", ["requirements.txt", "uv.lock", "poetry.lock", "Pipfile.lock", "pylock.toml"]
)
async def test_each_format_prefetches_exactly_its_locked_files(
    index: FakeIndex, start_bodega: StartBodega, lock_name: str
) -> None:
    text = lock_files(WHEELS["pkg-00"], SDIST)[lock_name]
    pins = parse_pins(lock_name, text).pins
    bodega = await start_bodega()
    seen: list[Outcome] = []
    totals: list[int] = []

    outcomes = await run_prefetch(
        bodega, pins, jobs=2, on_total=totals.append, on_outcome=seen.append
    )

    expected = {WHEELS["pkg-00"].filename}
    if lock_name != "Pipfile.lock":  # that one locks the wheel's hash only
        expected.add(SDIST.filename)
    assert {o.name for o in outcomes} == expected
    assert {o.state for o in outcomes} == {State.FETCHED}
    assert sorted(seen, key=str) == sorted(outcomes, key=str)  # each reported as it landed
    assert totals == [len(expected)]
    assert index.count("GET", "pkg-00-0.9-py3-none-any.whl") == 0
