"""`bodega allow`: break-glass beside a running server, which sees it within a second."""

import json
import time
from pathlib import Path

import httpx

from bodega.services import AUDIT_FILE
from tests.integration.test_cli import clean_environ, run_bodega
from tests.support.distributions import build_wheel
from tests.support.fake_index import JSON_TYPE, FakeIndex
from tests.support.servers import bodega_process
from tests.support.waiting import wait_for

OLD = build_wheel("pkg", "1.0")
NEW = build_wheel("pkg", "2.0")


def allow(data_dir: Path, *args: str) -> tuple[int, str, str]:
    environ = clean_environ(BODEGA_DATA_DIR=str(data_dir), BODEGA_UPSTREAM="http://127.0.0.1:9/")
    result = run_bodega("allow", *args, env=environ)
    assert "Traceback" not in result.stderr
    return result.returncode, result.stdout, result.stderr


def files(url: str) -> list[str]:
    response = httpx.get(url + "simple/pkg/", headers={"Accept": JSON_TYPE}, trust_env=False)
    return [file["filename"] for file in response.json()["files"]]


def test_allow_shows_a_version_at_once_and_revoke_hides_it(
    fake_index: FakeIndex, tmp_path: Path
) -> None:
    fake_index.add("pkg", OLD, upload_time="2020-01-01T00:00:00Z")
    an_hour_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    fake_index.add("pkg", NEW, upload_time=an_hour_ago)
    data = tmp_path / "data"
    with bodega_process(data, fake_index.simple_url, "--min-release-age", "1d") as server:
        assert files(server.url) == [OLD.filename]
        code, out, _ = allow(data, "pkg==2.0", "--reason", "CVE-2026-1 fix", "--until", "2d")
        assert code == 0
        assert out.startswith("allowed pkg==2.0 on root/pypi until ")
        wait_for(lambda: files(server.url) == [OLD.filename, NEW.filename], seconds=5)
        wheel = httpx.get(server.url + f"files/pkg/{NEW.filename}", trust_env=False)
        assert wheel.content == NEW.data
        code, out, _ = allow(data, "--list")
        assert code == 0
        assert "pkg==2.0" in out
        assert "CVE-2026-1 fix" in out
        exemption_id = out.split("\t")[0]
        code, out, _ = allow(data, "--revoke", exemption_id)
        assert code == 0
        wait_for(lambda: files(server.url) == [OLD.filename], seconds=5)
        assert "revoked" in allow(data, "--list")[1]
    events = [json.loads(line)["event"] for line in (data / AUDIT_FILE).read_text().splitlines()]
    assert "exemption_added" in events
    assert "exemption_revoked" in events


def test_allow_refuses_what_it_cannot_record(fake_index: FakeIndex, tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert allow(data, "--list")[0] != 0  # no cache there yet
    assert run_bodega("init", "--data-dir", str(data)).returncode == 0
    assert allow(data, "--list") == (0, "no exemptions\n", "")
    code, _, err = allow(data, "pkg==2.0")
    assert code == 2
    assert "--reason" in err
    code, _, err = allow(data, "pkg==banana", "--reason", "x")
    assert code == 2
    assert "no version" in err
    code, _, err = allow(data, "pkg", "--reason", "x", "--index", "no/such")
    assert code == 2
    assert "no index named no/such" in err
    code, _, err = allow(data, "--revoke", "7")
    assert code == 1
    assert "no exemption 7" in err
    assert allow(data)[0] == 2
