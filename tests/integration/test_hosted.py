"""Hosted indexes (issue 13): uploads through the legacy upload API, the pages and files of
what was uploaded, every refusal with nothing stored, and no dependency confusion through a
virtual index over a hosted index and a mirror."""

import asyncio
import hashlib
import io
import json
import zipfile
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from bodega.core.access import Action
from bodega.core.indexes import HostedIndex, MirrorIndex, VirtualIndex
from tests.support.accounts import make_token
from tests.support.distributions import BuiltFile, build_sdist, build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.servers import bodega_in_process, make_settings
from tests.support.uploads import upload, upload_fields

DEMO = build_wheel("demo", "1.0", requires_python=">=3.9", summary="private demo")
DEMO_SDIST = build_sdist("demo", "1.0")
PUBLIC_LIB = build_wheel("acme-lib", "9.0")
PRIVATE_LIB = build_wheel("acme-lib", "1.0")
SIX = build_wheel("six", "1.16")
HTML = {"Accept": "text/html"}
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


@pytest.fixture
def public() -> Iterator[FakeIndex]:
    with FakeIndex() as index:
        index.add("six", SIX)
        index.add("acme-lib", PUBLIC_LIB)
        index.list_names(["six", "acme-lib"])
        yield index


@pytest.fixture
async def start(public: FakeIndex, tmp_path: Path, client: httpx.AsyncClient) -> AsyncIterator[Any]:
    """Starts bodega with root/pypi, acme/private (hosted) and acme/all over both, the
    mirror first: the hosted base's names win whatever the order. The client carries an
    admin's token (uploads and +manage need one)."""

    async def started(*, merge: bool = False, max_upload_size: int = 10 * 1024 * 1024) -> str:
        settings = make_settings(
            data_dir=tmp_path / "data",
            upstream=public.simple_url,
            index_table=(
                MirrorIndex("root/pypi", public.simple_url, 600.0, 30.0, 5.0, 600.0, False),
                HostedIndex("acme/private", ("acme-lib",), max_upload_size),
                VirtualIndex("acme/all", ("root/pypi", "acme/private"), merge=merge),
            ),
            default_index="root/pypi",
        )
        token = await make_token(settings, "ci", scope=Action.ADMIN, is_admin=True)
        client.auth = ("__token__", token)
        limited = await make_token(settings, "ci", scope=Action.ADMIN, projects=("demo",))
        tokens["demo-only"] = ("__token__", limited)
        return await stack.enter_async_context(bodega_in_process(settings))

    async with AsyncExitStack() as stack:
        yield started


tokens: dict[str, tuple[str, str]] = {}  # credentials the `start` fixture made, by purpose


async def test_a_token_limited_to_a_project_uploads_and_manages_that_one_alone(
    start: Any, client: httpx.AsyncClient
) -> None:
    base = await start()
    private = f"{base}acme/private/"
    demo_only = tokens["demo-only"]
    other = build_wheel("other", "1.0")
    refused = await upload(client, private, other, "other", "1.0", auth=demo_only)
    assert refused.status_code == 403
    assert (await client.get(f"{private}+simple/other/")).status_code == 404
    assert (await upload(client, private, DEMO, "demo", "1.0", auth=demo_only)).status_code == 200
    manage = f"{private}+manage"
    reserve = {"action": "reserve", "project": "other"}
    assert (await client.post(manage, json=reserve, auth=demo_only)).status_code == 403
    yank = {"action": "yank", "project": "demo", "version": "1.0"}
    assert (await client.post(manage, json=yank, auth=demo_only)).status_code == 200


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as http:
        yield http


def _blobs(tmp_path: Path) -> set[str]:
    return {
        path.name
        for path in (tmp_path / "data").rglob("*")
        if path.is_file() and len(path.name) == 64
    }


