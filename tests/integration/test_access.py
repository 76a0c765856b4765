"""Access control over a real server (issue 13): per-index read rules, 401 with a Basic
challenge, 403, scoped tokens, rate-limited failed logins, the first admin token, and no
secret in any answer or log line."""

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from bodega.config import Settings
from bodega.core.access import ANYONE, Action, IndexAccess, parse_token
from bodega.core.indexes import MirrorIndex, VirtualIndex
from bodega.services import open_accounts
from tests.support.accounts import make_token
from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.servers import bodega_and_services, bodega_in_process, make_settings

SIX = build_wheel("six", "1.16")
SECRET_SAUCE = build_wheel("secret-sauce", "1.0")
PASSWORD = "correct horse battery staple"


@pytest.fixture
def public() -> Iterator[FakeIndex]:
    with FakeIndex() as index:
        index.add("six", SIX)
        yield index


@pytest.fixture
def private() -> Iterator[FakeIndex]:
    """Stands in for a hosted index until those land: what matters here is its rules."""
    with FakeIndex() as index:
        index.add("secret-sauce", SECRET_SAUCE)
        yield index


def _mirror(name: str, upstream: str) -> MirrorIndex:
    return MirrorIndex(name, upstream, 600.0, 30.0, 5.0, 600.0, False)


@pytest.fixture
def settings(public: FakeIndex, private: FakeIndex, tmp_path: Path) -> Settings:
    """root/pypi open; acme/private readable by alice; acme/all over both (no rule of its
    own: it takes acme/private's); bob may upload to acme/private."""
    return make_settings(
        data_dir=tmp_path / "data",
        upstream=public.simple_url,
        index_table=(
            _mirror("root/pypi", public.simple_url),
            _mirror("acme/private", private.simple_url),
            VirtualIndex("acme/all", ("acme/private", "root/pypi")),
        ),
        access_table=(IndexAccess("acme/private", read=("alice",), upload=("bob",)),),
        default_index="root/pypi",
    )


@pytest.fixture
async def tokens(settings: Settings) -> dict[str, str]:
    """alice (password), bob and carol, and a token of each kind, made before the start
    as the CLI makes them."""
    async with open_accounts(settings) as accounts:
        await accounts.add_user("alice", PASSWORD, is_admin=False)
        await accounts.add_user("bob", None, is_admin=False)
        await accounts.add_user("carol", PASSWORD, is_admin=False)
        made = {
            "alice-read": await accounts.create_token(
                "alice", ["acme/private", "acme/all"], Action.READ, expires_in=3600
            ),
            "alice-elsewhere": await accounts.create_token(
                "alice", ["root/pypi"], Action.READ, expires_in=3600
            ),
        }
    # bob's upload token through the helper other tests (hosted uploads) use.
    made["bob-upload"] = await make_token(settings, "bob", indexes=["acme/private"])
    return made


@pytest.fixture
async def bodega(settings: Settings, tokens: dict[str, str]) -> AsyncIterator[str]:
    async with bodega_in_process(settings) as url:
        yield url


def token(value: str) -> tuple[str, str]:
    return ("__token__", value)


