"""Commands the bench needs from Debian's packages, installed when missing and we are root."""

import os
import shutil
import subprocess
import sys

# command -> the Debian package that ships it
PACKAGES = {"nginx": "nginx", "wrk": "wrk"}
_SBIN = ("/usr/sbin", "/sbin")


def find(command: str) -> str | None:
    found = shutil.which(command)
    if found:
        return found
    for directory in _SBIN:  # nginx lives in sbin, which a non-root PATH may lack
        candidate = os.path.join(directory, command)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def ensure_commands() -> dict[str, str]:
    """Path of every command in PACKAGES; installs the missing ones or exits saying how."""
    missing = [PACKAGES[command] for command in PACKAGES if find(command) is None]
    if missing:
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            sys.exit(f"bench: missing {', '.join(missing)}; install them (apt-get install ...)")
        print(f"bench: installing {' '.join(missing)} from Debian's packages", flush=True)
        environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=environment)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=environment)
    paths = {command: find(command) for command in PACKAGES}
    absent = [command for command, path in paths.items() if path is None]
    if absent:
        sys.exit(f"bench: still missing after installing: {', '.join(absent)}")
    return {command: path for command, path in paths.items() if path is not None}
