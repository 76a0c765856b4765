"""Pointing each installer at bodega (conformance spec 2.2, "Configuring a mirror").

pip (and pip-tools, which reads pip's configuration) and uv keep a per-user config file that
bodega can edit; Poetry keeps its sources per project and PDM and Pipenv are configured by a
command or a variable, so for those bodega says what to run.
"""

import configparser
import io
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
    # Settings that send the client to other places besides bodega (extra indexes, folders
    # of files), so installs can still go around it; shown as `[section] key = value`.
    extras: tuple[str, ...] = ()
    extras_commented_out: bool = False


def check_base_url(url: str) -> str:
    """bodega's base URL (`http://cache:3141/`), as `--url` means it for every command; an
    index URL ending in `simple/` is taken for the base URL above it."""
    parts = urlsplit(url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or '"' in url
        or "\\" in url
    ):
        raise ConfigError(
            f"--url must be bodega's http(s) base URL (http://host:3141/), not {url!r}"
        )
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    if path.endswith("/+simple/"):  # an index's: /<user>/<index>/+simple/
        path = path.removesuffix("+simple/").rstrip("/").rsplit("/", 2)[0] + "/"
    path = path.removesuffix("simple/")
    return f"{parts.scheme}://{parts.netloc}{path}"


def index_url(base_url: str, index: str | None = None) -> str:
    """The simple index (PEP 503) of the bodega at `base_url`: the default index's, or
    that of the index named `<user>/<index>`."""
    return base_url + (f"{index}/+simple/" if index else "simple/")


def _search_url(index_url: str) -> str:
    # pip search's XML-RPC endpoint: an index's own path, or /pypi beside /simple/
    # (conformance item 42).
    if index_url.endswith("/+simple/"):
        return index_url.removesuffix("+simple/")
    return index_url.removesuffix("simple/") + "pypi"


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


