"""compose.cluster.yaml read as `docker compose` reads it, for the tests that check it and the
one that runs its parts without a container engine: its services and their environment
(with `${NAME:?message}` filled in from the test's variables, as compose fills it from .env),
and the balancer's nginx configuration (compose's `$$` back to nginx's `$`)."""

import re
import urllib.parse
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.cluster.yaml"
REPLICAS = ("bodega-1", "bodega-2")
# A required variable: `docker compose up` stops with the message when it is not set.
REQUIRED = re.compile(r"^\$\{(?P<name>[A-Z][A-Z0-9_]*):\?[^}]+\}$")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def environment(service: str) -> dict[str, str]:
    """A service's environment as written, required variables still `${NAME:?...}`."""
    return {k: str(v) for k, v in services()[service].get("environment", {}).items()}


def required_variables() -> set[str]:
    """The variables `docker compose up` refuses to start without (the .env of its header)."""
    return {
        found["name"]
        for service in services()
        for value in environment(service).values()
        if (found := REQUIRED.match(value))
    }


def filled_environment(service: str, variables: dict[str, str]) -> dict[str, str]:
    """A service's environment as its container gets it: each required variable replaced by
    its value. Any other `$` form would need more of compose's rules than this knows."""
    filled = {}
    for name, written in environment(service).items():
        found = REQUIRED.match(written)
        value = variables[found["name"]] if found else written
        assert "$" not in value, f"{service}: {name}={written!r} needs compose's interpolation"
        filled[name] = value
    return filled


def on_loopback(value: str, addresses: dict[str, int]) -> str:
    """`value` with a URL's `service:port` replaced by `127.0.0.1:<port>` when the service
    is one of `addresses` (the service's stand-in listens there); any other value as is."""
    url = urllib.parse.urlsplit(value)
    port = addresses.get(url.hostname or "") if url.scheme else None
    if port is None:
        return value
    user = f"{url.username}@" if url.username else ""
    assert url.password is None, "a password in a URL: compose keeps them in variables"
    netloc = f"{user}127.0.0.1:{port}"
    return urllib.parse.urlunsplit(url._replace(netloc=netloc))


def balancer_config() -> str:
    config: str = compose()["configs"]["balancer"]["content"]
    return config.replace("$$", "$")  # compose's escape for a literal $


def balancer_config_on_loopback(replicas: dict[str, int], listen: int) -> str:
    """The balancer's configuration with its addresses, and nothing else, moved to loopback:
    each `server <replica>:<port>` to the replica's port here, `listen <port>` to `listen`."""
    config = balancer_config()
    for replica, port in replicas.items():
        config, count = re.subn(
            rf"^(\s*server ){re.escape(replica)}:\d+\b",
            rf"\g<1>127.0.0.1:{port}",
            config,
            flags=re.MULTILINE,
        )
        assert count == 1, f"the balancer names {replica} {count} times"
    config, count = re.subn(
        r"^(\s*listen )\d+;", rf"\g<1>127.0.0.1:{listen};", config, flags=re.MULTILINE
    )
    assert count == 1, f"the balancer listens {count} times"
    return config


def healthcheck_url(service: str) -> str:
    """The URL a service's `wget` healthcheck asks (its last word)."""
    test: list[str] = services()[service]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "wget"], test
    return test[-1]
