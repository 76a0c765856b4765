"""pip and uv as a user runs them, isolated from this machine's configuration and caches."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

# Anything outside 127.0.0.1 goes to a closed port: a leak fails fast instead of going out.
_DEAD_PROXY = "http://127.0.0.1:9"


def isolated_environment() -> dict[str, str]:
    """The environment for every process the bench starts: no pip/uv config, no way out."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PIP_", "UV_", "BODEGA_", "PROXPI_"))
        and key.lower() not in {"http_proxy", "https_proxy"}
    }
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        environment[key] = _DEAD_PROXY
    environment["NO_PROXY"] = environment["no_proxy"] = "127.0.0.1,localhost"
    environment["PIP_CONFIG_FILE"] = os.devnull
    environment["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    environment["UV_NO_CONFIG"] = "1"
    environment["UV_PYTHON_DOWNLOADS"] = "never"
    return environment


def venv_tool(name: str, hint: str) -> str:
    """A command from the running venv, else from PATH; exits with `hint` when neither has it."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        sys.exit(f"bench: {name} not found; {hint}")
    return found


def uv_binary() -> str:
    return venv_tool("uv", "run from the repo's venv (./dev test installs it)")


def install(tool: str, index_url: str, requirement: str, scratch: Path) -> tuple[float, int]:
    """Install `requirement` into an empty target with an empty client cache.

    Returns the wall time and how many distributions landed.
    """
    shutil.rmtree(scratch, ignore_errors=True)
    target = scratch / "target"
    environment = isolated_environment()
    environment["UV_CACHE_DIR"] = str(scratch / "uv-cache")
    environment["PIP_CACHE_DIR"] = str(scratch / "pip-cache")
    # A cold proxy may take half a minute on its first page (devpi reads the 800k-name root
    # list first); the clients' default read timeouts (pip 15 s, uv 30 s) would fail it.
    environment["UV_HTTP_TIMEOUT"] = "300"
    if tool == "uv":
        argv = [uv_binary(), "pip", "install", "--python", sys.executable, "--quiet"]
    else:
        argv = [sys.executable, "-m", "pip", "install", "--quiet", "--no-input", "--timeout", "300"]
    argv += ["--target", str(target), "--index-url", index_url, requirement]
    started = time.perf_counter()
    result = subprocess.run(
        argv, check=False, env=environment, capture_output=True, text=True, timeout=600
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{tool} install failed:\n{result.stdout}\n{result.stderr}"[-3000:])
    installed = len(list(target.glob("*.dist-info")))
    shutil.rmtree(scratch, ignore_errors=True)
    return seconds, installed
