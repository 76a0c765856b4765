"""What `bodega configure` writes for each client, from what was there before."""

import configparser
import tomllib
from pathlib import Path

import pytest

from bodega.clients import check_base_url, commands, index_url, pip_config, uv_config
from bodega.errors import ConfigError

URL = "http://127.0.0.1:3141/simple/"
PIP_CONF = Path("pip.conf")
UV_TOML = Path("uv.toml")


def ini(text: str) -> dict[str, dict[str, str]]:
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    return {section: dict(parser[section]) for section in parser.sections()}


def test_pip_gets_the_index_and_the_search_endpoint() -> None:
    written = pip_config(URL, "", PIP_CONF)
    assert ini(written.text) == {
        "global": {"index-url": URL},
        "search": {"index": "http://127.0.0.1:3141/pypi"},
    }


def test_pip_keeps_the_users_other_settings_and_replaces_an_old_index() -> None:
    existing = "[global]\ntimeout = 60\nindex-url = http://old/simple/\n[install]\nuser = yes\n"
    written = pip_config(URL, existing, PIP_CONF)
    assert ini(written.text)["global"] == {"timeout": "60", "index-url": URL}
    assert ini(written.text)["install"] == {"user": "yes"}


def test_pip_trusts_a_plain_http_host_only_when_it_is_not_loopback() -> None:
    remote = pip_config("http://cache.internal:3141/simple/", "", PIP_CONF)
    assert ini(remote.text)["global"]["trusted-host"] == "cache.internal"
    for url in (URL, "http://[::1]:3141/simple/", "https://cache.internal/simple/"):
        assert "trusted-host" not in ini(pip_config(url, "", PIP_CONF).text)["global"]


def test_an_unreadable_pip_conf_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="not a config file pip can read"):
        pip_config(URL, "index-url = no section\n", PIP_CONF)


def test_uv_gets_bodega_as_its_default_index_after_the_users_text() -> None:
    existing = "# mine\nnative-tls = true\n"
    written = uv_config(URL, existing, UV_TOML)
    assert written.text.startswith(existing)
    assert tomllib.loads(written.text) == {
        "native-tls": True,
        "index": [{"url": URL, "default": True}],
    }


def test_uv_with_bodega_already_the_default_is_left_as_it_is() -> None:
    once = uv_config(URL, "", UV_TOML).text
    assert uv_config(URL, once, UV_TOML).text == once


@pytest.mark.parametrize(
    "existing",
    [
        '[[index]]\nurl = "http://other/simple/"\ndefault = true\n',
        'index-url = "http://other/simple/"\n',
    ],
)
def test_uv_with_another_default_index_is_refused_not_overridden(existing: str) -> None:
    with pytest.raises(ConfigError, match="already names a default index"):
        uv_config(URL, existing, UV_TOML)


def test_uv_text_that_cannot_take_an_index_table_is_refused() -> None:
    with pytest.raises(ConfigError, match="cannot add to"):
        uv_config(URL, 'index = [{ url = "http://other/simple/" }]\n', UV_TOML)


def test_invalid_uv_toml_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"uv\.toml is not valid TOML"):
        uv_config(URL, "default = [", UV_TOML)


def test_poetry_pdm_and_pipenv_get_commands() -> None:
    assert commands(URL) == {
        "poetry": f"poetry source add --priority=primary bodega {URL}",
        "pdm": f"pdm config pypi.url {URL}",
        "pipenv": f"export PIPENV_PYPI_MIRROR={URL}",
    }


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/", "127.0.0.1:3141", 'http://a/"b', "http://a/?x=1", "http://a/#f"]
)
def test_a_base_url_must_be_plain_http(url: str) -> None:
    with pytest.raises(ConfigError, match="--url"):
        check_base_url(url)


@pytest.mark.parametrize(
    ("given", "base"),
    [
        ("http://cache.example:3141/", "http://cache.example:3141/"),
        ("http://cache.example:3141", "http://cache.example:3141/"),
        ("http://cache.example:3141/simple/", "http://cache.example:3141/"),
        ("http://cache.example:3141/simple", "http://cache.example:3141/"),
        ("https://example.org/bodega/", "https://example.org/bodega/"),
        ("https://example.org/bodega/simple/", "https://example.org/bodega/"),
    ],
)
def test_url_is_the_base_url_and_an_index_url_is_read_as_the_base_above_it(
    given: str, base: str
) -> None:
    assert check_base_url(given) == base
    assert index_url(check_base_url(given)) == base + "simple/"


def test_pip_search_sits_beside_the_index_under_a_path_prefix() -> None:
    written = pip_config("https://example.org/bodega/simple/", "", PIP_CONF)
    assert ini(written.text)["search"] == {"index": "https://example.org/bodega/pypi"}


# ------------------------------------------------------------------------------ extras


def test_pip_extras_are_reported_and_kept_unless_asked() -> None:
    existing = (
        "[global]\nfind-links = /srv/wheels\nextra-index-url =\n    http://a/simple/\n"
        "    http://b/simple/\n[install]\nextra_index_url = http://c/simple/\n"
    )
    kept = pip_config(URL, existing, PIP_CONF)
    assert kept.extras == (
        "[global] find-links = /srv/wheels",
        "[global] extra-index-url = http://a/simple/ http://b/simple/",
        "[install] extra_index_url = http://c/simple/",
    )
    assert not kept.extras_commented_out
    assert ini(kept.text)["global"]["find-links"] == "/srv/wheels"


def test_pip_extras_commented_out_leave_only_bodega() -> None:
    existing = "[global]\nfind-links = /srv/wheels\nextra-index-url = http://a/simple/\n"
    written = pip_config(URL, existing, PIP_CONF, comment_out_extras=True)
    assert written.extras_commented_out
    assert ini(written.text)["global"] == {"index-url": URL}
    assert "# find-links = /srv/wheels\n" in written.text
    assert "# extra-index-url = http://a/simple/\n" in written.text


UV_EXTRAS = """\
extra-index-url = [
    "http://a/simple/",
]
find-links = ["/srv/wheels"]
native-tls = true

[pip]
find-links = ["/srv/more"]

[[index]]
name = "internal"
url = "http://internal/simple/"

[[index]]
name = "pinned-only"
url = "http://pinned/simple/"
explicit = true
"""


def test_uv_extras_are_reported_and_kept_unless_asked() -> None:
    kept = uv_config(URL, UV_EXTRAS, UV_TOML)
    assert kept.extras == (
        "extra-index-url = ['http://a/simple/']",
        "find-links = ['/srv/wheels']",
        "[pip] find-links = ['/srv/more']",
        "[[index]] url = http://internal/simple/",
    )
    assert kept.text.startswith(UV_EXTRAS)


def test_uv_extras_commented_out_leave_bodega_and_the_explicit_index() -> None:
    written = uv_config(URL, UV_EXTRAS, UV_TOML, comment_out_extras=True)
    assert written.extras_commented_out
    assert tomllib.loads(written.text) == {
        "native-tls": True,
        "pip": {},
        "index": [
            {"name": "pinned-only", "url": "http://pinned/simple/", "explicit": True},
            {"url": URL, "default": True},
        ],
    }
    assert '# url = "http://internal/simple/"\n' in written.text
