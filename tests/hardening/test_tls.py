"""Scenario 25: TLS problems with the upstream, on a local CA made by trustme.

bodega verifies upstream certificates with the system's trust store; a private CA is
configured the OpenSSL way (SSL_CERT_FILE), so those tests run bodega as a subprocess.
"""

import asyncio
import datetime
import ssl
from pathlib import Path

import httpx
import trustme
from aiohttp import web

from tests.conftest import StartBodega
from tests.hardening.hostile import hostile_upstream, sha256
from tests.support.distributions import build_wheel
from tests.support.servers import BodegaProcess

WHEEL = build_wheel("demo", "1.0")
OTHER = build_wheel("other", "1.0")
EXPIRED = build_wheel("expired", "1.0")


def server_context(
    ca: trustme.CA, identity: str, not_after: datetime.datetime | None = None
) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    not_before = None if not_after is None else not_after - datetime.timedelta(days=30)
    ca.issue_cert(identity, not_before=not_before, not_after=not_after).configure_cert(context)
    return context


async def test_scenario_25_an_untrusted_certificate_fails_closed(
    start_bodega: StartBodega, client: httpx.AsyncClient
) -> None:
    """Scenario 25: a certificate from a CA nobody configured is a 502, never a page."""
    ca = trustme.CA()
    async with hostile_upstream(server_context(ca, "127.0.0.1")) as upstream:
        upstream.json_page("demo", [upstream.listed(WHEEL.filename, WHEEL.data)])
        bodega = await start_bodega(upstream=upstream.simple_url)
        response = await client.get(f"{bodega}simple/demo/")
        assert response.status_code == 502
        assert upstream.seen == []  # the handshake failed before any request


async def test_scenario_25_with_the_ca_configured_only_valid_certificates_pass(
    tmp_path: Path,
) -> None:
    """Scenario 25 and 18: with the CA in SSL_CERT_FILE the upstream works; a hostname
    mismatch and an expired certificate (on the files' hosts) are still refused, and so is
    a redirect from https down to http."""
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    past = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    async with (
        hostile_upstream(server_context(ca, "127.0.0.1")) as upstream,
        hostile_upstream(server_context(ca, "other.example")) as mismatched,
        hostile_upstream(server_context(ca, "127.0.0.1", not_after=past)) as expired,
        hostile_upstream() as plain,
    ):
        files = [
            upstream.listed(WHEEL.filename, WHEEL.data),
            mismatched.listed(OTHER.filename, OTHER.data),
            expired.listed(EXPIRED.filename, EXPIRED.data),
        ]
        upstream.json_page("demo", files)
        plain.json_page("down", [])

        async def downgrade(request: web.Request) -> web.StreamResponse:
            raise web.HTTPFound(f"{plain.url}simple/down/")

        upstream.routes["/simple/down/"] = downgrade
        args = ["--data-dir", str(tmp_path / "data"), "--upstream", upstream.simple_url]
        server = await asyncio.to_thread(BodegaProcess, args, {"SSL_CERT_FILE": str(ca_file)})
        try:
            async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
                good = await client.get(f"{server.url}files/demo/{WHEEL.filename}")
                assert good.status_code == 200
                assert sha256(good.content) == WHEEL.sha256
                for name in (OTHER.filename, EXPIRED.filename):
                    response = await client.get(f"{server.url}files/demo/{name}")
                    assert response.status_code == 502, name
                assert (await client.get(f"{server.url}simple/down/")).status_code == 502
            assert mismatched.seen == []
            assert expired.seen == []
            assert plain.seen == []
        finally:
            await asyncio.to_thread(server.stop)
