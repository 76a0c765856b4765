"""The peers and the older clients, installed from the package registry into their own venvs."""

import json
import subprocess
import sys
from pathlib import Path

PEER_PACKAGES: dict[str, tuple[str, ...]] = {
    "devpi": ("devpi-server",),
    "devpi-web": ("devpi-server", "devpi-web"),
    "proxpi": ("proxpi", "gunicorn"),
}
# pip as `python3 -m venv` gives it on Debian 12: it sends `Cache-Control: max-age=0` with every
# index request (pip < 26.2), which a proxy must not take as a reason to go upstream each time.
CLIENT_PACKAGES: dict[str, tuple[str, ...]] = {"pip23": ("pip==23.2.1",)}
_STAMP = ".bench-installed"


def ensure_venv(work: Path, peer: str) -> Path:
    """The venv's bin directory, created and filled on first use."""
    venv = work / f"venv-{peer}"
    packages = PEER_PACKAGES.get(peer) or CLIENT_PACKAGES[peer]
    stamp = venv / _STAMP
    if stamp.exists() and json.loads(stamp.read_text()) == list(packages):
        return venv / "bin"
    print(f"bench: installing {' '.join(packages)} into {venv.name}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *packages], check=True)
    stamp.write_text(json.dumps(list(packages)))
    return venv / "bin"


def installed_versions(bin_dir: Path, packages: tuple[str, ...]) -> dict[str, str]:
    script = (
        "import importlib.metadata as m, json, sys\n"
        "print(json.dumps({name: m.version(name) for name in sys.argv[1:]}))"
    )
    output = subprocess.run(
        [str(bin_dir / "python"), "-c", script, *packages],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    versions: dict[str, str] = json.loads(output)
    return versions
