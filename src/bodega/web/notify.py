"""The service manager's readiness protocol (sd_notify), spoken without a dependency.

With `Type=notify`, systemd starts bodega with NOTIFY_SOCKET set and waits for `READY=1`
before it counts the service as started; `STOPPING=1` says a shutdown has begun. The
protocol is one datagram of newline-separated `KEY=VALUE` lines on a Unix socket; a leading
`@` names a socket in the abstract namespace (sd_notify(3), "Notes").
"""

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)

NOTIFY_SOCKET = "NOTIFY_SOCKET"


def notify_socket_address(environ: Mapping[str, str]) -> str | None:
    """The address to send to, or None when no service manager listens."""
    address = environ.get(NOTIFY_SOCKET, "")
    if address.startswith("@"):
        return "\0" + address[1:]  # Linux abstract namespace: a leading NUL byte
    if address.startswith("/"):
        return address
    # Unset, or another transport (systemd 253+ also offers vsock:...), which bodega leaves alone.
    return None


def notify(state: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Send `state` (e.g. "READY=1") to the service manager; False when there is none.

    A manager that cannot be reached is logged, not fatal: serving matters more.
    """
    address = notify_socket_address(environ)
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(1.0)  # a datagram to a full queue must not hang the server
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as error:
        log.warning("cannot notify the service manager at %s: %s", environ[NOTIFY_SOCKET], error)
        return False
    return True