async def test_an_uploaded_wheel_and_sdist_are_served(
    start: Any, client: httpx.AsyncClient
) -> None:
    base = await start()
    private = f"{base}acme/private/"
    for built in (DEMO, DEMO_SDIST):
        response = await upload(client, private, built, "demo", "1.0")
        assert response.status_code == 200, response.text
    page = await client.get(f"{private}+simple/demo/", headers=JSON)
    assert page.status_code == 200
    files = {entry["filename"]: entry for entry in page.json()["files"]}
    assert set(files) == {DEMO.filename, DEMO_SDIST.filename}
    wheel = files[DEMO.filename]
    assert wheel["hashes"] == {"sha256": DEMO.sha256}
    assert wheel["requires-python"] == ">=3.9"
    assert wheel["core-metadata"] == {"sha256": DEMO.metadata_sha256}
    assert wheel["size"] == DEMO.size
    assert wheel["upload-time"].endswith("Z")
    assert page.json()["versions"] == ["1.0"]
    data = await client.get(f"{private}+simple/demo/{wheel['url']}")
    assert data.status_code == 200
    assert data.content == DEMO.data
    metadata = await client.get(f"{private}+simple/demo/{wheel['url']}.metadata")
    assert metadata.content == DEMO.metadata
    html = await client.get(f"{private}+simple/demo/", headers=HTML)
    assert f"#sha256={DEMO.sha256}" in html.text
    root = await client.get(f"{private}+simple/", headers=JSON)
    assert [p["name"] for p in root.json()["projects"]] == ["demo"]
    through_all = await client.get(f"{base}acme/all/+simple/demo/", headers=JSON)
    assert [f["filename"] for f in through_all.json()["files"]] == [
        DEMO.filename,
        DEMO_SDIST.filename,
    ]
    got = await client.get(f"{base}acme/all/+simple/demo/{wheel['url']}")
    assert got.content == DEMO.data


async def test_a_private_name_shadows_the_upstream_one(
    start: Any, client: httpx.AsyncClient, public: FakeIndex
) -> None:
    base = await start()
    # Reserved before any upload: the upstream's squatted name never reaches a client.
    reserved = await client.get(f"{base}acme/all/+simple/acme-lib/", headers=JSON)
    assert reserved.status_code == 404
    response = await upload(client, f"{base}acme/private/", PRIVATE_LIB, "acme-lib", "1.0")
    assert response.status_code == 200, response.text
    page = await client.get(f"{base}acme/all/+simple/acme-lib/", headers=JSON)
    assert [f["filename"] for f in page.json()["files"]] == [PRIVATE_LIB.filename]
    assert page.json()["versions"] == ["1.0"]
    json_api = await client.get(f"{base}acme/all/pypi/acme-lib/json")
    assert json_api.json()["info"]["version"] == "1.0"
    assert [f["filename"] for f in json_api.json()["urls"]] == [PRIVATE_LIB.filename]
    assert public.count("GET", "/acme-lib/") == 0  # never asked upstream for it
    # The mirror's own index still serves the public project.
    mirror = await client.get(f"{base}root/pypi/+simple/acme-lib/", headers=JSON)
    assert [f["filename"] for f in mirror.json()["files"]] == [PUBLIC_LIB.filename]
    six = await client.get(f"{base}acme/all/+simple/six/", headers=JSON)
    assert [f["filename"] for f in six.json()["files"]] == [SIX.filename]


async def test_merge_unites_the_private_and_public_pages(
    start: Any, client: httpx.AsyncClient
) -> None:
    base = await start(merge=True)
    await upload(client, f"{base}acme/private/", PRIVATE_LIB, "acme-lib", "1.0")
    page = await client.get(f"{base}acme/all/+simple/acme-lib/", headers=JSON)
    assert {f["filename"] for f in page.json()["files"]} == {
        PRIVATE_LIB.filename,
        PUBLIC_LIB.filename,
    }
    private = await client.get(f"{base}acme/all/files/acme-lib/{PRIVATE_LIB.filename}")
    assert private.content == PRIVATE_LIB.data


