"""The container image, without a container engine: the Dockerfile linted (hadolint) and held
to the rules of issue 5, and the image's exact start command run here in a fresh data dir."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.image import DOCKERFILE, ROOT, exec_form, parsed, start_command, values
from tests.support.servers import BodegaProcess

COMPOSE = ROOT / "compose.yaml"
HADOLINT = Path(sys.executable).with_name("hadolint")


# ------------------------------------------------------------------------------ lint and rules


def test_hadolint_finds_nothing_to_fix() -> None:
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(DOCKERFILE)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_the_image_is_multi_stage_on_one_explicitly_tagged_base() -> None:
    images = parsed().parent_images
    assert len(images) >= 2
    # The venv built in the first stage runs in the last: same Python, same paths.
    assert len(set(images)) == 1
    name, _, tag = images[0].partition(":")
    assert name == "python"
    assert tag.startswith("3.11-slim")
    assert tag != "latest"


def test_the_image_runs_as_a_numeric_user_that_is_not_root() -> None:
    (user,) = values("USER")
    uid = user.split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0
    assert any(f"--uid {uid}" in run for run in values("RUN"))  # the user exists in the image


def test_the_data_dir_is_a_volume_and_bodega_listens_on_all_interfaces_inside() -> None:
    environment = parsed().envs
    assert json.loads(values("VOLUME")[0]) == [environment["BODEGA_DATA_DIR"]]
    assert environment["BODEGA_HOST"] == "0.0.0.0"
    assert values("EXPOSE") == [environment["BODEGA_PORT"]]
    assert float(environment["BODEGA_SHUTDOWN_TIMEOUT"]) < 10  # docker stop kills at 10 s


def test_the_healthcheck_asks_bodegas_health_endpoint() -> None:
    assert "/-/health" in exec_form("HEALTHCHECK")[-1]


def test_compose_publishes_on_loopback_only_and_keeps_data_on_a_volume() -> None:
    compose = COMPOSE.read_text()
    published = re.findall(r'^\s*- "([^"]+)"', compose, re.MULTILINE)
    assert published == ["127.0.0.1:3141:3141"]
    assert "- bodega-data:/var/lib/bodega" in compose


def test_only_the_package_sources_go_into_the_build_context() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line for line in lines if line and not line.startswith("#")]
    assert patterns[:4] == ["*", "!pyproject.toml", "!README.md", "!src/"]


# ------------------------------------------------------------------------------ the start command


def test_the_images_command_initialises_a_fresh_data_dir_serves_and_stops_cleanly(
    tmp_path: Path, fake_index: FakeIndex
) -> None:
    fake_index.add("demo", build_wheel("demo", "1.0"))
    data_dir = tmp_path / "volume"
    data_dir.mkdir()  # as the image leaves it: an empty folder the user owns
    # As the container starts: no BODEGA_* of the test run's own, only the image's.
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BODEGA_")}
    image_env = {k: v for k, v in parsed().envs.items() if k.startswith("BODEGA_")}
    # Only what cannot be the same here: loopback instead of every interface, any free port,
    # the test's folder for the volume and the fake index for the public one.
    environ |= image_env | {
        "BODEGA_HOST": "127.0.0.1",
        "BODEGA_PORT": "0",
        "BODEGA_DATA_DIR": str(data_dir),
        "BODEGA_UPSTREAM": fake_index.simple_url,
    }
    server = BodegaProcess([], command=start_command(), base_env=environ)
    try:
        assert (data_dir / "bodega.sqlite3").is_file()
        page = httpx.get(f"{server.url}simple/demo/", trust_env=False, timeout=10)
        assert page.status_code == 200
        assert "demo-1.0-py3-none-any.whl" in page.text

        port = str(httpx.URL(server.url).port)
        health = httpx.get(f"{server.url}-/health", trust_env=False, timeout=10)
        check = subprocess.run(
            exec_form("HEALTHCHECK"),
            env={**environ, "BODEGA_PORT": port},
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert health.status_code == 200
        assert check.returncode == 0, check.stderr
    finally:
        exit_code = server.stop()  # SIGTERM, the image's STOPSIGNAL
    assert values("STOPSIGNAL") == ["SIGTERM"]
    assert exit_code == 0
    assert list((data_dir / "tmp").iterdir()) == []


def test_the_healthcheck_fails_when_nothing_answers(tmp_path: Path) -> None:
    environ = {**os.environ, "BODEGA_PORT": "9"}  # loopback discard port: nothing listens
    check = subprocess.run(
        exec_form("HEALTHCHECK"), env=environ, capture_output=True, timeout=30, check=False
    )
    assert check.returncode != 0
