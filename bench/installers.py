"""pip and uv as a user runs them, isolated from this machine's configuration and caches.

Their temporary, cache and target directories go on a tmpfs (`ClientScratch`), so that an
install row measures the servers and not this machine's disk.
"""

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
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


def _is_tmpfs(path: Path) -> bool:
    """Whether `path` lies on a tmpfs: the longest mount point above it in /proc/mounts."""
    best, fstype = "", ""
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        mount_point = fields[1]
        if str(path).startswith(mount_point.rstrip("/") + "/") and len(mount_point) > len(best):
            best, fstype = mount_point, fields[2]
    return fstype == "tmpfs"


@contextlib.contextmanager
def client_scratch(work: Path) -> Iterator[tuple[Path, str]]:
    """A directory for the clients' files on a tmpfs, and a line saying where it is.

    /dev/shm when it is a writable tmpfs; else, as root, a tmpfs mounted for the run; else the
    work dir on disk, and the line says that the install rows then include the disk.
    """
    shm = Path("/dev/shm")
    mounted: Path | None = None
    if shm.is_dir() and os.access(shm, os.W_OK) and _is_tmpfs(shm / "x"):
        root = shm / f"bodega-bench-{os.getpid()}"
        where = "clients' temporary, cache and target dirs on tmpfs (/dev/shm)"
    else:
        root = work / "tmpfs"
        root.mkdir(parents=True, exist_ok=True)
        mount = ["mount", "-t", "tmpfs", "-o", "size=4g,mode=700", "bodega-bench", str(root)]
        if os.geteuid() == 0 and subprocess.run(mount, check=False).returncode == 0:
            mounted = root
            where = "clients' temporary, cache and target dirs on a tmpfs the bench mounted"
        else:
            where = "NO tmpfs (no /dev/shm, cannot mount): install rows include this disk"
    root.mkdir(parents=True, exist_ok=True)
    try:
        yield root, where
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if mounted is not None:
            subprocess.run(["umount", str(mounted)], check=False)


def _argv(tool: str, index_url: str, scratch: Path, python: str) -> list[str]:
    if tool == "uv":
        argv = [uv_binary(), "pip", "install", "--python", sys.executable, "--quiet"]
        return [*argv, "--target", str(scratch / "target"), "--index-url", index_url]
    if tool == "uv-compile":
        argv = [uv_binary(), "pip", "compile", "--python", sys.executable, "--quiet"]
        argv += ["--no-header", "--output-file", str(scratch / "pins.txt")]
        return [*argv, "--index-url", index_url, str(scratch / "requirements.in")]
    argv = [python, "-m", "pip", "install", "--quiet", "--no-input", "--timeout", "300"]
    return [*argv, "--target", str(scratch / "target"), "--index-url", index_url]


def install(
    tool: str, index_url: str, requirement: str, scratch: Path, python: str = sys.executable
) -> tuple[float, int]:
    """Install (or, `uv-compile`, pin) `requirement` with an empty client cache.

    Returns the wall time and how many distributions landed (or were pinned). `python` runs
    pip: the bench venv's (current pip) or an older pip's venv.
    """
    shutil.rmtree(scratch, ignore_errors=True)
    (scratch / "tmp").mkdir(parents=True)
    environment = isolated_environment()
    environment["TMPDIR"] = str(scratch / "tmp")
    environment["UV_CACHE_DIR"] = str(scratch / "uv-cache")
    environment["PIP_CACHE_DIR"] = str(scratch / "pip-cache")
    # A cold proxy may take half a minute on its first page (devpi reads the 800k-name root
    # list first); the clients' default read timeouts (pip 15 s, uv 30 s) would fail it.
    environment["UV_HTTP_TIMEOUT"] = "300"
    argv = _argv(tool, index_url, scratch, python)
    if tool == "uv-compile":
        (scratch / "requirements.in").write_text(requirement + "\n")
    else:
        argv.append(requirement)
    started = time.perf_counter()
    result = subprocess.run(
        argv, check=False, env=environment, capture_output=True, text=True, timeout=600
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{tool} failed:\n{result.stdout}\n{result.stderr}"[-3000:])
    if tool == "uv-compile":
        pins = (scratch / "pins.txt").read_text().splitlines()
        count = sum(1 for line in pins if "==" in line and not line.startswith("#"))
    else:
        count = len(list((scratch / "target").glob("*.dist-info")))
    shutil.rmtree(scratch, ignore_errors=True)
    return seconds, count
