"""Settings: one frozen dataclass, loaded as defaults <- TOML file <- BODEGA_* env <- CLI.

Each setting is declared once, in SETTINGS, which feeds the CLI options, the environment
variables, the config-file keys and the docs. The environment is read only when settings
are loaded, never at import.
"""

import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

from bodega.core.indexes import IndexSpec, MirrorIndex
from bodega.core.units import parse_size
from bodega.errors import ConfigError

ENV_PREFIX = "BODEGA_"


def public_index_url() -> str:
    """The public index's simple URL, exactly as pip defines its own default.

    Read from pip's index model so bodega never hard-codes a registry's address; pip is one
    of bodega's dependencies, so a tool install (pipx, uv tool) has it too.
    """
    try:
        from pip._internal.models.index import PyPI
    except ImportError:
        raise ConfigError(
            "pip, which bodega depends on, is not importable here, so bodega cannot tell the"
            " public index's address; reinstall bodega, or pass --upstream URL"
            " (or set BODEGA_UPSTREAM)"
        ) from None
    return str(PyPI.simple_url)


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("bodega", appauthor=False))


def _any(value: Any) -> str | None:
    return None


def _port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "is not a port (0-65535)"


def _seconds(value: float) -> str | None:
    return None if math.isfinite(value) and value >= 0 else "is not a number of seconds >= 0"


def _positive_seconds(value: float) -> str | None:
    return None if math.isfinite(value) and value > 0 else "is not a number of seconds > 0"


class ByteSize(int):
    """A number of bytes, given as `50G`, `512M`, `1.5T` or plain bytes."""

    def __new__(cls, raw: object) -> "ByteSize":
        return super().__new__(cls, parse_size(str(raw)))


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    kind: type
    help: str
    default: Callable[[], Any]
    check: Callable[[Any], str | None] = _any  # what is wrong with a converted value
    metavar: str = "TEXT"  # what the value is, in --help: SECONDS, SIZE, PORT, ...
    default_help: str = ""  # the default in words, for --help; else the default's value


SETTINGS: tuple[Setting, ...] = (
    Setting("host", str, "Address to listen on.", lambda: "127.0.0.1", metavar="ADDRESS"),
    Setting("port", int, "Port to listen on.", lambda: 3141, _port, metavar="PORT"),
    Setting(
        "data_dir",
        Path,
        "Where the cache lives (created on first start).",
        default_data_dir,
        metavar="DIRECTORY",
        default_help="the per-user data folder, ~/.local/share/bodega on Linux",
    ),
    Setting(
        "upstream",
        str,
        "The simple index to cache (PEP 503/691).",
        public_index_url,
        metavar="URL",
        default_help="the public index, as pip defines it",
    ),
    Setting(
        "index_ttl",
        float,
        "Seconds a project page stays fresh.",
        lambda: 600.0,
        _seconds,
        metavar="SECONDS",
    ),
    Setting(
        "revalidate_after",
        float,
        "Seconds within which a client's `Cache-Control: max-age=0` (pip before 26.2 sends it"
        " on every request) is answered from the cache instead of revalidating the page;"
        " `no-cache` always revalidates. 0: max-age=0 always revalidates too.",
        lambda: 30.0,
        _seconds,
        metavar="SECONDS",
    ),
    Setting(
        "offline",
        bool,
        "Never contact upstream; serve only what is cached.",
        lambda: False,
        metavar="",
        default_help="off",
    ),
    Setting(
        "upstream_timeout",
        float,
        "Seconds to wait for upstream to connect, answer, or send more bytes.",
        lambda: 5.0,
        _positive_seconds,
        metavar="SECONDS",
    ),
    Setting(
        "download_deadline",
        float,
        "Seconds a download from upstream may take in all, however steadily bytes come.",
        lambda: 3600.0,
        _positive_seconds,
        metavar="SECONDS",
    ),
    Setting(
        "search_refresh",
        float,
        "Seconds between refreshes of the root list for search (the first comes"
        " --search-first-refresh seconds after start); 0: only what clients fetch.",
        lambda: 3600.0,
        _seconds,
        metavar="SECONDS",
    ),
    Setting(
        "search_first_refresh",
        float,
        "Seconds after start before search first syncs the root list, so start-up and the"
        " first clients never compete with fetching 800k names; the first search starts"
        " it at once.",
        lambda: 60.0,
        _seconds,
        metavar="SECONDS",
    ),
    Setting(
        "shutdown_timeout",
        float,
        "Seconds that responses in flight get to finish after SIGTERM before they are cut.",
        lambda: 10.0,
        _seconds,
        metavar="SECONDS",
    ),
    Setting(
        "header_timeout",
        float,
        "Seconds a client gets to send a request's header once it connects or starts one;"
        " then the connection is closed (slow clients that hold connections); 0: no limit.",
        lambda: 20.0,
        _seconds,
        metavar="SECONDS",
    ),
    Setting(
        "max_cache_size",
        ByteSize,
        "Evict least recently used files above this size (50G, 512M; K/M/G/T are powers of 1024).",
        lambda: ByteSize(0),
        metavar="SIZE",
        default_help="0: no limit",
    ),
)


