"""A hosted index's HTTP surface for publishers and maintainers: the legacy upload API and
`+manage`.

Uploads: POST multipart/form-data to `/<user>/<index>/` with `:action=file_upload`, the
release's fields and the file as `content`, as every publisher sends it. 200 "OK" on
success; every refusal a 400 whose status line carries the reason (twine prints it).

`+manage`: POST a JSON object to `/<user>/<index>/+manage`:
`{"action": "yank", "project": "demo", "version": "1.0", "reason": "broken"}`; actions
yank, unyank, delete (a `filename`, a `version` or the whole project), status (`status`:
archived, quarantined, deprecated or null, with a `reason`), reserve and release (a
name). The answer is JSON: `{"files": <how many>}` or `{"reserved": [...]}`.

Access control is the middleware's (Route.UPLOAD needs "upload", Route.MANAGE "admin");
these handlers assume the request is allowed.
"""

import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import BodyPartReader, MultipartReader, web
from packaging.utils import canonicalize_name

from bodega.core.uploads import CONTENT_FIELD, MAX_FIELD_BYTES, MAX_FIELDS, MAX_FIELDS_BYTES
from bodega.errors import InvalidUpload, NotFound
from bodega.proxy.hosted import HostedProjects, Spooled
from bodega.proxy.indexes import Indexes
from bodega.web.access import IDENTITY
from bodega.web.routing import Match

_MAX_MANAGE_BYTES = 64 * 1024
_CHUNK = 256 * 1024


class Uploads:
    """The upload and manage endpoints of every hosted index."""

    def __init__(self, indexes: Indexes) -> None:
        self._indexes = indexes

    async def upload(self, request: web.Request, match: Match) -> web.Response:
        hosted = self._hosted(match)
        reader = await request.multipart()
        fields: dict[str, list[str]] = {}
        spooled: Spooled | None = None
        total = count = 0  # text read so far: bounded however many fields come (threat 39)
        try:
            while (part := await reader.next()) is not None:
                count += 1
                if count > MAX_FIELDS:
                    raise InvalidUpload(f"More than {MAX_FIELDS} fields")
                if isinstance(part, MultipartReader):
                    raise InvalidUpload("Nested multipart bodies are not uploads")
                if part.name == CONTENT_FIELD and part.filename is not None:
                    if spooled is not None:
                        raise InvalidUpload("More than one file in one upload")
                    spooled = await hosted.receive(part.filename, _chunks(part))
                elif part.name is not None:
                    text = await _text(part, MAX_FIELDS_BYTES - total)
                    total += len(text.encode())
                    fields.setdefault(part.name, []).append(text)
            if spooled is None:
                raise InvalidUpload("Upload payload does not have a file")
            _check_project(request, (fields.get("name") or [""])[0])
        except BaseException:
            if spooled is not None:
                spooled.path.unlink(missing_ok=True)
            raise
        await hosted.publish(fields, spooled)
        return web.Response(text="OK\n", headers={"Cache-Control": "no-store"})

    async def manage(self, request: web.Request, match: Match) -> web.Response:
        if request.method != "POST":
            raise web.HTTPMethodNotAllowed(request.method, ["POST"])
        hosted = self._hosted(match)
        body = await request.content.read(_MAX_MANAGE_BYTES + 1)
        if len(body) > _MAX_MANAGE_BYTES:
            raise InvalidUpload("The request is too large")
        try:
            order = json.loads(body)
        except ValueError:
            raise InvalidUpload("The request is not JSON") from None
        if not isinstance(order, dict):
            raise InvalidUpload("The request is not a JSON object")
        _check_project(request, str(order.get("project", "")))
        answer = await _carry_out(hosted, order)
        return web.json_response(answer, headers={"Cache-Control": "no-store"})

    def _hosted(self, match: Match) -> HostedProjects:
        try:
            return self._indexes.hosted(match.index)
        except NotFound:
            raise InvalidUpload(f"{match.index} is not a hosted index") from None


def _check_project(request: web.Request, name: str) -> None:
    """A token limited to some projects uploads and manages those alone (a 403 otherwise):
    the project is in the request's body, so it is checked here, not by the middleware."""
    identity = request.get(IDENTITY)
    if identity is not None and not identity.covers_project(canonicalize_name(name)):
        raise web.HTTPForbidden(
            reason="This token may not upload or manage this project",
            text="this token may not upload or manage this project\n",
        )


async def _carry_out(hosted: HostedProjects, order: dict[str, Any]) -> dict[str, Any]:
    action = _text_value(order, "action")
    project = _text_value(order, "project")
    version = _optional(order, "version")
    filename = _optional(order, "filename")
    if action in ("yank", "unyank"):
        reason = (_optional(order, "reason") or "") if action == "yank" else None
        return {"files": await hosted.yank(project, version, filename, reason)}
    if action == "delete":
        return {"files": await hosted.delete(project, version, filename)}
    if action == "status":
        await hosted.set_status(project, _optional(order, "status"), _optional(order, "reason"))
        return {"project": project, "status": order.get("status")}
    if action == "reserve":
        await hosted.reserve(project)
        return {"reserved": sorted(await hosted.reservations())}
    if action == "release":
        await hosted.release(project)
        return {"reserved": sorted(await hosted.reservations())}
    raise InvalidUpload(f"Unknown action {action!r}")


def _text_value(order: dict[str, Any], key: str) -> str:
    value = order.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidUpload(f"{key!r} must be a non-empty string")
    return value


def _optional(order: dict[str, Any], key: str) -> str | None:
    value = order.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidUpload(f"{key!r} must be a string")
    return value


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(_CHUNK):
        yield chunk


async def _text(part: BodyPartReader, room: int) -> str:
    """A text field, at most MAX_FIELD_BYTES and `room` (what is left of all fields'
    allowance), as UTF-8."""
    data = bytearray()
    while chunk := await part.read_chunk(_CHUNK):
        data += chunk
        if len(data) > min(MAX_FIELD_BYTES, room):
            raise InvalidUpload(f"Field {part.name!r} is too long")
    try:
        return bytes(data).decode()
    except UnicodeDecodeError:
        raise InvalidUpload(f"Field {part.name!r} is not UTF-8") from None
