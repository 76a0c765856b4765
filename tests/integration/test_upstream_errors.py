"""What bodega says when upstream cannot be reached: in words, naming the URL and the cause,
never a Python repr of the client library's exception."""

import httpx
import pytest

from tests.conftest import StartBodega
from tests.support.ports import free_port


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: connecting to it is refused."""
    return free_port()


async def test_ready_says_which_upstream_is_unreachable_and_why(
    start_bodega: StartBodega, client: httpx.AsyncClient, closed_port: int
) -> None:
    upstream = f"http://127.0.0.1:{closed_port}/simple/"
    bodega = await start_bodega(upstream=upstream)
    response = await client.get(f"{bodega}-/ready")
    assert response.status_code == 503
    assert response.json()["upstream"] == (
        f"upstream {upstream} is unreachable:"
        f" cannot connect to 127.0.0.1:{closed_port} (Connection refused)"
    )


async def test_a_502_page_says_which_request_failed_and_why(
    start_bodega: StartBodega, client: httpx.AsyncClient, closed_port: int
) -> None:
    upstream = f"http://127.0.0.1:{closed_port}/simple/"
    bodega = await start_bodega(upstream=upstream)
    response = await client.get(f"{bodega}simple/demo/")
    assert response.status_code == 502
    assert response.text == (
        f"upstream request for {upstream}demo/ failed:"
        f" cannot connect to 127.0.0.1:{closed_port} (Connection refused)\n"
    )


async def test_credentials_in_the_upstream_url_stay_out_of_the_message(
    start_bodega: StartBodega, client: httpx.AsyncClient, closed_port: int
) -> None:
    bodega = await start_bodega(upstream=f"http://user:s3cret@127.0.0.1:{closed_port}/simple/")
    page = await client.get(f"{bodega}simple/demo/")
    ready = await client.get(f"{bodega}-/ready")
    assert page.status_code == 502
    for text in (page.text, ready.text):
        assert "s3cret" not in text
        assert "user" not in text
        assert f"127.0.0.1:{closed_port}/simple/" in text
