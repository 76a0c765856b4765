"""The `read` and `upload` keys of the config file's index tables."""

from pathlib import Path

import pytest

from bodega.config import load_settings
from bodega.core.access import ANYONE, IndexAccess
from bodega.errors import ConfigError

UPSTREAM = "http://127.0.0.1:9/simple/"  # never contacted
TABLES = f"""
[indexes."root/pypi"]
type = "mirror"
upstream = "{UPSTREAM}"

[indexes."acme/mirror"]
type = "mirror"
upstream = "{UPSTREAM}"
read = ["alice"]

[indexes."acme/all"]
type = "virtual"
bases = ["acme/mirror", "root/pypi"]
upload = ["bob"]
"""


def test_every_kind_of_index_takes_access_keys(tmp_path: Path) -> None:
    config = tmp_path / "bodega.toml"
    config.write_text(TABLES)
    settings = load_settings({}, {}, config)
    assert settings.access("acme/mirror") == IndexAccess("acme/mirror", read=("alice",))
    assert settings.access("acme/all") == IndexAccess("acme/all", upload=("bob",))
    assert settings.access("root/pypi") == IndexAccess("root/pypi", read=(ANYONE,))
    assert [rule.index for rule in settings.access_table] == ["acme/mirror", "acme/all"]


def test_without_index_tables_everything_is_open() -> None:
    settings = load_settings({"upstream": UPSTREAM}, {})
    assert settings.access_table == ()
    assert settings.access("root/pypi").is_open


def test_mistakes_are_reported_with_the_others(tmp_path: Path) -> None:
    config = tmp_path / "bodega.toml"
    config.write_text(TABLES.replace('read = ["alice"]', 'read = "alice"\ncolour = 1'))
    with pytest.raises(ConfigError) as raised:
        load_settings({}, {}, config)
    assert str(raised.value).splitlines() == [
        f"{config}: [indexes.\"acme/mirror\"] read: 'alice' is not a list of account names",
        f"{config}: [indexes.\"acme/mirror\"] unknown key 'colour' for a mirror index (known:"
        " type, upstream, index_ttl, revalidate_after, upstream_timeout, download_deadline,"
        " offline, min_release_age, allow, deny, files_without_upload_time, serve_removed,"
        " read, upload)",
    ]
