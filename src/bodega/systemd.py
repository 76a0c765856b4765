"""The systemd unit that runs bodega as a service, for the whole system or for one user.

bodega runs directly under systemd: `Type=notify` (it says READY=1 itself, see web/notify.py),
restarted on failure, its cache in the unit's StateDirectory (`%S/bodega`: /var/lib/bodega,
or ~/.local/state/bodega for a user), and sandboxed with systemd.exec(5)'s hardening options.
"""

import os
import re
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from bodega import __version__
from bodega.errors import ConfigError

UNIT_NAME = "bodega.service"
SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
# The data dir is the unit's state directory: systemd creates it, owned by the service's user.
STATE_DATA_DIR = "%S/bodega"

# Options a system service gets. DynamicUser= runs bodega as a user allocated for it, which
# owns nothing but the state directory; ProtectHome=read-only (not yes) keeps a Python that
# lives in a home directory runnable.
_SYSTEM_HARDENING = """\
DynamicUser=yes
StateDirectory=bodega
UMask=0077
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
PrivateDevices=yes
PrivateMounts=yes
PrivateUsers=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
CapabilityBoundingSet=
SystemCallArchitectures=native
SystemCallFilter=@system-service
# AF_UNIX for NOTIFY_SOCKET; AF_NETLINK for getaddrinfo's address-configuration check.
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
"""

# A user manager applies namespace options (ProtectSystem=, ProtectHome=, PrivateTmp=...) only
# through unprivileged user namespaces, which many systems disable, and the unit would then
# fail to start; these work without them (seccomp filters and no_new_privs).
_USER_HARDENING = """\
StateDirectory=bodega
UMask=0077
NoNewPrivileges=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
# AF_UNIX for NOTIFY_SOCKET; AF_NETLINK for getaddrinfo's address-configuration check.
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
"""

_SAFE_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def unit_path(*, user: bool, environ: Mapping[str, str] = os.environ) -> Path:
    """Where systemd looks for the unit: the admin's unit dir, or the user's (systemd.unit(5))."""
    if not user:
        return SYSTEM_UNIT_DIR / UNIT_NAME
    config_home = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "systemd" / "user" / UNIT_NAME


def render_unit(
    python: str, serve_arguments: Sequence[str], *, user: bool, stop_timeout: float
) -> str:
    """The unit's text: `python -m bodega serve` with these arguments and the state dir."""
    if not os.path.isabs(python):
        raise ConfigError(f"the unit needs an absolute path to Python, not {python!r}")
    words = [python, "-m", "bodega", "serve", *serve_arguments]
    command = " ".join(_exec_word(word) for word in words) + f" --data-dir {STATE_DATA_DIR}"
    hardening = _USER_HARDENING if user else _SYSTEM_HARDENING
    wanted_by = "default.target" if user else "multi-user.target"
    # After SIGTERM bodega needs at most its shutdown timeout; systemd waits a little longer
    # before it sends SIGKILL.
    timeout_stop = int(stop_timeout) + 30
    return (
        f"# Written by `bodega service install` (bodega {__version__}).\n"
        "[Unit]\n"
        "Description=bodega, a caching proxy for the Python Package Index\n"
        "Wants=network-online.target\n"
        "After=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=notify\n"
        f"ExecStart={command}\n"
        "Restart=on-failure\n"
        "RestartSec=5\n"
        f"TimeoutStopSec={timeout_stop}\n"
        f"{hardening}"
        "\n"
        "[Install]\n"
        f"WantedBy={wanted_by}\n"
    )


def _exec_word(word: str) -> str:
    """One ExecStart= argument, quoted and escaped as systemd.service(5) "Command lines" says."""
    if "\n" in word or "\0" in word:
        raise ConfigError(f"a unit's command line cannot hold {word!r}")
    # %: specifiers, $: environment variables; both are doubled to stand for themselves.
    word = word.replace("%", "%%").replace("$", "$$")
    if _SAFE_WORD.fullmatch(word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def closed_to_others(paths: Sequence[Path]) -> Path | None:
    """The first folder on the way to any of `paths` that other users cannot enter (no o+x),
    or None. A system unit runs bodega as a user allocated for it (DynamicUser=yes), who
    can run a Python and import bodega only through folders open to everyone: a virtual
    environment under a mode-700 home folder is not."""
    for path in paths:
        for folder in reversed(Path(os.path.abspath(path)).parents):
            if not folder.stat().st_mode & stat.S_IXOTH:
                return folder
    return None


def closed_folder_problem(python: str, folder: Path) -> str:
    """What to do when the service's user cannot reach bodega through `folder`."""
    mode = stat.S_IMODE(folder.stat().st_mode)
    return (
        f"the service could not start: it runs as a user of its own (DynamicUser=yes), who"
        f" cannot enter {folder} (mode {mode:o}) to reach {python}. Install bodega where every"
        " user can read it, e.g. `sudo python3 -m venv /opt/bodega && sudo /opt/bodega/bin/pip"
        " install <bodega's folder or wheel>`, then run `sudo /opt/bodega/bin/bodega service"
        " install`; or use --user for a unit of your own"
    )


def next_steps(*, user: bool) -> list[str]:
    """What to run after the unit is written."""
    systemctl = "systemctl --user" if user else "systemctl"
    steps = [f"{systemctl} daemon-reload", f"{systemctl} enable --now bodega"]
    if user:
        steps.append("loginctl enable-linger  # optional: keep it running when you log out")
    return steps
