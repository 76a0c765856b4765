"""`bodega cache stats | prune | verify | forget`, beside a running server and without one."""

import hashlib
import sqlite3
from contextlib import closing
from pathlib import Path

import httpx

from tests.integration.test_cli import clean_environ, run_bodega
from tests.support.distributions import BuiltFile, build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.servers import bodega_process
from tests.support.waiting import wait_for

WHEELS = [build_wheel(name, "1.0", payload_size=20_000) for name in ("one", "two", "three")]


def cache(data_dir: Path, *args: str) -> tuple[int, str, str]:
    environ = clean_environ(BODEGA_DATA_DIR=str(data_dir), BODEGA_UPSTREAM="http://127.0.0.1:9/")
    result = run_bodega("cache", *args, env=environ)
    assert "Traceback" not in result.stderr
    return result.returncode, result.stdout, result.stderr


def blob_path(data_dir: Path, key: str) -> Path:
    return data_dir / "blobs" / "sha256" / key[:2] / key[2:4] / key


def recorded_keys(data_dir: Path) -> set[str]:
    with closing(sqlite3.connect(data_dir / "bodega.sqlite3")) as db:
        return {row[0] for row in db.execute("SELECT key FROM blobs")}


def fill(fake_index: FakeIndex, data_dir: Path) -> None:
    """A cache holding the three wheels and their pages, filled by a real server."""
    for wheel in WHEELS:
        fake_index.add(wheel.filename.split("-")[0], wheel)
    with bodega_process(data_dir, fake_index.simple_url) as server:
        for wheel in WHEELS:
            get(server.url, wheel)


def get(bodega: str, wheel: BuiltFile) -> httpx.Response:
    project = wheel.filename.split("-")[0]
    response = httpx.get(f"{bodega}files/{project}/{wheel.filename}", trust_env=False, timeout=10)
    assert response.content == wheel.data
    return response


def test_the_commands_work_beside_a_running_server(tmp_path: Path, fake_index: FakeIndex) -> None:
    data = tmp_path / "data"
    fill(fake_index, data)
    with bodega_process(data, fake_index.simple_url, "--index-ttl", "0") as server:
        code, out, _ = cache(data, "stats")
        assert code == 0
        assert "files:  3 (" in out
        assert "pages:  3" in out

        old, recent = WHEELS[0], WHEELS[1]
        with closing(sqlite3.connect(data / "bodega.sqlite3")) as db, db:
            db.execute("UPDATE blobs SET accessed_at = 0 WHERE key = ?", (old.sha256,))
        code, out, _ = cache(data, "prune", "--unused-for", "90d")
        assert (code, out.strip().split(" ")[:2]) == (0, ["pruned", "1"])
        assert not blob_path(data, old.sha256).exists()
        assert blob_path(data, recent.sha256).exists()
        assert get(server.url, old).headers["X-Bodega-Cache"] == "MISS"  # fetched again

        code, out, _ = cache(data, "forget", "One")
        assert (code, out) == (0, "forgot the page of one\n")
        before = len(fake_index.requests)
        page = httpx.get(f"{server.url}simple/one/", trust_env=False, timeout=10)
        assert page.status_code == 200
        asked = [r for r in fake_index.requests[before:] if r.path == "/simple/one/"]
        assert [r.headers.get("If-None-Match") for r in asked] == [None]  # in full

        code, out, _ = cache(data, "verify")
        assert (code, out) == (
            0,
            "checked 3 files: 0 quarantined, 0 missing, 0 adopted, 0 unknown\n",
        )