async def get(url: str, auth: tuple[str, str] | None = None, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
        return await client.get(url, auth=auth, **kwargs)


async def upload(url: str, auth: tuple[str, str] | None = None) -> httpx.Response:
    """A legacy-API upload's shape (multipart/form-data POST to the index)."""
    async with httpx.AsyncClient(trust_env=False, timeout=10, auth=auth) as client:
        return await client.post(
            url,
            data={":action": "file_upload", "name": "secret-sauce", "version": "2.0"},
            files={"content": ("secret_sauce-2.0-py3-none-any.whl", b"PK")},
        )


async def test_a_protected_read_asks_for_credentials(bodega: str) -> None:
    for path in (
        "acme/private/+simple/secret-sauce/",
        "acme/private/+simple/",
        "acme/all/+simple/secret-sauce/",  # through a virtual index: its base's rule holds
        "acme/all/+simple/six/",
        f"acme/private/files/secret-sauce/{SECRET_SAUCE.filename}",
        "acme/private/pypi/secret-sauce/json",
        "acme/private/+project/secret-sauce",
    ):
        response = await get(bodega + path)
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"] == 'Basic realm="bodega", charset="UTF-8"'
        assert response.headers["Cache-Control"] == "no-store"
        assert "secret_sauce" not in response.text


async def test_open_indexes_and_operations_need_nothing(bodega: str) -> None:
    assert (await get(bodega + "simple/six/")).status_code == 200
    assert (await get(bodega + "root/pypi/+simple/six/")).status_code == 200
    assert (await get(bodega + "-/health")).status_code == 200
    assert (await get(bodega + "-/metrics")).status_code == 200  # root/pypi is open


async def test_a_password_or_a_token_reads(bodega: str, tokens: dict[str, str]) -> None:
    page = "acme/private/+simple/secret-sauce/"
    for auth in (("alice", PASSWORD), token(tokens["alice-read"]), token(tokens["bob-upload"])):
        response = await get(bodega + page, auth)
        assert response.status_code == 200, auth[0]
        assert SECRET_SAUCE.filename in response.text
    files = f"acme/all/files/secret-sauce/{SECRET_SAUCE.filename}"
    response = await get(bodega + files, token(tokens["alice-read"]))
    assert response.content == SECRET_SAUCE.data


async def test_valid_credentials_that_do_not_allow_a_read_are_forbidden(
    bodega: str, tokens: dict[str, str]
) -> None:
    page = "acme/private/+simple/secret-sauce/"
    carol = await get(bodega + page, ("carol", PASSWORD))  # not in acme/private's read
    assert carol.status_code == 403
    assert "WWW-Authenticate" not in carol.headers
    elsewhere = await get(bodega + page, token(tokens["alice-elsewhere"]))  # not its index
    assert elsewhere.status_code == 403


async def test_wrong_credentials_are_refused_where_credentials_matter(bodega: str) -> None:
    private = bodega + "acme/private/+simple/secret-sauce/"
    for auth in (("alice", "hunter2"), ("nobody", PASSWORD), token("bodega_nope")):
        response = await get(private, auth)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic ")
        assert auth[0] not in response.text
        assert auth[1] not in response.text
        # An open index reads them not at all: stale .netrc entries break no install.
        assert (await get(bodega + "simple/six/", auth)).status_code == 200
    for header in ("Bearer x", "Basic %%%", "Basic " + base64.b64encode(b"no-colon").decode()):
        refused = await get(private, headers={"Authorization": header})
        assert refused.status_code == 401, header
        assert (await get(bodega + "simple/six/", headers={"Authorization": header})).is_success


async def test_uploads_need_an_upload_right(bodega: str, tokens: dict[str, str]) -> None:
    assert (await upload(bodega + "acme/private/")).status_code == 401
    read_only = await upload(bodega + "acme/private/", token(tokens["alice-read"]))
    assert read_only.status_code == 403
    with_password = await upload(bodega + "acme/private/", ("alice", PASSWORD))
    assert with_password.status_code == 403  # alice reads, bob uploads
    elsewhere = await upload(bodega + "root/pypi/", token(tokens["bob-upload"]))
    assert elsewhere.status_code == 403
    # What an allowed upload gets is the hosted index's to answer; it gets past access.
    allowed = await upload(bodega + "acme/private/", token(tokens["bob-upload"]))
    assert allowed.status_code not in (401, 403)


async def test_failed_logins_are_rate_limited(bodega: str, tokens: dict[str, str]) -> None:
    page = bodega + "acme/private/+simple/secret-sauce/"
    good = await get(page, ("alice", PASSWORD))
    assert good.status_code == 200
    for attempt in range(10):
        assert (await get(page, ("alice", f"guess{attempt}"))).status_code == 401
    held = await get(page, ("alice", "guess10"))
    assert held.status_code == 429
    assert 0 < int(held.headers["Retry-After"]) <= 60
    # The right password, already checked, still passes; a new one waits as guesses do.
    assert (await get(page, ("alice", PASSWORD))).status_code == 200
    assert (await get(page, token(tokens["alice-read"]))).status_code == 429


async def test_no_secret_reaches_the_access_log(
    bodega: str, tokens: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    page = bodega + "acme/private/+simple/secret-sauce/"
    await get(page, token(tokens["alice-read"]))
    await get(page, ("alice", PASSWORD))
    await get(page, ("alice", "wrong-guess"))
    # aiohttp writes a request's line once its response is sent: give the last one a moment.
    for _ in range(100):
        if caplog.text.count("+simple/secret-sauce/ HTTP") >= 3:
            break
        await asyncio.sleep(0.02)
    logged = caplog.text
    assert logged.count("+simple/secret-sauce/ HTTP") >= 3  # the lines are there
    # The core's parser: a secret may itself hold "_", so a split could leave one letter.
    parts = parse_token(tokens["alice-read"])
    assert parts is not None
    secret_part = parts.secret
    for secret in (secret_part, PASSWORD, "wrong-guess", base64.b64encode(b"alice:").decode()):
        assert secret not in logged


async def test_a_protected_default_index_guards_the_short_paths_and_metrics(
    settings: Settings, tokens: dict[str, str]
) -> None:
    protected = replace(settings, default_index="acme/private")
    async with bodega_in_process(protected) as bodega:
        for path in ("simple/", "simple/secret-sauce/", "-/metrics", "", "+cache"):
            assert (await get(bodega + path)).status_code == 401, path
        for path in ("-/health", "-/ready"):
            assert (await get(bodega + path)).status_code == 200, path
        # /-/metrics is a read of the default index, acme/private here.
        elsewhere = await get(bodega + "-/metrics", token(tokens["alice-elsewhere"]))
        assert elsewhere.status_code == 403
        assert (await get(bodega + "-/metrics", token(tokens["alice-read"]))).status_code == 200
        assert (await get(bodega + "-/metrics", ("alice", PASSWORD))).status_code == 200


async def test_the_first_start_that_takes_uploads_makes_an_admin_token(settings: Settings) -> None:
    async with bodega_and_services(settings) as (bodega, services):
        admin_token = services.first_admin_token
        assert admin_token is not None
        response = await get(bodega + "acme/private/+simple/secret-sauce/", token(admin_token))
        assert response.status_code == 200
        assert (await upload(bodega + "acme/private/", token(admin_token))).status_code not in (
            401,
            403,
        )
    async with bodega_and_services(settings) as (_, services):
        assert services.first_admin_token is None  # once only
    async with open_accounts(settings) as accounts:
        (made,) = await accounts.tokens()
        assert (made.user, made.scope, made.indexes) == ("admin", "admin", (ANYONE,))


async def test_no_admin_token_when_nothing_takes_uploads(settings: Settings) -> None:
    read_only = replace(settings, access_table=(IndexAccess("acme/private", read=("alice",)),))
    async with bodega_and_services(read_only) as (_, services):
        assert services.first_admin_token is None
        assert not services.access.is_open_to_everyone


async def test_a_rule_naming_no_account_is_one_line_at_start(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    typo = replace(settings, access_table=(IndexAccess("acme/private", read=("alcie",)),))
    async with bodega_in_process(typo):
        pass
    assert [record.getMessage() for record in caplog.records if record.levelname == "WARNING"] == [
        "the access rules name alcie, which no account has (yet): `bodega user add NAME`"
    ]


async def test_with_open_reads_uploads_still_need_the_upload_right(
    settings: Settings, tokens: dict[str, str]
) -> None:
    open_reads = replace(settings, access_table=(IndexAccess("acme/private", upload=("bob",)),))
    async with bodega_in_process(open_reads) as bodega:
        page = await get(bodega + "acme/private/+simple/secret-sauce/")
        assert page.status_code == 200
        assert (await upload(bodega + "acme/private/")).status_code == 401
        refused = await upload(bodega + "acme/private/", token(tokens["alice-read"]))
        assert refused.status_code == 403
        allowed = await upload(bodega + "acme/private/", token(tokens["bob-upload"]))
        assert allowed.status_code not in (401, 403)