async def test_a_new_name_that_exists_upstream_needs_a_reservation(
    start: Any, client: httpx.AsyncClient
) -> None:
    base = await start()
    six = build_wheel("six", "99.0")
    response = await upload(client, f"{base}acme/private/", six, "six", "99.0")
    assert response.status_code == 400
    assert "exists on root/pypi" in response.reason_phrase
    reserve = await client.post(
        f"{base}acme/private/+manage", json={"action": "reserve", "project": "six"}
    )
    assert reserve.json() == {"reserved": ["acme-lib", "six"]}
    response = await upload(client, f"{base}acme/private/", six, "six", "99.0")
    assert response.status_code == 200, response.text


async def test_a_filename_is_never_accepted_twice(start: Any, client: httpx.AsyncClient) -> None:
    base = await start()
    private = f"{base}acme/private/"
    assert (await upload(client, private, DEMO, "demo", "1.0")).status_code == 200
    again = await upload(client, private, DEMO, "demo", "1.0")
    assert again.status_code == 400
    assert again.reason_phrase.startswith("File already exists")
    deleted = await client.post(
        f"{private}+manage", json={"action": "delete", "project": "demo", "version": "1.0"}
    )
    assert deleted.json() == {"files": 1}
    assert (await client.get(f"{private}+simple/demo/")).status_code == 200
    after = await upload(client, private, DEMO, "demo", "1.0")
    assert after.status_code == 400
    assert after.reason_phrase.startswith("File already exists")