def test_verify_quarantines_bad_bytes_and_reconciles_the_database(
    tmp_path: Path, fake_index: FakeIndex
) -> None:
    data = tmp_path / "data"
    fill(fake_index, data)
    corrupt, missing, fine = WHEELS
    path = blob_path(data, corrupt.sha256)
    path.write_bytes(b"X" + path.read_bytes()[1:])
    blob_path(data, missing.sha256).unlink()
    orphan = b"bytes that a crash left without a row"
    orphan_key = hashlib.sha256(orphan).hexdigest()
    blob_path(data, orphan_key).parent.mkdir(parents=True, exist_ok=True)
    blob_path(data, orphan_key).write_bytes(orphan)
    mislabelled_key = "0" * 64
    blob_path(data, mislabelled_key).parent.mkdir(parents=True, exist_ok=True)
    blob_path(data, mislabelled_key).write_bytes(b"not what the name says")

    code, out, err = cache(data, "verify")

    assert code == 1
    assert out == "checked 4 files: 2 quarantined, 1 missing, 1 adopted, 0 unknown\n"
    assert f"quarantined {corrupt.sha256}" in err
    assert f"quarantined {mislabelled_key}" in err
    assert f"forgot {missing.sha256}" in err
    assert f"adopted {orphan_key}" in err
    assert sorted(p.name for p in (data / "quarantine").iterdir()) == sorted(
        [corrupt.sha256, mislabelled_key]
    )
    assert not path.exists()
    assert recorded_keys(data) == {fine.sha256, orphan_key}
    assert cache(data, "verify")[0] == 0  # all corrected


def test_forget_a_project_that_is_not_cached(tmp_path: Path, fake_index: FakeIndex) -> None:
    data = tmp_path / "data"
    fill(fake_index, data)
    assert cache(data, "forget", "nothing")[:2] == (0, "no stored page for nothing\n")


def test_cache_commands_refuse_a_data_dir_without_a_cache(tmp_path: Path) -> None:
    code, _, err = cache(tmp_path / "none", "stats")
    assert code == 1
    assert err.strip() == f"Error: no bodega cache in {tmp_path / 'none'}"
    assert not (tmp_path / "none").exists()


def test_prune_refuses_a_duration_it_cannot_read(tmp_path: Path) -> None:
    code, _, err = cache(tmp_path, "prune", "--unused-for", "soon")
    assert code == 2
    assert "is not a duration like 90d" in err


def root_keys(data_dir: Path) -> list[str | None]:
    with closing(sqlite3.connect(data_dir / "bodega.sqlite3")) as db:
        row = db.execute(
            "SELECT html_key, json_key, html_gzip_key, json_gzip_key FROM root"
        ).fetchone()
    return list(row) if row else []


def test_stats_and_verify_count_the_same_files_and_the_root_list_apart(
    tmp_path: Path, fake_index: FakeIndex
) -> None:
    data = tmp_path / "data"
    fill(fake_index, data)
    with bodega_process(data, fake_index.simple_url) as server:
        for accept in ("text/html", "application/vnd.pypi.simple.v1+json"):
            response = httpx.get(
                f"{server.url}simple/",
                headers={"Accept": accept, "Accept-Encoding": "gzip"},
                trust_env=False,
                timeout=10,
            )
            assert response.status_code == 200
        wait_for(lambda: len(root_keys(data)) == 4 and None not in root_keys(data))
    code, stats, _ = cache(data, "stats")
    assert code == 0
    assert "files:  3 (" in stats
    assert "root list: 4 renderings (" in stats
    code, verified, _ = cache(data, "verify")
    assert (code, verified) == (
        0,
        "checked 3 files and 4 renderings of the root list:"
        " 0 quarantined, 0 missing, 0 adopted, 0 unknown\n",
    )


def test_a_damaged_database_is_one_clear_error_for_cache_commands_and_serve(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "bodega.sqlite3").write_bytes(b"not a database " * 500)
    status, _, errors = cache(data_dir, "stats")
    assert status == 1
    assert "is damaged" in errors
    environ = clean_environ(BODEGA_DATA_DIR=str(data_dir), BODEGA_UPSTREAM="http://127.0.0.1:9/")
    served = run_bodega("serve", "--port", "0", env=environ)
    assert served.returncode == 1
    assert "is damaged" in served.stderr
    assert "Traceback" not in served.stderr
