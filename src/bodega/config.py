"""Settings: one frozen dataclass, loaded as defaults <- TOML file <- BODEGA_* env <- CLI.

Each setting is declared once, in SETTINGS, which feeds the CLI options, the environment
variables, the config-file keys and the docs. The environment is read only when settings
are loaded, never at import.

The indexes bodega serves come from the file's `[indexes."<user>/<index>"]` tables; with
none, the flat settings describe one mirror, root/pypi, as before indexes existed. A
mirror's table falls back on the flat settings for what it does not set. Every mistake in
every source is reported at once, one line each, in one ConfigError.
"""

import dataclasses
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

from bodega.core.access import IndexAccess, read_index_access
from bodega.core.indexes import (
    DEFAULT_INDEX,
    DEFAULT_MAX_UPLOAD_SIZE,
    KINDS,
    HostedIndex,
    IndexSpec,
    MirrorIndex,
    VirtualIndex,
    check_index_name,
    glob_problem,
    graph_problems,
)
from bodega.core.names import normalize_project_name
from bodega.core.policy import NO_POLICY, WITHOUT_UPLOAD_TIME, IndexPolicy, Rule, parse_rule
from bodega.core.units import parse_duration, parse_size
from bodega.core.urls import shown_url
from bodega.errors import ConfigError, InvalidName

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


# Beyond a few per core, more workers only add memory and duplicate background work.
MAX_WORKERS = 32


def _workers(value: int) -> str | None:
    return None if 1 <= value <= MAX_WORKERS else f"is not a number of processes (1-{MAX_WORKERS})"


def _seconds(value: float) -> str | None:
    return None if math.isfinite(value) and value >= 0 else "is not a number of seconds >= 0"


def _positive_seconds(value: float) -> str | None:
    return None if math.isfinite(value) and value > 0 else "is not a number of seconds > 0"


def _index_name(value: str) -> str | None:
    if not value:
        return None  # not given: root/pypi, when there is one
    try:
        check_index_name(value)
    except InvalidName as error:
        return f"is no index name ({error})"
    return None


_DATABASE_SCHEMES = ("postgresql://", "postgres://")


def _database(value: str) -> str | None:
    if not value or value.startswith(_DATABASE_SCHEMES):
        return None  # empty: SQLite in the data dir
    return "is not a postgresql:// URL (leave it unset for SQLite in the data dir)"


def _blob_store(value: str) -> str | None:
    scheme, _, rest = value.partition("://")
    if value == "file://":
        return None
    if scheme == "s3" and rest and not rest.startswith("/") and "?" not in rest:
        return None
    return "is neither file:// nor s3://BUCKET/PREFIX"


class ByteSize(int):
    """A number of bytes, given as `50G`, `512M`, `1.5T` or plain bytes."""

    def __new__(cls, raw: object) -> "ByteSize":
        return super().__new__(cls, parse_size(str(raw)))


