"""The warning `bodega serve` gives when it listens beyond loopback with no access rules."""

import pytest

from bodega.cli import open_network_warning


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7", "cache.example", "2001:db8::1"])
def test_beyond_loopback_with_no_rules(host: str) -> None:
    warning = open_network_warning(host, is_open_to_everyone=True)
    assert warning is not None
    assert warning.startswith(f"warning: listening on {host} with no access rules")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_says_nothing(host: str) -> None:
    assert open_network_warning(host, is_open_to_everyone=True) is None


def test_rules_say_nothing() -> None:
    assert open_network_warning("0.0.0.0", is_open_to_everyone=False) is None
