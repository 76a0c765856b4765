"""The legacy upload API as publishers speak it, for tests: the form twine sends."""

import hashlib
from typing import Any

import httpx

from tests.support.distributions import BuiltFile

# Credentials as twine sends them; ignored until access control lands, checked after.


def upload_fields(built: BuiltFile, name: str, version: str, **overrides: Any) -> dict[str, Any]:
    """twine's fields for `built`; an override of None drops the field."""
    fields: dict[str, Any] = {
        ":action": "file_upload",
        "protocol_version": "1",
        "metadata_version": "2.1",
        "name": name,
        "version": version,
        "filetype": "bdist_wheel" if built.filename.endswith(".whl") else "sdist",
        "pyversion": "py3" if built.filename.endswith(".whl") else "source",
        "md5_digest": hashlib.md5(built.data, usedforsecurity=False).hexdigest(),
        "sha256_digest": built.sha256,
        "blake2_256_digest": hashlib.blake2b(built.data, digest_size=32).hexdigest(),
        "summary": "a test package",
        **overrides,
    }
    return {key: value for key, value in fields.items() if value is not None}


async def upload(
    client: httpx.AsyncClient,
    index_url: str,
    built: BuiltFile,
    name: str,
    version: str,
    *,
    filename: str | None = None,
    data: bytes | None = None,
    auth: tuple[str, str] | None = None,
    **overrides: Any,
) -> httpx.Response:
    """POST `built` to a hosted index (`index_url` ends with `/<user>/<index>/`), with `auth`
    (default: the client's own, as a test that made a token set it)."""
    content = built.data if data is None else data
    files = {"content": (filename or built.filename, content, "application/octet-stream")}
    return await client.post(
        index_url,
        data=upload_fields(built, name, version, **overrides),
        files=files,
        auth=httpx.USE_CLIENT_DEFAULT if auth is None else auth,
    )
