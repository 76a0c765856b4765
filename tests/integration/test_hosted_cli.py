"""`bodega yank | unyank | delete | status | reserve` on a hosted index beside a running
server, and the `bodega cache` commands leaving uploaded files alone (pinned)."""

from pathlib import Path

import httpx
import pytest

from tests.integration.test_cache_cli import blob_path, recorded_keys
from tests.integration.test_cli import clean_environ, run_bodega
from tests.support.accounts import make_token_with_cli
from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.servers import BodegaProcess, bodega_process
from tests.support.uploads import upload_fields
from tests.support.waiting import wait_for

DEMO = build_wheel("demo", "1.0")
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
CONFIG = """
default_index = "root/pypi"
[indexes."root/pypi"]
type = "mirror"
[indexes."acme/private"]
type = "hosted"
upload = ["ci"]
[indexes."acme/all"]
type = "virtual"
bases = ["root/pypi", "acme/private"]
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "bodega.toml"
    path.write_text(CONFIG)
    return path


def bodega(config: Path, data: Path, *args: str) -> tuple[int, str, str]:
    environ = clean_environ(
        BODEGA_DATA_DIR=str(data), BODEGA_UPSTREAM="http://127.0.0.1:9/", BODEGA_CONFIG=str(config)
    )
    result = run_bodega(*args, env=environ)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout, result.stderr


def _upload(server: BodegaProcess, token: str) -> None:
    response = httpx.post(
        f"{server.url}acme/private/",
        data=upload_fields(DEMO, "demo", "1.0"),
        files={"content": (DEMO.filename, DEMO.data)},
        auth=("__token__", token),
        trust_env=False,
    )
    assert response.status_code == 200, response.text


def _files(server: BodegaProcess) -> list[dict[str, object]]:
    page = httpx.get(f"{server.url}acme/private/+simple/demo/", headers=JSON, trust_env=False)
    if page.status_code == 404:
        return []
    files: list[dict[str, object]] = page.json()["files"]
    return files


def test_managing_a_hosted_project_beside_a_running_server(
    tmp_path: Path, fake_index: FakeIndex, config: Path
) -> None:
    data = tmp_path / "data"
    token = make_token_with_cli(data, "ci", config=config, indexes=["acme/private"])
    with bodega_process(data, fake_index.simple_url, "--config", str(config)) as server:
        _upload(server, token)
        code, out, _ = bodega(config, data, "yank", "demo", "1.0", "--reason", "broken")
        assert (code, out) == (0, "yanked 1 files\n")
        assert _files(server)[0]["yanked"] == "broken"
        code, out, _ = bodega(config, data, "unyank", "demo", "--file", DEMO.filename)
        assert (code, out) == (0, "unyanked 1 files\n")
        assert _files(server)[0]["yanked"] is False
        code, out, _ = bodega(config, data, "status", "demo", "archived", "--reason", "old")
        assert code == 0
        page = httpx.get(f"{server.url}acme/private/+simple/demo/", headers=JSON, trust_env=False)
        assert page.json()["project-status"] == {"status": "archived", "reason": "old"}
        code, out, _ = bodega(config, data, "reserve", "internal-tool", "--index", "acme/private")
        assert (code, out) == (0, "internal-tool\n")
        code, out, _ = bodega(config, data, "reserve", "internal-tool", "--release")
        assert (code, out) == (0, "")
        code, _, err = bodega(config, data, "yank", "demo", "9.9")
        assert code == 1
        assert "no file of demo matches" in err
        code, _, err = bodega(config, data, "yank", "demo", "--index", "root/pypi")
        assert code == 2
        assert "root/pypi is no hosted index" in err
        code, out, _ = bodega(config, data, "delete", "demo", "--yes")
        assert (code, out) == (0, "deleted 1 files\n")
        assert _files(server) == []
        assert not blob_path(data, DEMO.sha256).exists()


def test_cache_commands_never_touch_uploaded_files(
    tmp_path: Path, fake_index: FakeIndex, config: Path
) -> None:
    data = tmp_path / "data"
    token = make_token_with_cli(data, "ci", config=config, indexes=["acme/private"])
    with bodega_process(data, fake_index.simple_url, "--config", str(config)) as server:
        _upload(server, token)
        # The upload rebuilt the hosted root list; its gzip copies are made in the
        # background: let them be recorded, or verify would rightly adopt an orphan.
        wait_for(lambda: any("gzip copies made" in line for line in list(server.log)))
    assert blob_path(data, DEMO.sha256).exists()
    code, out, _ = bodega(config, data, "cache", "verify")
    assert code == 0, out
    assert "0 adopted" in out
    assert DEMO.sha256 not in recorded_keys(data)
    code, _, _ = bodega(config, data, "cache", "prune", "--unused-for", "0s")
    assert code == 0
    assert blob_path(data, DEMO.sha256).exists()
    assert blob_path(data, DEMO.metadata_sha256 or "").exists()
