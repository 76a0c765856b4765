"""pip and uv through a bodega whose files are in an object store (a real SeaweedFS): the
files cached on the first install, and on the second, with `--redirect-files`, fetched from
the store itself by following bodega's 302 to a presigned URL."""

import sys
import uuid
from contextlib import AbstractContextManager
from pathlib import Path

from tests.clients.conftest import served
from tests.support.clients import (
    MODULES,
    NEWEST,
    installed_versions,
    isolated_env,
    new_venv,
    pip_env,
    run,
    uv_env,
)
from tests.support.distributions import BuiltFile
from tests.support.fake_index import FakeIndex
from tests.support.seaweedfs import BUCKET, SeaweedFS
from tests.support.servers import BodegaProcess, bodega_process

UV = Path(sys.executable).parent / "uv"  # the dev extra pins uv, and a current pip
PIP = [sys.executable, "-m", "pip"]


def object_store_bodega(
    seaweedfs: SeaweedFS, fake_index: FakeIndex, data_dir: Path, *extra: str
) -> AbstractContextManager[BodegaProcess]:
    proxies = {k: v for k, v in isolated_env().items() if k.upper().endswith("_PROXY")}
    blob_store = f"s3://{BUCKET}/{uuid.uuid4().hex}"
    return bodega_process(
        data_dir,
        fake_index.simple_url,
        "--blob-store",
        blob_store,
        *extra,
        env={**proxies, **seaweedfs.environ()},
    )


def redirected(server: BodegaProcess, filename: str) -> bool:
    return any(f'/{filename} HTTP/1.1" 302' in line for line in list(server.log))


def test_pip_and_uv_install_with_files_redirected_to_the_object_store(
    seaweedfs: SeaweedFS,
    fake_index: FakeIndex,
    published: dict[str, list[BuiltFile]],
    tmp_path: Path,
) -> None:
    app = next(f for f in published["app"] if f.filename.startswith("app-2.0"))
    with object_store_bodega(
        seaweedfs, fake_index, tmp_path / "data", "--redirect-files"
    ) as server:
        index_url = f"{server.url}simple/"
        first = new_venv(tmp_path / "first")
        command = [*PIP, "--python", str(first), "install", "--index-url", index_url, "app"]
        run(command, pip_env(tmp_path / "pip-cold"), tmp_path, server)
        assert installed_versions(first, MODULES, tmp_path) == NEWEST
        assert served(server, f"GET /files/app/{app.filename}")  # streamed while cached

        # Every file is a hit now: each client follows the 302 to the object store.
        second = new_venv(tmp_path / "second")
        command = [*PIP, "--python", str(second), "install", "--index-url", index_url, "app"]
        run(command, pip_env(tmp_path / "pip-warm"), tmp_path, server)
        assert installed_versions(second, MODULES, tmp_path) == NEWEST
        assert redirected(server, app.filename)

        third = new_venv(tmp_path / "third")
        command = [str(UV), "pip", "install", "--python", str(third)]
        command += ["--default-index", index_url, "app"]
        run(command, uv_env(tmp_path / "uv-warm"), tmp_path, server)
        assert installed_versions(third, MODULES, tmp_path) == NEWEST
    assert sum(fake_index.count("GET", f.filename) for f in published["app"]) <= 2