class Duration(float):
    """Seconds, given as `7d`, `36h`, `90m`, `2w` or a plain number of seconds."""

    def __new__(cls, raw: object) -> "Duration":
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return super().__new__(cls, raw)
        text = str(raw).strip()
        try:
            return super().__new__(cls, float(text))
        except ValueError:
            return super().__new__(cls, parse_duration(text))


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
    Setting(
        "default_index",
        str,
        "The index that /simple/ and the other short paths serve, <user>/<index>.",
        lambda: "",
        _index_name,
        metavar="INDEX",
        default_help="root/pypi; required when the config file's [indexes] has none",
    ),
    Setting(
        "min_release_age",
        Duration,
        "Hide files of the default index uploaded less than this long ago (7d, 36h; its"
        " table's min_release_age when it has one), so a malicious release has time to be"
        " found and removed first; `bodega allow` lets one through.",
        lambda: Duration(0),
        _seconds,
        metavar="DURATION",
        default_help="0: off",
    ),
    Setting(
        "database",
        str,
        "Where the metadata lives: a PostgreSQL URL (postgresql://user@host:5432/bodega) for"
        " replicas that share one cache; keep the password out of it (PGPASSWORD or"
        " ~/.pgpass), as command lines and unit files are readable.",
        lambda: "",
        _database,
        metavar="URL",
        default_help="SQLite in the data dir",
    ),
    Setting(
        "blob_store",
        str,
        "Where cached files are kept: file:// (the data dir) or s3://BUCKET/PREFIX, an"
        " S3-compatible object store reached with the standard AWS_* variables and files.",
        lambda: "file://",
        _blob_store,
        metavar="URL",
        default_help="file://, the data dir's blobs/",
    ),
    Setting(
        "local_cache_size",
        ByteSize,
        "With an s3:// blob store: keep up to this many bytes of the files served most"
        " recently on the local disk too, sent from there by sendfile (50G, 512M).",
        lambda: ByteSize(0),
        metavar="SIZE",
        default_help="0: every hit streams from the object store",
    ),
    Setting(
        "redirect_files",
        bool,
        "With an s3:// blob store: answer a cached file with a 302 to a short-lived"
        " presigned URL of the object store instead of sending its bytes.",
        lambda: False,
        metavar="",
        default_help="off",
    ),
    Setting(
        "workers",
        int,
        "Server processes sharing the port (SO_REUSEPORT) and the cache: 2 on a 2-core"
        " machine serves a cold install's burst faster. Each file is still downloaded from"
        " upstream once, whichever process is asked.",
        lambda: 1,
        _workers,
        metavar="N",
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
    default_index: str = DEFAULT_INDEX
    min_release_age: float = 0.0  # seconds; the default index's, unless its table says
    database: str = ""  # a PostgreSQL URL; empty: SQLite at database_path
    blob_store: str = "file://"  # or s3://bucket/prefix
    local_cache_size: int = 0  # bytes of S3 blobs also kept on the local disk; 0: none
    redirect_files: bool = False  # S3 blobs: a 302 to a presigned URL
    workers: int = 1  # server processes on one port and one cache (web/workers.py)
    # The file's [indexes] tables, in file order; empty: the one mirror the flat settings
    # describe. A field apart from `indexes`, so dataclasses.replace() of a flat setting
    # (as tests do) still changes root/pypi.
    index_table: tuple[IndexSpec, ...] = ()
    # Each index's supply-chain policy (issue 15), from its table; an index not here hides
    # nothing beyond --min-release-age for the default one.
    policy_table: tuple[tuple[str, IndexPolicy], ...] = ()

    def policy(self, name: str) -> IndexPolicy:
        """What the index `name` hides (core.policy)."""
        found = dict(self.policy_table).get(name, NO_POLICY)
        if name == self.default_index and found.min_release_age <= 0 < self.min_release_age:
            found = dataclasses.replace(found, min_release_age=self.min_release_age)
        return found

    # Who reads and uploads to each index whose table says so (core.access); an index
    # without an entry is open to read and admins alone upload.
    access_table: tuple[IndexAccess, ...] = ()

    @property
    def indexes(self) -> tuple[IndexSpec, ...]:
        """Every index bodega serves, in file order; never empty."""
        return self.index_table or (_flat_mirror(self),)

    def index(self, name: str) -> IndexSpec:
        """The index of that name; KeyError for none."""
        for spec in self.indexes:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def access(self, name: str) -> IndexAccess:
        """Who may read and upload to the index `name`."""
        for rule in self.access_table:
            if rule.index == name:
                return rule
        return IndexAccess(name)

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


# The settings a mirror index's table may set, each falling back on the flat setting.
MIRROR_KEYS = (
    "upstream",
    "index_ttl",
    "revalidate_after",
    "upstream_timeout",
    "download_deadline",
    "offline",
)
VIRTUAL_KEYS = ("bases", "routes", "merge")
HOSTED_KEYS = ("reserved", "max_upload_size")
# Supply-chain policy (core.policy), on an index of any kind.
POLICY_KEYS = ("min_release_age", "allow", "deny", "files_without_upload_time", "serve_removed")
ACCESS_KEYS = ("read", "upload")  # on every kind of index: core.access


def load_settings(
    cli: Mapping[str, Any],
    environ: Mapping[str, str],
    config_file: Path | None = None,
) -> Settings:
    """Settings from the CLI (values not given are absent or None), the environment and an
    optional TOML file, over the defaults; ConfigError for anything that cannot work, with
    one line for each mistake."""
    problems: list[str] = []
    from_file = _read_config_file(config_file, problems) if config_file else {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        raw: Any = cli.get(setting.name)
        source = f"--{setting.name.replace('_', '-')}"
        if raw is None and env_name(setting.name) in environ:
            raw, source = environ[env_name(setting.name)], env_name(setting.name)
        if raw is None and setting.name in from_file:
            raw, source = from_file[setting.name], f"{config_file}: {setting.name}"
        sources[setting.name] = source
        try:
            values[setting.name] = (
                setting.default() if raw is None else _convert(setting, raw, source)
            )
        except ConfigError as error:
            problems.append(str(error))
            values[setting.name] = None  # reported; nothing below may rely on it
    index_table: tuple[IndexSpec, ...] = ()
    policy_table: tuple[tuple[str, IndexPolicy], ...] = ()
    access_table: tuple[IndexAccess, ...] = ()
    if "indexes" in from_file:
        access_table = _read_access(from_file["indexes"], f"{config_file}", problems)
        index_table = _read_indexes(from_file["indexes"], values, f"{config_file}", problems)
        policy_table = _read_policies(from_file["indexes"], f"{config_file}", problems)
    else:
        problems.extend(_upstream_problems(values))
    problems.extend(_blob_store_problems(values, sources))
    names = [spec.name for spec in index_table] or [DEFAULT_INDEX]
    values["default_index"] = _default_index(
        values["default_index"], names, sources["default_index"], f"{config_file}", problems
    )
    if problems:
        raise ConfigError("\n".join(problems))
    policy_table = _with_flat_age(policy_table, values, sources["min_release_age"])
    return Settings(
        **values,
        index_table=index_table,
        policy_table=policy_table,
        access_table=access_table,
    )


def _blob_store_problems(values: Mapping[str, Any], sources: Mapping[str, str]) -> list[str]:
    """The options that only an object store has, given for the data dir's blobs."""
    if values["blob_store"] != "file://":
        return []
    return [
        f"{sources[name]}: needs an s3:// --blob-store"
        for name in ("local_cache_size", "redirect_files")
        if values[name]
    ]


def _read_config_file(path: Path, problems: list[str]) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read config file {path}: {error}") from None
    known = {s.name for s in SETTINGS} | {"indexes"}
    table = data.get("bodega", data)  # keys at top level or under [bodega]
    if not isinstance(table, dict) or ("bodega" in data and len(data) > 1):
        raise ConfigError(f"{path}: put every key under [bodega] or every key at the top level")
    keys = {str(k).replace("-", "_"): v for k, v in table.items()}
    unknown = sorted(set(keys) - known)
    if unknown:
        problems.append(f"unknown key(s) in {path}: {', '.join(unknown)}")
    return {key: value for key, value in keys.items() if key in known}


def _default_index(
    given: str | None, names: list[str], source: str, file: str, problems: list[str]
) -> str:
    """The index /simple/ serves: as given, else root/pypi when there is one."""
    if given is None:
        return DEFAULT_INDEX  # its own problem is reported already
    if given and given not in names:
        problems.append(f"{source}: no index named {given!r} (there are {', '.join(names)})")
    elif not given and DEFAULT_INDEX not in names:
        problems.append(
            f"{file}: default_index is missing: with no index named {DEFAULT_INDEX}, say"
            " which index /simple/ serves"
        )
    return given or DEFAULT_INDEX


# ------------------------------------------------------------------------------ indexes


def _flat_mirror(settings: Settings) -> MirrorIndex:
    """root/pypi as the flat settings describe it: the one index when the file has no
    [indexes] table."""
    return MirrorIndex(
        DEFAULT_INDEX,
        settings.upstream,
        settings.index_ttl,
        settings.revalidate_after,
        settings.upstream_timeout,
        settings.download_deadline,
        settings.offline,
    )


def _read_indexes(
    raw: Any, flat: Mapping[str, Any], file: str, problems: list[str]
) -> tuple[IndexSpec, ...]:
    """The [indexes] tables as specs, in file order; each mistake a line in `problems`."""
    if not isinstance(raw, dict) or not raw:
        problems.append(
            f'{file}: [indexes] must hold at least one [indexes."<user>/<index>"] table'
        )
        return ()
    specs: list[IndexSpec] = []
    inherits_upstream = False
    for name, body in raw.items():
        label = f'{file}: [indexes."{name}"]'
        if (
            "/" not in name
            and isinstance(body, dict)
            and all(isinstance(value, dict) for value in body.values())
        ):
            # [indexes.root.pypi] is TOML for a table "root" holding a table "pypi".
            problems.extend(
                f'{file}: [indexes.{name}.{sub}]: quote the name, as in [indexes."{name}/{sub}"]'
                for sub in body
            )
            continue
        try:
            check_index_name(name)
        except InvalidName as error:
            problems.append(f"{label} {error}")
        if not isinstance(body, dict):
            problems.append(f"{label} must be a table (type = ..., ...)")
            continue
        keys = {str(key).replace("-", "_"): value for key, value in body.items()}
        kind = keys.pop("type", None)
        for key in ACCESS_KEYS:
            keys.pop(key, None)  # read by _read_access, whatever the kind
        if kind == "mirror":
            specs.append(_read_mirror(name, keys, flat, label, problems))
            inherits_upstream = inherits_upstream or "upstream" not in keys
        elif kind == "virtual":
            specs.append(_read_virtual(name, keys, label, problems))
        elif kind == "hosted":
            specs.append(_read_hosted(name, keys, label, problems))
        elif kind is None:
            problems.append(f"{label} type: missing; one of {', '.join(KINDS)}")
        else:
            problems.append(f"{label} type: {kind!r} is not one of {', '.join(KINDS)}")
    if inherits_upstream:
        problems.extend(_upstream_problems(flat))
    problems.extend(f"{file}: {problem}" for problem in graph_problems(specs))
    return tuple(specs)


def _read_access(raw: Any, file: str, problems: list[str]) -> tuple[IndexAccess, ...]:
    """The access rules of the [indexes] tables that have any, in file order (a malformed
    table is _read_indexes' to report)."""
    if not isinstance(raw, dict):
        return ()
    rules: list[IndexAccess] = []
    for name, body in raw.items():
        if isinstance(body, dict) and any(key in body for key in ACCESS_KEYS):
            keys = {key: body[key] for key in ACCESS_KEYS if key in body}
            rules.append(read_index_access(name, keys, f'{file}: [indexes."{name}"]', problems))
    return tuple(rules)


def _read_mirror(
    name: str, keys: dict[str, Any], flat: Mapping[str, Any], label: str, problems: list[str]
) -> MirrorIndex:
    """A mirror from its table; what it does not set comes from the flat settings, and the
    flat --offline takes every mirror offline whatever its table says."""
    _unknown_keys(keys, MIRROR_KEYS + POLICY_KEYS, "a mirror", label, problems)
    values = dict(flat)
    for setting in SETTINGS:
        if setting.name in MIRROR_KEYS and setting.name in keys:
            try:
                values[setting.name] = _convert(
                    setting, keys[setting.name], f"{label} {setting.name}"
                )
            except ConfigError as error:
                problems.append(str(error))
    if "upstream" in keys and isinstance(values["upstream"], str):
        problem = _upstream_problem(values["upstream"], flat["host"], flat["port"])
        if problem:
            problems.append(f"{label} upstream: {problem}")
    return MirrorIndex(
        name,
        values["upstream"],
        values["index_ttl"],
        values["revalidate_after"],
        values["upstream_timeout"],
        values["download_deadline"],
        bool(values["offline"] or flat["offline"]),
    )


def _read_virtual(name: str, keys: dict[str, Any], label: str, problems: list[str]) -> VirtualIndex:
    _unknown_keys(keys, VIRTUAL_KEYS + POLICY_KEYS, "a virtual", label, problems)
    bases = _read_bases(keys.get("bases"), label, problems)
    routes = _read_routes(keys.get("routes", {}), label, problems)
    merge = False
    try:
        merge = _to_bool(keys.get("merge", False))
    except ValueError:
        problems.append(f"{label} merge: {keys['merge']!r} is not a valid bool")
    return VirtualIndex(name, bases, routes, merge)


def _read_hosted(name: str, keys: dict[str, Any], label: str, problems: list[str]) -> HostedIndex:
    _unknown_keys(keys, HOSTED_KEYS, "a hosted", label, problems)
    reserved: list[str] = []
    raw = keys.get("reserved", [])
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        problems.append(f"{label} reserved: {raw!r} is not a list of project names")
        raw = []
    for item in raw:
        try:
            reserved.append(normalize_project_name(item))
        except InvalidName as error:
            problems.append(f"{label} reserved: {error}")
    max_size = DEFAULT_MAX_UPLOAD_SIZE
    if "max_upload_size" in keys:
        try:
            max_size = parse_size(str(keys["max_upload_size"]))
        except ValueError:
            problems.append(f"{label} max_upload_size: {keys['max_upload_size']!r} is no size")
        if max_size <= 0:
            problems.append(f"{label} max_upload_size: must be more than 0 bytes")
    return HostedIndex(name, tuple(dict.fromkeys(reserved)), max_size)


def _read_bases(raw: Any, label: str, problems: list[str]) -> tuple[str, ...]:
    if raw is None:
        problems.append(f"{label} bases: missing; a virtual index needs at least one base")
        return ()
    if not isinstance(raw, list) or not all(isinstance(base, str) for base in raw):
        problems.append(f"{label} bases: {raw!r} is not a list of index names")
        return ()
    if not raw:
        problems.append(f"{label} bases: empty; a virtual index needs at least one base")
    problems.extend(
        f"{label} bases: {base!r} is listed twice"
        for base in dict.fromkeys(raw)
        if raw.count(base) > 1
    )
    return tuple(dict.fromkeys(raw))


def _read_routes(raw: Any, label: str, problems: list[str]) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, dict):
        problems.append(f'{label} routes: {raw!r} is not a table of "glob" = "base"')
        return ()
    routes: list[tuple[str, str]] = []
    for glob, base in raw.items():
        problem = glob_problem(glob)
        if problem:
            problems.append(f"{label} routes: glob {glob!r} {problem}")
        elif not isinstance(base, str):
            problems.append(f"{label} routes: {glob!r} = {base!r} is not an index name")
        else:
            routes.append((glob, base))
    return tuple(routes)


def _unknown_keys(
    keys: Mapping[str, Any], known: tuple[str, ...], kind: str, label: str, problems: list[str]
) -> None:
    problems.extend(
        f"{label} unknown key {key!r} for {kind} index"
        f" (known: type, {', '.join((*known, *ACCESS_KEYS))})"
        for key in keys
        if key not in known
    )


# ------------------------------------------------------------------------------ policies


def _read_policies(raw: Any, file: str, problems: list[str]) -> tuple[tuple[str, IndexPolicy], ...]:
    """Each index table's policy keys (core.policy), for the tables that set any."""
    if not isinstance(raw, dict):
        return ()  # reported by _read_indexes
    policies: list[tuple[str, IndexPolicy]] = []
    for name, body in raw.items():
        if not isinstance(body, dict):
            continue
        keys = {str(key).replace("-", "_"): value for key, value in body.items()}
        if any(key in keys for key in POLICY_KEYS):
            label = f'{file}: [indexes."{name}"]'
            policies.append((name, _read_policy(keys, label, problems)))
    return tuple(policies)


def _read_policy(keys: Mapping[str, Any], label: str, problems: list[str]) -> IndexPolicy:
    age = 0.0
    if "min_release_age" in keys:
        setting = next(s for s in SETTINGS if s.name == "min_release_age")
        try:
            age = _convert(setting, keys["min_release_age"], f"{label} min_release_age")
        except ConfigError as error:
            problems.append(str(error))
    without = keys.get("files_without_upload_time", "pass")
    if without not in WITHOUT_UPLOAD_TIME:
        problems.append(
            f"{label} files_without_upload_time: {without!r} is not one of"
            f" {', '.join(WITHOUT_UPLOAD_TIME)}"
        )
    serve_removed = True
    try:
        serve_removed = _to_bool(keys.get("serve_removed", True))
    except ValueError:
        problems.append(f"{label} serve_removed: {keys['serve_removed']!r} is not a valid bool")
    return IndexPolicy(
        min_release_age=age,
        allow=_read_rules(keys.get("allow", []), f"{label} allow", problems),
        deny=_read_rules(keys.get("deny", []), f"{label} deny", problems),
        files_without_upload_time=without if without in WITHOUT_UPLOAD_TIME else "pass",
        serve_removed=serve_removed,
    )


def _read_rules(raw: Any, label: str, problems: list[str]) -> tuple[Rule, ...]:
    if not isinstance(raw, list):
        problems.append(f"{label}: {raw!r} is not a list of rules")
        return ()
    rules: list[Rule] = []
    for item in raw:
        try:
            rules.append(parse_rule(item))
        except ValueError as error:
            problems.append(f"{label}: {error}")
    return tuple(rules)


def _with_flat_age(
    policies: tuple[tuple[str, IndexPolicy], ...], values: Mapping[str, Any], source: str
) -> tuple[tuple[str, IndexPolicy], ...]:
    """--min-release-age (or BODEGA_MIN_RELEASE_AGE) given on its own: the default index's,
    over what its table says; from the file or the default it applies only where the
    default index's table sets none (Settings.policy)."""
    age = values["min_release_age"]
    if not age or not source.startswith(("--", ENV_PREFIX)):
        return policies
    default = values["default_index"]
    found = dict(policies)
    if default not in found:
        return policies
    updated = dataclasses.replace(found[default], min_release_age=age)
    return tuple((name, updated if name == default else policy) for name, policy in policies)


# ------------------------------------------------------------------------------ values


def _convert(setting: Setting, raw: Any, source: str) -> Any:
    try:
        value = _to_kind(setting.kind, raw)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{source}: {_shown(raw)!r} is not a valid {setting.kind.__name__}"
        ) from None
    problem = setting.check(value)
    if problem:
        raise ConfigError(f"{source}: {_shown(raw)!r} {problem}")
    return value


