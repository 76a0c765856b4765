"""Settings: defaults <- TOML file <- BODEGA_* environment <- CLI, and what cannot work."""

import dataclasses
import importlib.metadata
import sys
import tomllib
from pathlib import Path
from typing import Any

import platformdirs
import pytest
from packaging.requirements import Requirement
from pip._internal.models.index import PyPI

from bodega.config import (
    SETTINGS,
    Settings,
    env_name,
    load_settings,
    public_index_url,
)
from bodega.core.indexes import HostedIndex, MirrorIndex, VirtualIndex
from bodega.errors import ConfigError

UPSTREAM = "http://127.0.0.1:9/simple/"  # a loopback upstream that no test ever contacts


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bodega.toml"
    path.write_text(text)
    return path


def settings_from(
    cli: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Settings with a loopback upstream unless a source names another."""
    return load_settings({"upstream": UPSTREAM, **(cli or {})}, environ or {}, config_file)


# ------------------------------------------------------------------------------ defaults


def test_defaults_when_no_source_sets_anything() -> None:
    settings = load_settings({}, {})
    assert settings.host == "127.0.0.1"
    assert settings.port == 3141
    assert settings.data_dir == Path(platformdirs.user_data_dir("bodega", appauthor=False))
    assert settings.upstream == PyPI.simple_url
    assert settings.index_ttl == 600.0
    assert settings.revalidate_after == 30.0
    assert settings.offline is False
    assert settings.upstream_timeout == 5.0
    assert settings.shutdown_timeout == 10.0


def test_cli_values_that_are_none_count_as_not_given() -> None:
    cli = {setting.name: None for setting in SETTINGS}
    assert load_settings(cli, {}) == load_settings({}, {})


def test_database_and_blobs_live_in_the_data_dir(tmp_path: Path) -> None:
    settings = settings_from({"data_dir": str(tmp_path)})
    assert settings.database_path == tmp_path / "bodega.sqlite3"
    assert settings.blobs_dir.parent == tmp_path
    assert settings.spool_dir.parent == tmp_path


def test_every_setting_is_a_settings_field_with_a_bodega_env_name() -> None:
    # The fields that are no setting: the file's [indexes] tables, their policies and
    # their access rules.
    assert [s.name for s in SETTINGS] == [*Settings.__dataclass_fields__][:-3]
    fields = [*Settings.__dataclass_fields__][-3:]
    assert fields == ["index_table", "policy_table", "access_table"]
    assert env_name("upstream_timeout") == "BODEGA_UPSTREAM_TIMEOUT"


# ------------------------------------------------------------------------------ the public index


def test_public_index_url_is_pips_own_default() -> None:
    assert public_index_url() == PyPI.simple_url


def test_pip_is_a_dependency_of_every_install_so_the_default_upstream_works() -> None:
    # A tool install (pipx, uv tool install) makes a venv without pip: bodega must bring it.
    pyproject = Path(__file__).parents[2] / "pyproject.toml"
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    requirements = [Requirement(text) for text in dependencies]
    assert any(r.name == "pip" and r.marker is None for r in requirements)
    installed = [Requirement(text) for text in importlib.metadata.requires("bodega") or []]
    assert any(r.name == "pip" and r.marker is None for r in installed)


def test_public_index_url_without_pip_asks_for_upstream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pip._internal.models.index", None)  # import now fails
    with pytest.raises(ConfigError, match="--upstream"):
        public_index_url()


def test_without_pip_the_default_upstream_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pip._internal.models.index", None)
    with pytest.raises(ConfigError, match="BODEGA_UPSTREAM"):
        load_settings({}, {})


def test_without_pip_a_given_upstream_still_works(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pip._internal.models.index", None)
    assert load_settings({}, {"BODEGA_UPSTREAM": UPSTREAM}).upstream == UPSTREAM


# ------------------------------------------------------------------------------ every source

# One value per setting, as a string (CLI and environment) and as TOML, and the parsed result.
SAMPLES: list[tuple[str, str, str, Any]] = [
    ("host", "::1", '"::1"', "::1"),
    ("port", "8080", "8080", 8080),
    ("data_dir", "/srv/bodega", '"/srv/bodega"', Path("/srv/bodega")),
    ("upstream", "http://127.0.0.1:8000/simple/", '"http://127.0.0.1:8000/simple/"', None),
    ("index_ttl", "1.5", "1.5", 1.5),
    ("revalidate_after", "0", "0", 0.0),
    ("offline", "true", "true", True),
    ("upstream_timeout", "30", "30", 30.0),
    ("download_deadline", "900", "900", 900.0),
    ("search_refresh", "0", "0", 0.0),
    ("search_first_refresh", "5", "5", 5.0),
    ("shutdown_timeout", "2.5", "2.5", 2.5),
    ("header_timeout", "30", "30", 30.0),
    ("max_cache_size", "50G", '"50G"', 50 * 1024**3),
    ("default_index", "root/pypi", '"root/pypi"', "root/pypi"),
    ("min_release_age", "7d", '"7d"', 7 * 86400.0),
    (
        "database",
        "postgresql://bodega@db:5432/bodega",
        '"postgresql://bodega@db:5432/bodega"',
        None,
    ),
    ("blob_store", "s3://bucket/cache", '"s3://bucket/cache"', "s3://bucket/cache"),
    ("local_cache_size", "0", "0", 0),
    ("redirect_files", "false", "false", False),
    ("workers", "2", "2", 2),
]


def test_the_database_is_sqlite_in_the_data_dir_or_a_postgresql_url() -> None:
    assert settings_from().database == ""
    with pytest.raises(ConfigError, match=r"BODEGA_DATABASE: .* is not a postgresql:// URL"):
        settings_from(environ={"BODEGA_DATABASE": "mysql://db/bodega"})


def test_a_wrong_database_url_is_named_without_its_password() -> None:
    with pytest.raises(ConfigError) as raised:
        settings_from(environ={"BODEGA_DATABASE": "mysql://bodega:hunter2@db/bodega"})
    assert "hunter2" not in str(raised.value)
    assert "mysql://db/bodega" in str(raised.value)


def test_samples_cover_every_setting() -> None:
    assert sorted(name for name, *_ in SAMPLES) == sorted(s.name for s in SETTINGS)


def _expected(raw: str, parsed: Any) -> Any:
    return raw if parsed is None else parsed  # None: the text is kept as given


@pytest.mark.parametrize(("name", "raw", "toml", "parsed"), SAMPLES)
def test_each_setting_is_read_from_the_cli(name: str, raw: str, toml: str, parsed: Any) -> None:
    settings = load_settings({"upstream": UPSTREAM, name: raw}, {})
    assert getattr(settings, name) == _expected(raw, parsed)


@pytest.mark.parametrize(("name", "raw", "toml", "parsed"), SAMPLES)
def test_each_setting_is_read_from_its_env_var(name: str, raw: str, toml: str, parsed: Any) -> None:
    environ = {"BODEGA_UPSTREAM": UPSTREAM, env_name(name): raw}
    settings = load_settings({}, environ)
    assert getattr(settings, name) == _expected(raw, parsed)


@pytest.mark.parametrize(("name", "raw", "toml", "parsed"), SAMPLES)
def test_each_setting_is_read_from_the_config_file(
    tmp_path: Path, name: str, raw: str, toml: str, parsed: Any
) -> None:
    lines = [f"{name} = {toml}"]
    if name != "upstream":
        lines.append(f'upstream = "{UPSTREAM}"')
    settings = load_settings({}, {}, write_toml(tmp_path, "\n".join(lines) + "\n"))
    assert getattr(settings, name) == _expected(raw, parsed)


def test_cli_beats_env_beats_file_beats_default(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "port = 1001\nindex_ttl = 1\nupstream_timeout = 1\n")
    environ = {"BODEGA_PORT": "2002", "BODEGA_INDEX_TTL": "2"}
    settings = settings_from({"port": "3003"}, environ, config)
    assert settings.port == 3003  # CLI over environment and file
    assert settings.index_ttl == 2.0  # environment over file
    assert settings.upstream_timeout == 1.0  # file over default
    assert settings.host == "127.0.0.1"  # default


def test_an_empty_env_var_still_overrides_the_file(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "offline = true\n")
    assert settings_from(environ={"BODEGA_OFFLINE": ""}, config_file=config).offline is False


def test_other_env_vars_are_ignored() -> None:
    environ = {"PORT": "1", "HOST": "example", "bodega_port": "2", "BODEGA_PORTS": "3"}
    assert settings_from(environ=environ).port == 3141


def test_data_dir_expands_the_users_home() -> None:
    settings = settings_from({"data_dir": "~/bodega-cache"})
    assert settings.data_dir == Path.home() / "bodega-cache"


# ------------------------------------------------------------------------------ the config file


def test_file_keys_may_sit_under_a_bodega_table(tmp_path: Path) -> None:
    config = write_toml(tmp_path, f'[bodega]\nport = 8080\nupstream = "{UPSTREAM}"\n')
    assert load_settings({}, {}, config).port == 8080


@pytest.mark.parametrize("key", ["data-dir", "data_dir"])
def test_file_keys_may_use_dashes_or_underscores(tmp_path: Path, key: str) -> None:
    config = write_toml(tmp_path, f'{key} = "/srv/cache"\n')
    assert settings_from(config_file=config).data_dir == Path("/srv/cache")


def test_dashed_keys_work_under_the_bodega_table(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "[bodega]\nindex-ttl = 5\nupstream-timeout = 2.5\n")
    settings = settings_from(config_file=config)
    assert (settings.index_ttl, settings.upstream_timeout) == (5.0, 2.5)


def test_unknown_file_key_names_the_file_and_the_key(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "port = 8080\ncolour = 'blue'\n")
    with pytest.raises(ConfigError, match="colour") as raised:
        settings_from(config_file=config)
    assert str(config) in str(raised.value)


def test_unknown_key_under_the_bodega_table_is_an_error(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "[bodega]\ndatadir = '/srv'\n")
    with pytest.raises(ConfigError, match="datadir"):
        settings_from(config_file=config)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "port = = 1\n")
    with pytest.raises(ConfigError, match="cannot read config file") as raised:
        settings_from(config_file=config)
    assert str(config) in str(raised.value)


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        settings_from(config_file=tmp_path / "absent.toml")


def test_an_empty_config_file_changes_nothing(tmp_path: Path) -> None:
    assert settings_from(config_file=write_toml(tmp_path, "")) == settings_from()


def test_a_bodega_key_that_is_not_a_table_is_a_config_error(tmp_path: Path) -> None:
    config = write_toml(tmp_path, 'bodega = "yes"\n')
    with pytest.raises(ConfigError):
        settings_from(config_file=config)


# ------------------------------------------------------------------------------ booleans


@pytest.mark.parametrize("raw", ["1", "true", "True", "YES", "on", " on "])
def test_true_spellings_turn_offline_on(raw: str) -> None:
    assert settings_from(environ={"BODEGA_OFFLINE": raw}).offline is True


@pytest.mark.parametrize("raw", ["0", "false", "FALSE", "no", "off", ""])
def test_false_spellings_leave_offline_off(raw: str) -> None:
    assert settings_from(environ={"BODEGA_OFFLINE": raw}).offline is False


def test_the_cli_flag_turns_offline_on() -> None:
    assert settings_from({"offline": True}).offline is True


@pytest.mark.parametrize("toml", ["false", "0", '"off"'])
def test_file_offline_accepts_booleans_and_their_spellings(tmp_path: Path, toml: str) -> None:
    config = write_toml(tmp_path, f"offline = {toml}\n")
    assert settings_from(config_file=config).offline is False


def test_an_unknown_bool_spelling_names_the_env_var() -> None:
    with pytest.raises(ConfigError, match="BODEGA_OFFLINE: 'maybe' is not a valid bool"):
        settings_from(environ={"BODEGA_OFFLINE": "maybe"})


# ------------------------------------------------------------------------------ numbers


@pytest.mark.parametrize(
    ("name", "raw", "parsed"),
    [
        ("port", " 8080 ", 8080),
        ("port", "0", 0),
        ("port", "65535", 65535),
        ("index_ttl", "0", 0.0),
        ("index_ttl", "2.5e2", 250.0),
        ("upstream_timeout", "0.25", 0.25),
    ],
)
def test_numbers_are_parsed_from_text(name: str, raw: str, parsed: float) -> None:
    assert getattr(settings_from({name: raw}), name) == parsed


@pytest.mark.parametrize(
    ("name", "raw"),
    [("port", "http"), ("port", "80.5"), ("index_ttl", "ten"), ("upstream_timeout", "")],
)
def test_text_that_is_not_a_number_names_the_cli_option(name: str, raw: str) -> None:
    option = "--" + name.replace("_", "-")
    with pytest.raises(ConfigError, match=f"^{option}: .* is not a valid"):
        settings_from({name: raw})


def test_one_worker_process_by_default() -> None:
    assert settings_from().workers == 1


@pytest.mark.parametrize("raw", ["0", "-1", "33"])
def test_workers_beyond_the_bounds_name_them(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"^--workers: .* is not a number of processes \(1-32\)"):
        settings_from({"workers": raw})


def test_max_cache_size_defaults_to_no_limit() -> None:
    assert settings_from().max_cache_size == 0


def test_a_max_cache_size_that_is_no_size_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^--max-cache-size: '50X' is not a valid"):
        settings_from({"max_cache_size": "50X"})


def test_a_bad_number_in_the_environment_names_the_env_var() -> None:
    with pytest.raises(ConfigError, match=r"^BODEGA_INDEX_TTL: 'soon' is not a valid float"):
        settings_from(environ={"BODEGA_INDEX_TTL": "soon"})


def test_a_bad_number_in_the_file_names_the_file_and_key(tmp_path: Path) -> None:
    config = write_toml(tmp_path, 'port = "http"\n')
    with pytest.raises(ConfigError, match="port: 'http' is not a valid int") as raised:
        settings_from(config_file=config)
    assert str(raised.value).startswith(f"{config}: ")


@pytest.mark.parametrize("toml", ["true", "[8080]", "{ value = 8080 }"])
def test_file_values_of_the_wrong_toml_type_are_rejected(tmp_path: Path, toml: str) -> None:
    config = write_toml(tmp_path, f"port = {toml}\n")
    with pytest.raises(ConfigError, match="not a valid int"):
        settings_from(config_file=config)


def test_a_fractional_port_in_the_file_is_rejected(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "port = 3141.9\n")
    with pytest.raises(ConfigError):
        settings_from(config_file=config)


@pytest.mark.parametrize(
    ("cli", "message"),
    [
        ({"port": "65536"}, "--port: '65536' is not a port"),
        ({"port": "-1"}, "--port: '-1' is not a port"),
        ({"index_ttl": "-1"}, "--index-ttl: '-1' is not a number of seconds >= 0"),
        ({"upstream_timeout": "0"}, "--upstream-timeout: '0' is not a number of seconds > 0"),
        ({"shutdown_timeout": "-1"}, "--shutdown-timeout: '-1' is not a number of seconds >= 0"),
    ],
)
def test_out_of_range_numbers_are_rejected(cli: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from(cli)


def test_an_out_of_range_value_names_its_source() -> None:
    with pytest.raises(ConfigError, match="BODEGA_PORT"):
        settings_from(environ={"BODEGA_PORT": "70000"})


@pytest.mark.parametrize("name", ["index_ttl", "upstream_timeout", "shutdown_timeout"])
def test_nan_durations_are_rejected(name: str) -> None:
    with pytest.raises(ConfigError):
        settings_from({name: "nan"})


# ------------------------------------------------------------------------------ the upstream


@pytest.mark.parametrize("upstream", ["ftp://127.0.0.1/simple/", "127.0.0.1:8000", "http://"])
def test_upstream_must_be_an_http_url(upstream: str) -> None:
    with pytest.raises(ConfigError, match="must be an http"):
        settings_from({"upstream": upstream})


@pytest.mark.parametrize(
    ("host", "port", "upstream"),
    [
        ("127.0.0.1", "3141", "http://127.0.0.1:3141/simple/"),
        ("127.0.0.1", "3141", "http://localhost:3141/simple/"),
        ("127.0.0.1", "3141", "http://LOCALHOST:3141/simple/"),
        ("localhost", "3141", "http://127.0.0.1:3141/simple/"),
        ("0.0.0.0", "3141", "http://localhost:3141/simple/"),
        ("::1", "3141", "http://[::1]:3141/simple/"),
        ("127.0.0.1", "80", "http://127.0.0.1/simple/"),
        ("127.0.0.1", "443", "https://localhost/simple/"),
        ("10.1.2.3", "3141", "http://10.1.2.3:3141/simple/"),
    ],
)
def test_an_upstream_that_is_bodega_itself_is_refused(host: str, port: str, upstream: str) -> None:
    with pytest.raises(ConfigError, match="is this bodega itself"):
        load_settings({"host": host, "port": port, "upstream": upstream}, {})


def test_a_loop_made_of_values_from_different_sources_is_refused(tmp_path: Path) -> None:
    config = write_toml(tmp_path, 'upstream = "http://localhost:8000/simple/"\n')
    with pytest.raises(ConfigError, match="is this bodega itself"):
        load_settings({}, {"BODEGA_PORT": "8000"}, config)


@pytest.mark.parametrize(
    ("host", "port", "upstream"),
    [
        ("127.0.0.1", "3141", "http://127.0.0.1:3142/simple/"),
        ("127.0.0.1", "3141", "http://10.1.2.3:3141/simple/"),
        ("127.0.0.1", "80", "https://127.0.0.1/simple/"),
        ("127.0.0.1", "0", "http://127.0.0.1:3141/simple/"),
    ],
)
def test_an_upstream_elsewhere_is_not_a_loop(host: str, port: str, upstream: str) -> None:
    settings = load_settings({"host": host, "port": port, "upstream": upstream}, {})
    assert settings.upstream == upstream


# ------------------------------------------------------------------------------ indexes

ISSUE_EXAMPLE = """\
default_index = "root/pypi"          # what /simple/ and /root/pypi/+simple/ serve today
[indexes."root/pypi"]
type = "mirror"                      # upstream defaults to the public index, as now
[indexes."team/torch"]
type = "mirror"
upstream = "http://127.0.0.1:9000/simple/"
index_ttl = 3600
[indexes."team/all"]
type = "virtual"
bases = ["team/torch", "root/pypi"]
routes = { "torch*" = "team/torch", "nvidia-*" = "team/torch" }
"""


def test_the_issues_example_loads(tmp_path: Path) -> None:
    settings = load_settings({}, {}, write_toml(tmp_path, ISSUE_EXAMPLE))
    assert [spec.name for spec in settings.indexes] == ["root/pypi", "team/torch", "team/all"]
    assert settings.default_index == "root/pypi"
    assert settings.index("root/pypi") == MirrorIndex(
        "root/pypi", PyPI.simple_url, 600.0, 30.0, 5.0, 3600.0, offline=False
    )
    torch = settings.index("team/torch")
    assert isinstance(torch, MirrorIndex)
    assert (torch.upstream, torch.index_ttl) == ("http://127.0.0.1:9000/simple/", 3600.0)
    assert settings.index("team/all") == VirtualIndex(
        "team/all",
        ("team/torch", "root/pypi"),
        (("torch*", "team/torch"), ("nvidia-*", "team/torch")),
    )


def test_without_an_indexes_table_the_flat_settings_are_root_pypi() -> None:
    settings = settings_from({"index_ttl": "60", "offline": True}, {"BODEGA_UPSTREAM_TIMEOUT": "9"})
    assert settings.indexes == (
        MirrorIndex("root/pypi", UPSTREAM, 60.0, 30.0, 9.0, 3600.0, offline=True),
    )
    assert settings.default_index == "root/pypi"
    assert settings.index("root/pypi") == settings.indexes[0]


def test_root_pypi_follows_a_replaced_flat_setting() -> None:
    # tests/support builds Settings so: the flat settings stay the one source of root/pypi
    settings = dataclasses.replace(settings_from(), index_ttl=0.0, upstream="http://x.test/")
    mirror = settings.index("root/pypi")
    assert isinstance(mirror, MirrorIndex)
    assert (mirror.index_ttl, mirror.upstream) == (0.0, "http://x.test/")


def test_an_unknown_index_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        settings_from().index("team/none")


def test_the_indexes_may_sit_under_the_bodega_table(tmp_path: Path) -> None:
    config = write_toml(
        tmp_path,
        '[bodega]\nport = 8080\ndefault-index = "team/one"\n'
        '[bodega.indexes."team/one"]\ntype = "mirror"\n',
    )
    settings = settings_from(config_file=config)
    assert [spec.name for spec in settings.indexes] == ["team/one"]
    assert settings.default_index == "team/one"


def test_a_mirror_falls_back_on_the_flat_settings_from_every_source(tmp_path: Path) -> None:
    config = write_toml(
        tmp_path,
        'revalidate_after = 7\n[indexes."root/pypi"]\ntype = "mirror"\n'
        '[indexes."team/gpu"]\ntype = "mirror"\nupstream = "http://127.0.0.1:8/simple/"\n'
        "index_ttl = 3600\n",
    )
    settings = load_settings(
        {"download_deadline": "99"}, {"BODEGA_INDEX_TTL": "5", "BODEGA_UPSTREAM": UPSTREAM}, config
    )
    assert settings.index("root/pypi") == MirrorIndex(
        "root/pypi", UPSTREAM, 5.0, 7.0, 5.0, 99.0, offline=False
    )
    assert settings.index("team/gpu") == MirrorIndex(
        "team/gpu", "http://127.0.0.1:8/simple/", 3600.0, 7.0, 5.0, 99.0, offline=False
    )


def test_a_mirror_that_names_no_upstream_gets_the_public_index(tmp_path: Path) -> None:
    config = write_toml(tmp_path, '[indexes."team/one"]\ntype = "mirror"\n')
    settings = load_settings({}, {"BODEGA_DEFAULT_INDEX": "team/one"}, config)
    assert settings.index("team/one").upstream == PyPI.simple_url  # type: ignore[union-attr]


def test_the_flat_offline_takes_every_mirror_offline(tmp_path: Path) -> None:
    config = write_toml(
        tmp_path,
        '[indexes."root/pypi"]\ntype = "mirror"\noffline = false\n'
        '[indexes."team/gpu"]\ntype = "mirror"\n',
    )
    settings = settings_from({"offline": True}, config_file=config)
    assert all(spec.offline for spec in settings.indexes if isinstance(spec, MirrorIndex))


def test_one_mirror_may_be_offline_alone(tmp_path: Path) -> None:
    config = write_toml(
        tmp_path,
        '[indexes."root/pypi"]\ntype = "mirror"\n'
        '[indexes."team/gpu"]\ntype = "mirror"\noffline = true\nindex-ttl = 1\n',
    )
    settings = settings_from(config_file=config)
    assert [spec.offline for spec in settings.indexes] == [False, True]  # type: ignore[union-attr]


def test_default_index_may_come_from_the_cli(tmp_path: Path) -> None:
    config = write_toml(tmp_path, ISSUE_EXAMPLE)
    assert settings_from({"default_index": "team/all"}, config_file=config).default_index == (
        "team/all"
    )


def test_merge_is_read_as_a_boolean(tmp_path: Path) -> None:
    config = write_toml(
        tmp_path,
        '[indexes."root/pypi"]\ntype = "mirror"\n'
        '[indexes."team/all"]\ntype = "virtual"\nbases = ["root/pypi"]\nmerge = true\n',
    )
    index = settings_from(config_file=config).index("team/all")
    assert isinstance(index, VirtualIndex)
    assert index.merge is True


def _mistakes(tmp_path: Path, toml: str, **cli: str) -> list[str]:
    """The lines of the one ConfigError the file gets, without the file's name."""
    config = write_toml(tmp_path, toml)
    with pytest.raises(ConfigError) as raised:
        settings_from(cli, config_file=config)
    lines = str(raised.value).splitlines()
    assert all(line.startswith(f"{config}: ") for line in lines)
    return [line.removeprefix(f"{config}: ") for line in lines]


ROOT = '[indexes."root/pypi"]\ntype = "mirror"\n'


@pytest.mark.parametrize(
    ("toml", "mistake"),
    [
        (
            ROOT + "colour = 'blue'\n",
            "[indexes.\"root/pypi\"] unknown key 'colour' for a mirror index (known: type,"
            " upstream, index_ttl, revalidate_after, upstream_timeout, download_deadline,"
            " offline, min_release_age, allow, deny, files_without_upload_time, serve_removed,"
            " read, upload)",
        ),
        (
            ROOT + '[indexes."a/b"]\ntype = "virtual"\nbases = ["root/pypi"]\nindex_ttl = 5\n',
            "[indexes.\"a/b\"] unknown key 'index_ttl' for a virtual index (known: type,"
            " bases, routes, merge, min_release_age, allow, deny, files_without_upload_time,"
            " serve_removed, read, upload)",
        ),
        (
            ROOT + '[indexes."a/b"]\ntype = "proxy"\n',
            "[indexes.\"a/b\"] type: 'proxy' is not one of mirror, virtual, hosted",
        ),
        (
            ROOT + '[indexes."a/b"]\nupstream = "http://127.0.0.1:8/"\n',
            '[indexes."a/b"] type: missing; one of mirror, virtual, hosted',
        ),
        (
            ROOT + '[indexes."a/b"]\ntype = "hosted"\nreserved = ["ok", "no/t"]\n',
            "[indexes.\"a/b\"] reserved: not a valid project name: 'no/t'",
        ),
        (
            ROOT + '[indexes."a/b"]\ntype = "hosted"\nmax_upload_size = "lots"\n',
            "[indexes.\"a/b\"] max_upload_size: 'lots' is no size",
        ),
        (
            ROOT + '[indexes."a/b"]\ntype = "hosted"\nbases = ["root/pypi"]\n',
            "[indexes.\"a/b\"] unknown key 'bases' for a hosted index (known: type,"
            " reserved, max_upload_size, read, upload)",
        ),
        (
            ROOT + '[indexes."simple/b"]\ntype = "mirror"\n',
            "[indexes.\"simple/b\"] not an index name: 'simple/b' ('simple' is a path bodega uses)",
        ),
        (
            ROOT + '[indexes."team"]\ntype = "mirror"\n',
            "[indexes.\"team\"] not an index name: 'team' (expected <user>/<index>, each of"
            " letters, digits and . _ -, starting with a letter or digit)",
        ),
        (
            ROOT + "[indexes.team.gpu]\ntype = 'mirror'\n",
            '[indexes.team.gpu]: quote the name, as in [indexes."team/gpu"]',
        ),
        (
            ROOT + '[indexes."a/b"]\n',
            '[indexes."a/b"] type: missing; one of mirror, virtual, hosted',
        ),
        (
            ROOT + '[indexes."a/b"]\ntype = "virtual"\nbases = ["root/gone"]\n',
            "[indexes.\"a/b\"] bases: no index named 'root/gone'",
        ),
        (
            ROOT + '[indexes."a/b"]\ntype = "virtual"\nbases = ["a/b"]\n',
            "[indexes.\"a/b\"] bases: 'a/b' is the index itself",
        ),
        (
            ROOT + '[indexes."a/b"]\ntype = "virtual"\nbases = ["a/c"]\n'
            '[indexes."a/c"]\ntype = "virtual"\nbases = ["a/b", "root/pypi"]\n',
            "bases form a cycle: a/b -> a/c -> a/b",
        ),
        (
            ROOT + '[indexes."a/b"]\ntype = "virtual"\nbases = []\n',
            '[indexes."a/b"] bases: empty; a virtual index needs at least one base',
        ),
        (
            ROOT + '[indexes."a/b"]\ntype = "virtual"\n',
            '[indexes."a/b"] bases: missing; a virtual index needs at least one base',
        ),
        (
            ROOT + '[indexes."a/b"]\ntype = "virtual"\nbases = "root/pypi"\n',
            "[indexes.\"a/b\"] bases: 'root/pypi' is not a list of index names",
        ),
        (
            ROOT + '[indexes."a/b"]\ntype = "virtual"\nbases = ["root/pypi", "root/pypi"]\n',
            "[indexes.\"a/b\"] bases: 'root/pypi' is listed twice",
        ),
        (
            ROOT + '[indexes."a/c"]\ntype = "mirror"\n[indexes."a/b"]\ntype = "virtual"\n'
            'bases = ["root/pypi"]\nroutes = { "torch*" = "a/c" }\n',
            "[indexes.\"a/b\"] routes: 'torch*' goes to 'a/c', which is not one of its bases",
        ),
        (
            ROOT + '[indexes."a/b"]\ntype = "virtual"\nbases = ["root/pypi"]\n'
            'routes = { "" = "root/pypi" }\n',
            "[indexes.\"a/b\"] routes: glob '' is empty",
        ),
        (
            ROOT + '[indexes."a/b"]\ntype = "virtual"\nbases = ["root/pypi"]\n'
            'routes = { "torch/*" = "root/pypi" }\n',
            "[indexes.\"a/b\"] routes: glob 'torch/*' may hold only a project name's"
            " characters (letters, digits, . _ -) and * ? [ ]",
        ),
        (
            ROOT + '[indexes."a/b"]\ntype = "virtual"\nbases = ["root/pypi"]\n'
            'routes = ["torch*"]\n',
            '[indexes."a/b"] routes: [\'torch*\'] is not a table of "glob" = "base"',
        ),
        (
            ROOT + '[indexes."a/b"]\ntype = "virtual"\nbases = ["root/pypi"]\nmerge = "maybe"\n',
            "[indexes.\"a/b\"] merge: 'maybe' is not a valid bool",
        ),
        (
            ROOT + 'upstream = "ftp://127.0.0.1/simple/"\n',
            '[indexes."root/pypi"] upstream: must be an http(s) URL, not'
            " 'ftp://127.0.0.1/simple/'",
        ),
        (
            ROOT + 'upstream = "http://localhost:3141/simple/"\n',
            '[indexes."root/pypi"] upstream: http://localhost:3141/simple/ is this bodega itself',
        ),
        (
            ROOT + 'index_ttl = "x"\n',
            "[indexes.\"root/pypi\"] index_ttl: 'x' is not a valid float",
        ),
        (
            ROOT + "upstream_timeout = 0\n",
            '[indexes."root/pypi"] upstream_timeout: 0 is not a number of seconds > 0',
        ),
        (
            ROOT + "offline = 3\n",
            '[indexes."root/pypi"] offline: 3 is not a valid bool',
        ),
        (
            'default_index = "team/none"\n' + ROOT,
            "default_index: no index named 'team/none' (there are root/pypi)",
        ),
        (
            '[indexes."team/one"]\ntype = "mirror"\n',
            "default_index is missing: with no index named root/pypi, say which index"
            " /simple/ serves",
        ),
        ("[indexes]\n", '[indexes] must hold at least one [indexes."<user>/<index>"] table'),
        (
            'indexes = "root/pypi"\n',
            '[indexes] must hold at least one [indexes."<user>/<index>"] table',
        ),
        (
            '[indexes]\n"root/pypi" = "mirror"\n',
            '[indexes."root/pypi"] must be a table (type = ..., ...)',
        ),
    ],
)
def test_each_index_mistake_is_one_line_naming_the_file(
    tmp_path: Path, toml: str, mistake: str
) -> None:
    assert _mistakes(tmp_path, toml) == [mistake]


def test_every_mistake_is_reported_at_once_one_line_each(tmp_path: Path) -> None:
    config = write_toml(
        tmp_path,
        'port = "http"\n'
        + ROOT
        + 'index_ttl = "x"\n[indexes."team/all"]\ntype = "virtual"\nbases = ["team/gone"]\n'
        'routes = { "[torch" = "team/gone" }\n[indexes."team/h"]\ntype = "hosted"\nx = 1\n',
    )
    with pytest.raises(ConfigError) as raised:
        load_settings({}, {"BODEGA_OFFLINE": "maybe", "BODEGA_UPSTREAM": UPSTREAM}, config)
    assert str(raised.value).splitlines() == [
        f"{config}: port: 'http' is not a valid int",
        "BODEGA_OFFLINE: 'maybe' is not a valid bool",
        f"{config}: [indexes.\"root/pypi\"] index_ttl: 'x' is not a valid float",
        f"{config}: [indexes.\"team/all\"] routes: glob '[torch' has a [ that is never closed",
        f"{config}: [indexes.\"team/h\"] unknown key 'x' for a hosted index (known: type,"
        " reserved, max_upload_size, read, upload)",
        f"{config}: [indexes.\"team/all\"] bases: no index named 'team/gone'",
    ]


def test_the_flat_upstream_is_checked_when_a_mirror_falls_back_on_it(tmp_path: Path) -> None:
    config = write_toml(tmp_path, ROOT)
    with pytest.raises(ConfigError, match=r"^upstream http://localhost:3141/ is this bodega"):
        load_settings({"upstream": "http://localhost:3141/"}, {}, config)


def test_a_flat_upstream_no_mirror_uses_is_not_checked(tmp_path: Path) -> None:
    config = write_toml(tmp_path, ROOT + f'upstream = "{UPSTREAM}"\n')
    settings = load_settings({"upstream": "http://localhost:3141/"}, {}, config)
    assert settings.index("root/pypi").upstream == UPSTREAM  # type: ignore[union-attr]


def test_a_default_index_that_is_no_index_name_names_its_source() -> None:
    with pytest.raises(ConfigError, match=r"^BODEGA_DEFAULT_INDEX: 'pypi' is no index name"):
        settings_from(environ={"BODEGA_DEFAULT_INDEX": "pypi"})


def test_without_a_table_the_default_index_can_only_be_root_pypi() -> None:
    with pytest.raises(ConfigError, match=r"^--default-index: no index named 'team/all'"):
        settings_from({"default_index": "team/all"})


# ------------------------------------------------------------------------------ policies

POLICIES = (
    ROOT + 'min_release_age = "7d"\ndeny = ["urllib3<1.26.5", {files = "*.exe"}]\n'
    '[indexes."team/all"]\ntype = "virtual"\nbases = ["root/pypi"]\nallow = ["requests"]\n'
    'files_without_upload_time = "hide"\nserve_removed = false\n'
)


def test_each_index_table_may_set_a_policy(tmp_path: Path) -> None:
    settings = settings_from(config_file=write_toml(tmp_path, POLICIES))
    pypi, team = settings.policy("root/pypi"), settings.policy("team/all")
    assert pypi.min_release_age == 7 * 86400
    assert [rule.text for rule in pypi.deny] == ["urllib3<1.26.5", "files=*.exe"]
    assert pypi.serve_removed
    assert [rule.text for rule in team.allow] == ["requests"]
    assert (team.files_without_upload_time, team.serve_removed) == ("hide", False)
    assert not settings.policy("no/such").hides_anything


def test_min_release_age_on_the_command_line_is_the_default_indexs(tmp_path: Path) -> None:
    assert settings_from({"min_release_age": "2h"}).policy("root/pypi").min_release_age == 7200
    config = write_toml(tmp_path, POLICIES)
    assert (
        settings_from({"min_release_age": "1d"}, config_file=config)
        .policy("root/pypi")
        .min_release_age
        == 86400
    )
    assert (
        settings_from({"min_release_age": "1d"}, config_file=config)
        .policy("team/all")
        .min_release_age
        == 0
    )


def test_every_policy_mistake_is_a_line(tmp_path: Path) -> None:
    config = write_toml(
        tmp_path,
        ROOT + 'min_release_age = "soon"\ndeny = ["a<<1", 4]\n'
        'files_without_upload_time = "maybe"\nserve_removed = "perhaps"\nallow = "x"\n',
    )
    with pytest.raises(ConfigError) as raised:
        settings_from(config_file=config)
    lines = str(raised.value).splitlines()
    assert len(lines) == 6
    assert all('[indexes."root/pypi"]' in line for line in lines)


def test_a_hosted_index_table(tmp_path: Path) -> None:
    config = write_toml(
        tmp_path,
        ROOT + '[indexes."acme/private"]\ntype = "hosted"\nreserved = ["Acme_Lib", "acme-lib"]\n'
        'max_upload_size = "20M"\n'
        '[indexes."acme/all"]\ntype = "virtual"\nbases = ["root/pypi", "acme/private"]\n',
    )
    settings = load_settings({}, {"BODEGA_UPSTREAM": UPSTREAM}, config)
    assert settings.index("acme/private") == HostedIndex(
        "acme/private", ("acme-lib",), 20 * 1024 * 1024
    )


# ------------------------------------------------------------------------------ the blob store


@pytest.mark.parametrize(
    "url", ["s3://", "s3:///prefix", "http://store/x", "s3://b/p?x=1", "file:"]
)
def test_a_blob_store_is_file_or_s3(url: str) -> None:
    with pytest.raises(ConfigError, match=r"BODEGA_BLOB_STORE: .*s3://BUCKET/PREFIX"):
        load_settings({}, {"BODEGA_UPSTREAM": UPSTREAM, "BODEGA_BLOB_STORE": url})


@pytest.mark.parametrize(("name", "raw"), [("local_cache_size", "1G"), ("redirect_files", "true")])
def test_object_store_options_need_an_object_store(name: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=f"--{name.replace('_', '-')}: needs an s3://"):
        load_settings({"upstream": UPSTREAM, name: raw}, {})
    settings = load_settings({"upstream": UPSTREAM, name: raw, "blob_store": "s3://b/p"}, {})
    assert getattr(settings, name)
