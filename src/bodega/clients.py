"""Pointing each installer at bodega (conformance spec 2.2, "Configuring a mirror").

pip (and pip-tools, which reads pip's configuration) and uv keep a per-user config file that
bodega can edit; Poetry keeps its sources per project and PDM and Pipenv are configured by a
command or a variable, so for those bodega says what to run.
"""

import configparser
import io
import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import platformdirs

from bodega.errors import ConfigError

CLIENTS = ("pip", "pip-tools", "uv", "poetry", "pdm", "pipenv")
EDITABLE = ("pip", "uv")  # clients whose user config file `--write` edits


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """A client's user config file: where it is and what it holds once bodega is the index."""

    client: str
    path: Path
    text: str  # the whole file, as it will be written
    added: str  # the part that points at bodega, to show


def check_index_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or '"' in url or "\\" in url:
        raise ConfigError(f"--url must be bodega's http(s) index URL, not {url!r}")
    return url


def pip_config_path() -> Path:
    # pip's own user file (pip's utils/appdirs.py): the per-user config folder with roaming on
    # Windows; it overrides the legacy ~/.pip/pip.conf, which pip reads before it.
    folder = platformdirs.user_config_path("pip", appauthor=False, roaming=True)
    return folder / ("pip.ini" if os.name == "nt" else "pip.conf")


def uv_config_path(environ: Mapping[str, str] = os.environ) -> Path:
    # uv's docs, "Configuration files": XDG_CONFIG_HOME or ~/.config on macOS and Linux too.
    if os.name == "nt":
        return platformdirs.user_config_path("uv", appauthor=False, roaming=True) / "uv.toml"
    config_home = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "uv" / "uv.toml"


def pip_config(index_url: str, existing: str, path: Path) -> ConfigFile:
    """pip.conf with bodega as `[global] index-url` and `[search] index`, other keys kept."""
    parser = configparser.RawConfigParser()
    try:
        parser.read_string(existing, source=str(path))
    except configparser.Error as error:
        raise ConfigError(f"{path} is not a config file pip can read: {error}") from None
    wanted: dict[str, dict[str, str]] = {
        "global": {"index-url": index_url},
        # pip search's XML-RPC endpoint sits at the server's root (conformance item 42).
        "search": {"index": urljoin(index_url, "/pypi")},
    }
    host = urlsplit(index_url).hostname or ""
    if urlsplit(index_url).scheme == "http" and not _is_loopback(host):
        # pip ignores a plain-http index unless its host is trusted (loopback always is).
        wanted["global"]["trusted-host"] = host
    for section, values in wanted.items():
        if not parser.has_section(section):
            parser.add_section(section)
        for key, value in values.items():
            parser.set(section, key, value)
    return ConfigFile("pip", path, _ini_text(parser), _ini_text(_only(wanted)))


def uv_config(index_url: str, existing: str, path: Path) -> ConfigFile:
    """uv.toml with bodega as the default index, appended so the user's text stays as it is."""
    added = f'[[index]]\nurl = "{index_url}"\ndefault = true\n'
    current = _toml(existing, path)
    indexes: list[Any] = current.get("index", [])
    defaults = [i for i in indexes if isinstance(i, dict) and i.get("default")]
    if any(i.get("url") == index_url for i in defaults):
        return ConfigFile("uv", path, existing, added)
    if defaults or "index-url" in current:
        raise ConfigError(
            f"{path} already names a default index; remove it there, then run this again"
        )
    text = existing + ("\n" if existing and not existing.endswith("\n") else "")
    text += ("\n" if text else "") + added
    try:
        tomllib.loads(text)  # a top-level `index = [...]` cannot take an [[index]] table
    except tomllib.TOMLDecodeError:
        raise ConfigError(f"{path} sets `index` in a form bodega cannot add to") from None
    return ConfigFile("uv", path, text, added)


def commands(index_url: str) -> dict[str, str]:
    """What to run for the clients whose configuration bodega does not edit."""
    return {
        # Poetry 2: a primary source replaces the implicit public index, per project.
        "poetry": f"poetry source add --priority=primary bodega {index_url}",
        "pdm": f"pdm config pypi.url {index_url}",
        # Pipenv rewrites the public-index sources of every Pipfile to this mirror at run time.
        "pipenv": f"export PIPENV_PYPI_MIRROR={index_url}",
    }


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _only(values: dict[str, dict[str, str]]) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser()
    parser.read_dict(values)
    return parser


def _ini_text(parser: configparser.RawConfigParser) -> str:
    out = io.StringIO()
    parser.write(out)
    return out.getvalue().rstrip("\n") + "\n"


def _toml(text: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None


def config_files(index_url: str, clients: tuple[str, ...]) -> list[ConfigFile]:
    """The user config files of the chosen clients, as they will be with bodega as the index."""
    files = []
    if "pip" in clients or "pip-tools" in clients:
        path = pip_config_path()
        files.append(pip_config(index_url, _read(path), path))
    if "uv" in clients:
        path = uv_config_path()
        files.append(uv_config(index_url, _read(path), path))
    return files


def config_paths(clients: tuple[str, ...]) -> list[Path]:
    paths = []
    if "pip" in clients or "pip-tools" in clients:
        paths.append(pip_config_path())
    if "uv" in clients:
        paths.append(uv_config_path())
    return paths


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from None