def _shown(raw: Any) -> Any:
    """A value as an error message may echo it: a URL (a wrong-scheme --database, an
    upstream) can carry a password, which never reaches a message."""
    if not isinstance(raw, str) or "@" not in raw:
        return raw
    try:
        return shown_url(raw)
    except ValueError:
        return "(a value with credentials, not shown)"


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


def _upstream_problems(flat: Mapping[str, Any]) -> list[str]:
    """What is wrong with the flat upstream, which root/pypi (or each mirror that names no
    upstream of its own) uses."""
    if flat["upstream"] is None:
        return []  # reported already
    problem = _upstream_problem(flat["upstream"], flat["host"], flat["port"])
    return [f"upstream {problem}"] if problem else []


def _upstream_problem(upstream: str, host: str | None, port: int | None) -> str | None:
    """Why `upstream` cannot be a mirror's upstream: no http(s) URL, or this bodega."""
    parts = urlsplit(upstream)
    try:
        upstream_port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # a port out of range or no number
        upstream_port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or upstream_port < 0:
        return f"must be an http(s) URL, not {upstream!r}"
    same_host = parts.hostname == host or (parts.hostname in _LOOPBACK and host in _LOOPBACK)
    if same_host and upstream_port == port:
        return f"{upstream} is this bodega itself"
    return None