def pip_config(
    index_url: str, existing: str, path: Path, *, comment_out_extras: bool = False
) -> ConfigFile:
    """pip.conf with bodega as `[global] index-url` and `[search] index`, other keys kept;
    its extra indexes and find-links reported, or commented out when asked."""
    parser = configparser.RawConfigParser()
    try:
        parser.read_string(existing, source=str(path))
    except configparser.Error as error:
        raise ConfigError(f"{path} is not a config file pip can read: {error}") from None
    wanted: dict[str, dict[str, str]] = {
        "global": {"index-url": index_url},
        "search": {"index": _search_url(index_url)},
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
    extras = _pip_extras(parser)
    if comment_out_extras:
        for section, key, _ in extras:
            parser.remove_option(section, key)
    text = _ini_text(parser)
    if comment_out_extras:
        text = _commented_into_sections(text, extras)
    return ConfigFile(
        "pip",
        path,
        text,
        _ini_text(_only(wanted)),
        tuple(f"[{section}] {key} = {' '.join(value.split())}" for section, key, value in extras),
        comment_out_extras and bool(extras),
    )


# pip reads these (in any section, `_` or `-`) and searches them besides its index-url.
_PIP_EXTRA_KEYS = ("extra-index-url", "find-links")
_COMMENTED = "# commented out by `bodega configure`: {client} searched it around bodega"


def _pip_extras(parser: configparser.RawConfigParser) -> list[tuple[str, str, str]]:
    return [
        (section, key, value)
        for section in parser.sections()
        for key, value in parser.items(section)
        if key.replace("_", "-") in _PIP_EXTRA_KEYS
    ]


def _commented_into_sections(text: str, extras: list[tuple[str, str, str]]) -> str:
    # configparser writes no comments, so the commented lines go in after the writing, under
    # their section's header.
    lines = text.splitlines(keepends=True)
    for section in dict.fromkeys(section for section, _, _ in extras):
        commented = [_COMMENTED.format(client="pip") + "\n"]
        for key, value in ((k, v) for s, k, v in extras if s == section):
            commented += [f"# {line}".rstrip() + "\n" for line in f"{key} = {value}".split("\n")]
        header = lines.index(f"[{section}]\n")
        lines[header + 1 : header + 1] = commented
    return "".join(lines)


def uv_config(
    index_url: str, existing: str, path: Path, *, comment_out_extras: bool = False
) -> ConfigFile:
    """uv.toml with bodega as the default index, appended so the user's text stays as it is;
    its extra indexes and find-links reported, or commented out when asked."""
    added = f'[[index]]\nurl = "{index_url}"\ndefault = true\n'
    current = _toml(existing, path)
    extras = _uv_extras(current)
    if extras and comment_out_extras:
        existing = _uv_without_extras(existing, path)
        current = _toml(existing, path)
    found = (tuple(extras), comment_out_extras and bool(extras))
    indexes: list[Any] = current.get("index", [])
    defaults = [i for i in indexes if isinstance(i, dict) and i.get("default")]
    if any(i.get("url") == index_url for i in defaults):
        return ConfigFile("uv", path, existing, added, *found)
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
    return ConfigFile("uv", path, text, added, *found)


def _uv_extras(current: dict[str, Any]) -> list[str]:
    """uv's settings that search besides the default index (uv's docs, "Package indexes"):
    extra-index-url and find-links (also under [pip]), and every [[index]] that is neither
    the default nor `explicit` (those are searched before the default)."""
    found = [
        f"{prefix}{key} = {table[key]}"
        for prefix, table in (("", current), ("[pip] ", current.get("pip", {})))
        if isinstance(table, dict)
        for key in ("extra-index-url", "find-links")
        if key in table
    ]
    indexes = current.get("index", [])
    for index in indexes if isinstance(indexes, list) else []:
        if isinstance(index, dict) and not index.get("default") and not index.get("explicit"):
            found.append(f"[[index]] url = {index.get('url')}")
    return found


_TOML_HEADER = re.compile(r"\s*\[\[?\s*([A-Za-z0-9_.\"-]+)\s*\]\]?\s*(#.*)?")
_UV_EXTRA_KEY = re.compile(r"\s*(extra-index-url|find-links)\s*=")


def _uv_without_extras(text: str, path: Path) -> str:
    """The text with uv's extra indexes commented out, line by line, the rest as it was."""
    out: list[str] = []
    table = ""  # the table the line is in: "" at the top, "pip", or "[[index]]"
    block: list[str] = []  # an [[index]] table's lines, until it is known whether it counts
    depth = 0  # open brackets of a multi-line array being commented out
    for line in [*text.splitlines(keepends=True), ""]:
        header = _TOML_HEADER.fullmatch(line.rstrip("\n"))
        if block and (header or line == ""):
            out += _commented(block) if _uv_extras(_toml("".join(block), path)) else block
            block = []
        if header:
            table = "[[index]]" if line.lstrip().startswith("[[index]]") else header.group(1)
        if table == "[[index]]":
            block.append(line)
        elif depth > 0 or (table in ("", "pip") and _UV_EXTRA_KEY.match(line)):
            out += _commented([line], note=depth <= 0)
            depth = max(depth, 0) + line.count("[") - line.count("]")
        else:
            out.append(line)
    result = "".join(out)
    if _uv_extras(_toml(result, path)):
        raise ConfigError(f"{path}: cannot comment out its extra indexes; edit them by hand")
    return result


def _commented(lines: list[str], *, note: bool = True) -> list[str]:
    first = [_COMMENTED.format(client="uv") + "\n"] if note else []
    return first + [f"# {line}" if line.strip() else line for line in lines]


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


def config_files(
    index_url: str, clients: tuple[str, ...], *, comment_out_extras: bool = False
) -> list[ConfigFile]:
    """The user config files of the chosen clients, as they will be with bodega as the index."""
    files = []
    if "pip" in clients or "pip-tools" in clients:
        path = pip_config_path()
        files.append(
            pip_config(index_url, _read(path), path, comment_out_extras=comment_out_extras)
        )
    if "uv" in clients:
        path = uv_config_path()
        files.append(uv_config(index_url, _read(path), path, comment_out_extras=comment_out_extras))
    return files


# Variables that add indexes or file folders besides the configured index.
_EXTRA_VARIABLES = {
    "pip": ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"),
    "uv": ("UV_EXTRA_INDEX_URL", "UV_FIND_LINKS", "UV_INDEX"),
}


def extra_variables(clients: tuple[str, ...], environ: Mapping[str, str] = os.environ) -> list[str]:
    """The environment's variables that send the chosen clients around bodega."""
    chosen = {"pip" if client == "pip-tools" else client for client in clients}
    return [
        name
        for client, names in _EXTRA_VARIABLES.items()
        if client in chosen
        for name in names
        if environ.get(name)
    ]


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
