"""Settings: defaults <- TOML file <- BODEGA_* environment <- CLI, and what cannot work."""

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
    # The one field that is no setting: the file's [indexes] tables.
    assert [s.name for s in SETTINGS] == [*Settings.__dataclass_fields__][:-1]
    assert [*Settings.__dataclass_fields__][-1] == "index_table"
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
]


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