@dataclass(frozen=True, slots=True)
class Settings:
    host: str
    port: int
    data_dir: Path
    upstream: str
    index_ttl: float
    revalidate_after: float
    offline: bool
    upstream_timeout: float
    download_deadline: float
    search_refresh: float
    search_first_refresh: float
    shutdown_timeout: float
    header_timeout: float
    max_cache_size: int  # bytes; 0: no limit
    indexes: tuple[IndexSpec, ...] = ()
    default_index: str = "root/pypi"

    def __post_init__(self) -> None:
        if not self.indexes or (self.indexes[0].name == "root/pypi" and len(self.indexes) == 1):
            mirror = MirrorIndex(
                "root/pypi",
                self.upstream,
                self.index_ttl,
                self.revalidate_after,
                self.upstream_timeout,
                self.download_deadline,
                self.offline,
            )
            object.__setattr__(self, "indexes", (mirror,))

    def index(self, name: str) -> IndexSpec:
        return next(spec for spec in self.indexes if spec.name == name)

    @property
    def database_path(self) -> Path:
        return self.data_dir / "bodega.sqlite3"

    @property
    def blobs_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "tmp"


def env_name(setting: str) -> str:
    return ENV_PREFIX + setting.upper()


def load_settings(
    cli: Mapping[str, Any],
    environ: Mapping[str, str],
    config_file: Path | None = None,
) -> Settings:
    """Settings from the CLI (values not given are absent or None), the environment and an
    optional TOML file, over the defaults; ConfigError for anything that cannot work."""
    from_file = _read_config_file(config_file) if config_file else {}
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw: Any = cli.get(setting.name)
        source = f"--{setting.name.replace('_', '-')}"
        if raw is None and env_name(setting.name) in environ:
            raw, source = environ[env_name(setting.name)], env_name(setting.name)
        if raw is None and setting.name in from_file:
            raw, source = from_file[setting.name], f"{config_file}: {setting.name}"
        values[setting.name] = setting.default() if raw is None else _convert(setting, raw, source)
    settings = Settings(**values)
    _validate(settings)
    return settings


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read config file {path}: {error}") from None
    known = {s.name for s in SETTINGS}
    table = data.get("bodega", data)  # keys at top level or under [bodega]
    if not isinstance(table, dict) or ("bodega" in data and len(data) > 1):
        raise ConfigError(f"{path}: put every key under [bodega] or every key at the top level")
    keys = {str(k).replace("-", "_"): v for k, v in table.items()}
    unknown = sorted(set(keys) - known)
    if unknown:
        raise ConfigError(f"unknown key(s) in {path}: {', '.join(unknown)}")
    return keys


def _convert(setting: Setting, raw: Any, source: str) -> Any:
    try:
        value = _to_kind(setting.kind, raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {raw!r} is not a valid {setting.kind.__name__}") from None
    problem = setting.check(value)
    if problem:
        raise ConfigError(f"{source}: {raw!r} {problem}")
    return value


def _to_kind(kind: type, raw: Any) -> Any:
    if kind is bool:
        return _to_bool(raw)
    if kind is Path:
        return Path(str(raw)).expanduser()
    if isinstance(raw, bool) or (kind is int and isinstance(raw, float)):
        raise ValueError(raw)  # TOML true is no number; 3141.9 is no port
    return kind(raw)


def _to_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(raw)


_LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "::", ""}  # noqa: S104


def _validate(settings: Settings) -> None:
    parts = urlsplit(settings.upstream)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"upstream must be an http(s) URL, not {settings.upstream!r}")
    upstream_port = parts.port or (443 if parts.scheme == "https" else 80)
    same_host = parts.hostname == settings.host or (
        parts.hostname in _LOOPBACK and settings.host in _LOOPBACK
    )
    if same_host and upstream_port == settings.port:
        raise ConfigError(f"upstream {settings.upstream} is this bodega itself")
