"""How bodega reaches its upstream: the environment's proxy settings and ~/.netrc, as pip and
aiohttp's trust_env read them (read once per upstream host, not on every request)."""

import base64
from pathlib import Path

import httpx

from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.servers import bodega_process

WHEEL = build_wheel("demo", "1.0")
# Loopback, and nothing listens there: reachable only through the proxy.
UNREACHABLE_UPSTREAM = "http://127.0.0.2:9/simple/"
ALICE = "Basic " + base64.b64encode(b"alice:s3cret").decode()


def alices_netrc(tmp_path: Path) -> Path:
    """A .netrc with alice's credentials for the loopback upstream."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login alice password s3cret\n")
    netrc.chmod(0o600)
    return netrc


def test_credentials_for_the_upstream_host_come_from_netrc_read_at_start(
    fake_index: FakeIndex, tmp_path: Path
) -> None:
    fake_index.add("demo", WHEEL)
    netrc = alices_netrc(tmp_path)
    with bodega_process(
        tmp_path / "data", fake_index.simple_url, env={"NETRC": str(netrc)}
    ) as bodega:
        # Read when bodega starts, so the first client's page does not wait for it: a
        # .netrc removed once bodega is up still gives the credentials it held.
        netrc.unlink()
        page = httpx.get(f"{bodega.url}simple/demo/", trust_env=False, timeout=10)
        assert page.status_code == 200
        response = httpx.get(
            f"{bodega.url}files/demo/{WHEEL.filename}", trust_env=False, timeout=10
        )
        assert response.content == WHEEL.data
    upstream_requests = [r for r in fake_index.requests if r.method == "GET"]
    assert upstream_requests
    assert all(r.headers.get("Authorization") == ALICE for r in upstream_requests)


def test_the_upstream_is_reached_through_the_environments_proxy(
    fake_index: FakeIndex, tmp_path: Path
) -> None:
    fake_index.add("demo", WHEEL)
    proxy = f"http://127.0.0.1:{fake_index.pages_port}"
    environment = {"HTTP_PROXY": proxy, "http_proxy": proxy, "NO_PROXY": "", "no_proxy": ""}
    with bodega_process(tmp_path / "data", UNREACHABLE_UPSTREAM, env=environment) as bodega:
        page = httpx.get(f"{bodega.url}simple/demo/", trust_env=False, timeout=10)
    assert page.status_code == 200
    assert WHEEL.filename in page.text
    assert fake_index.count("GET", "/simple/demo/") == 1
