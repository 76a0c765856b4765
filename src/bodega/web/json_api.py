"""The PyPI JSON API, for PDM's `pypi.json_api` and pip-tools' `--generate-hashes` (spec 40)."""

from urllib.parse import urljoin

from aiohttp import web

from bodega.core.names import normalize_project_name
from bodega.proxy.project_json import ProjectJson
from bodega.web.headers import client_url
from bodega.web.routing import Match


class JsonApi:
    def __init__(self, projects: ProjectJson) -> None:
        self._projects = projects

    async def project_json(self, request: web.Request, match: Match) -> web.Response:
        from bodega.core.json_api import ApiUrls  # with the rest of the JSON API, on first use

        project = normalize_project_name(match.project)
        if project != match.project:
            release = f"{match.version}/" if match.version else ""
            raise web.HTTPMovedPermanently(f"{match.prefix}{project}/{release}json")
        # Absolute, like warehouse's: pip-tools matches these URLs against the simple page's
        # links resolved by the same client, so both come from the URL that client asked for.
        # Nothing rendered here is stored, so a forged Host reaches only its sender (threat 11).
        root = urljoin(str(client_url(request)), "../" * match.depth)
        tree = urljoin(root, f"{match.index}/") if match.index else root  # the index's own paths
        urls = ApiUrls(files_base=urljoin(tree, "files/"), projects_base=urljoin(tree, "+project/"))
        described = await self._projects.describe(match.index, project, match.version, urls)
        headers = {
            "Content-Type": "application/json",
            "Cache-Control": f"max-age={described.max_age}, public",
        }
        return web.Response(body=described.body, headers=headers)