async def test_concurrent_uploads_of_one_filename_let_exactly_one_in(
    start: Any, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    base = await start()
    variants = [build_wheel("demo", "1.0", summary=f"variant {n}") for n in range(4)]
    responses = await asyncio.gather(
        *(upload(client, f"{base}acme/private/", v, "demo", "1.0") for v in variants)
    )
    assert sorted(r.status_code for r in responses) == [200, 400, 400, 400]
    winner = variants[[r.status_code for r in responses].index(200)]
    page = await client.get(f"{base}acme/private/+simple/demo/", headers=JSON)
    assert [f["hashes"]["sha256"] for f in page.json()["files"]] == [winner.sha256]
    losers = {v.sha256 for v in variants} - {winner.sha256}
    assert not losers & _blobs(tmp_path)


def _renamed_wheel(name: str, version: str, as_name: str) -> BuiltFile:
    """A wheel whose METADATA names another project than its filename says."""
    built = build_wheel(name, version)
    return BuiltFile(built.filename.replace(name, as_name, 1), built.data, built.metadata)


def _zip_with(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return buffer.getvalue()


def _digests(data: bytes) -> dict[str, str]:
    return {
        "md5_digest": hashlib.md5(data, usedforsecurity=False).hexdigest(),
        "sha256_digest": hashlib.sha256(data).hexdigest(),
        "blake2_256_digest": hashlib.blake2b(data, digest_size=32).hexdigest(),
    }


_BOMB = _zip_with(
    {"demo-1.0.dist-info/METADATA": b"Name: demo\nVersion: 1.0\n" + b" " * 50_000_000}
)
_TRAVERSAL = _zip_with({"../demo-1.0.dist-info/METADATA": b"Name: demo\nVersion: 1.0\n"})
_NOT_A_ZIP = b"this is no zip at all" * 100

# (test id, upload keyword arguments, words the reason holds)
REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("parent path", {"filename": "../../demo-1.0-py3-none-any.whl"}, "path"),
    ("trailing dots", {"filename": "demo-1.0-py3-none-any.whl/.."}, "path"),
    ("backslash", {"filename": "a\\demo-1.0-py3-none-any.whl"}, "path"),
    ("other name", {"filename": "other-1.0-py3-none-any.whl"}, "Start filename"),
    ("other version", {"filename": "demo-2.0-py3-none-any.whl"}, "Version in filename"),
    ("not a zip", {"data": _NOT_A_ZIP, **_digests(_NOT_A_ZIP)}, "Invalid wheel"),
    ("zip bomb", {"data": _BOMB, **_digests(_BOMB)}, "Invalid wheel"),
    ("traversal member", {"data": _TRAVERSAL, **_digests(_TRAVERSAL)}, "Invalid wheel"),
    ("sha256 mismatch", {"sha256_digest": "0" * 64}, "digest"),
    ("md5 mismatch", {"md5_digest": "0" * 32}, "digest"),
    ("no digest", {"md5_digest": None, "sha256_digest": None, "blake2_256_digest": None}, "digest"),
    ("local version", {"version": "1.0+local"}, "local versions"),
    ("bad version", {"version": "one"}, "PEP 440"),
    ("bad name", {"name": "demo/../x"}, "name"),
    ("filetype", {"filetype": "sdist"}, "filetype"),
    ("action", {":action": "submit"}, ":action"),
    ("control character", {"summary": "a\x1b[31mred"}, "control character"),
]


@pytest.mark.parametrize("refusal", REFUSALS, ids=[r[0] for r in REFUSALS])
async def test_a_refused_upload_stores_nothing(
    start: Any, client: httpx.AsyncClient, tmp_path: Path, refusal: tuple[str, dict[str, Any], str]
) -> None:
    case, overrides, reason = refusal
    base = await start()
    before = _blobs(tmp_path)
    fields = {"name": "demo", "version": "1.0", **overrides}
    response = await upload(client, f"{base}acme/private/", DEMO, **fields)
    assert response.status_code == 400, case
    assert reason in response.reason_phrase, response.reason_phrase
    assert _blobs(tmp_path) == before
    assert list((tmp_path / "data" / "spool").glob("*")) == []
    assert (await client.get(f"{base}acme/private/+simple/demo/")).status_code == 404


async def test_metadata_naming_another_project_is_refused(
    start: Any, client: httpx.AsyncClient
) -> None:
    base = await start()
    renamed = _renamed_wheel("other", "1.0", "demo")
    response = await upload(client, f"{base}acme/private/", renamed, "demo", "1.0")
    assert response.status_code == 400
    assert "Invalid wheel" in response.reason_phrase or "metadata" in response.reason_phrase


async def test_sdists_follow_pep_625(start: Any, client: httpx.AsyncClient) -> None:
    base = await start()
    response = await upload(
        client, f"{base}acme/private/", DEMO_SDIST, "demo", "1.0", filename="Demo-1.0.tar.gz"
    )
    assert response.status_code == 400
    assert "PEP 625" in response.reason_phrase


async def test_an_upload_over_the_size_limit_is_refused(
    start: Any, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    base = await start(max_upload_size=1000)
    large = build_wheel("demo", "1.0", payload_size=5000)
    response = await upload(client, f"{base}acme/private/", large, "demo", "1.0")
    assert response.status_code == 400
    assert "too large" in response.reason_phrase
    assert list((tmp_path / "data" / "spool").glob("*")) == []


async def test_yank_status_and_delete_over_http(start: Any, client: httpx.AsyncClient) -> None:
    base = await start()
    private = f"{base}acme/private/"
    await upload(client, private, DEMO, "demo", "1.0")
    manage = f"{private}+manage"
    yanked = await client.post(
        manage, json={"action": "yank", "project": "demo", "version": "1.0", "reason": "broken"}
    )
    assert yanked.json() == {"files": 1}
    page = await client.get(f"{private}+simple/demo/", headers=JSON)
    assert page.json()["files"][0]["yanked"] == "broken"
    await client.post(manage, json={"action": "unyank", "project": "demo"})
    page = await client.get(f"{private}+simple/demo/", headers=JSON)
    assert page.json()["files"][0]["yanked"] is False
    status = await client.post(
        manage,
        json={"action": "status", "project": "demo", "status": "quarantined", "reason": "oops"},
    )
    assert status.status_code == 200
    page = await client.get(f"{private}+simple/demo/", headers=JSON)
    assert page.json()["project-status"] == {"status": "quarantined", "reason": "oops"}
    assert page.json()["files"] == []
    assert (await client.get(f"{private}files/demo/{DEMO.filename}")).status_code == 404
    refused = await upload(client, private, DEMO_SDIST, "demo", "1.0")
    assert refused.status_code == 400
    await client.post(manage, json={"action": "status", "project": "demo", "status": None})
    deleted = await client.post(manage, json={"action": "delete", "project": "demo"})
    assert deleted.json() == {"files": 1}
    assert (await client.get(f"{private}+simple/demo/")).status_code == 404
    unknown = await client.post(manage, json={"action": "explode", "project": "demo"})
    assert unknown.status_code == 400


async def test_uploads_go_to_hosted_indexes_only(start: Any, client: httpx.AsyncClient) -> None:
    base = await start()
    response = await upload(client, f"{base}acme/all/", DEMO, "demo", "1.0")
    assert response.status_code == 400
    assert "not a hosted index" in response.reason_phrase


async def test_the_ui_pages_of_a_hosted_index_answer(start: Any, client: httpx.AsyncClient) -> None:
    base = await start()
    home = await client.get(base)
    assert "acme/private" in home.text
    assert "hosted" in home.text
    for page in ("+search?q=demo", "+cache", "+status.json"):
        response = await client.get(f"{base}acme/private/{page}")
        assert response.status_code == 200, page


async def test_attestations_uploaded_are_served_as_provenance(
    start: Any, client: httpx.AsyncClient
) -> None:
    base = await start()
    private = f"{base}acme/private/"
    attestation = {"version": 1, "envelope": {"statement": "c3RhdGVtZW50", "signature": "c2ln"}}
    response = await upload(
        client, private, DEMO, "demo", "1.0", attestations=json.dumps([attestation])
    )
    assert response.status_code == 200, response.text
    await upload(client, private, DEMO_SDIST, "demo", "1.0")
    page = await client.get(f"{private}+simple/demo/", headers=JSON)
    files = {entry["filename"]: entry for entry in page.json()["files"]}
    assert files[DEMO_SDIST.filename].get("provenance") is None
    url = files[DEMO.filename]["provenance"]
    assert url == f"../../files/demo/{DEMO.filename}.provenance"
    provenance = await client.get(f"{private}+simple/demo/{url}")
    assert provenance.status_code == 200
    assert provenance.json() == {
        "version": 1,
        "attestation_bundles": [
            {"publisher": {"kind": "bodega-upload"}, "attestations": [attestation]}
        ],
    }
    missing = await client.get(f"{private}files/demo/{DEMO_SDIST.filename}.provenance")
    assert missing.status_code == 404
    html = await client.get(f"{private}+simple/demo/", headers=HTML)
    assert f'data-provenance="{url}"' in html.text


async def test_the_ui_marks_where_a_project_comes_from(
    start: Any, client: httpx.AsyncClient
) -> None:
    base = await start()
    await upload(client, f"{base}acme/private/", PRIVATE_LIB, "acme-lib", "1.0")
    private = await client.get(f"{base}acme/all/+project/acme-lib")
    assert private.status_code == 200
    assert 'From <span class="tag">acme/private</span>' in private.text
    assert PRIVATE_LIB.filename in private.text
    assert PUBLIC_LIB.filename not in private.text
    public = await client.get(f"{base}acme/all/+project/six")
    assert 'From <span class="tag">root/pypi</span>' in public.text
    hosted = await client.get(f"{base}acme/private/+project/acme-lib")
    assert 'From <span class="tag">acme/private</span>' in hosted.text


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"description": "x" * 2_000_000}, "too long"),
        ({f"field{n}": "x" * 900_000 for n in range(6)}, "too long"),
        ({"classifiers": ["x"] * 1500}, "More than 1000 fields"),
    ],
    ids=["a huge field", "many large fields", "too many fields"],
)
async def test_abusive_multipart_is_cut_off(
    start: Any, client: httpx.AsyncClient, data: dict[str, Any], reason: str
) -> None:
    base = await start()
    fields = {**upload_fields(DEMO, "demo", "1.0"), **data}
    response = await client.post(
        f"{base}acme/private/", data=fields, files={"content": (DEMO.filename, DEMO.data)}
    )
    assert response.status_code == 400
    assert reason in response.reason_phrase
    assert (await client.get(f"{base}acme/private/+simple/demo/")).status_code == 404
