"""Free loopback ports, for servers a test starts on a port it must know beforehand (a
config file names it, or a restart must come back on it)."""

import socket


def free_port() -> int:
    """A port nothing listens on now; the kernel's pick, so rarely one another test takes."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
