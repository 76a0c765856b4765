"""pypi-simple: a project page and the root list, through its own negotiation (it sends JSON
and v1+html at equal q; spec finding 3)."""

import json
from pathlib import Path

from tests.support.clients import client_tool, isolated_env, run
from tests.support.distributions import BuiltFile
from tests.support.servers import BodegaProcess

SCRIPT = """
import json, sys
from pypi_simple import PyPISimple
with PyPISimple(endpoint=sys.argv[1]) as client:
    page = client.get_project_page("liba")
    wheel = page.packages[-1]
    print(json.dumps({
        "project": page.project,
        "files": sorted(p.filename for p in page.packages),
        "sha256": {p.filename: p.digests.get("sha256") for p in page.packages},
        "metadata": client.get_package_metadata(wheel),
        "projects": sorted(client.get_index_page().projects),
    }))
"""


def test_pypi_simple_reads_a_project_page_its_metadata_and_the_root_list(
    bodega: BodegaProcess, published: dict[str, list[BuiltFile]], tmp_path: Path
) -> None:
    python = str(client_tool("pypi-simple", "python"))
    output = run([python, "-c", SCRIPT, f"{bodega.url}simple/"], isolated_env(), tmp_path, bodega)
    found = json.loads(output)
    assert found["project"] == "liba"
    assert found["files"] == sorted(f.filename for f in published["liba"])
    assert found["sha256"] == {f.filename: f.sha256 for f in published["liba"]}
    newest = next(f for f in published["liba"] if f.filename == found["files"][-1])
    assert newest.metadata is not None
    assert found["metadata"] == newest.metadata.decode()
    assert found["projects"] == ["app", "liba", "libb", "libc"]
