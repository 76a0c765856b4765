"""The sd_notify protocol on real Unix datagram sockets: a path and the abstract namespace."""

import logging
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bodega.web.notify import notify, notify_socket_address


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A service manager's end: a datagram socket bound to a file; yields it and its address."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        path = tmp_path / "notify"
        sock.bind(str(path))
        sock.settimeout(5)
        yield sock, str(path)


def test_sends_the_state_as_one_datagram_to_a_socket_file(
    listener: tuple[socket.socket, str],
) -> None:
    sock, address = listener
    assert notify("READY=1\nSTATUS=serving", {"NOTIFY_SOCKET": address}) is True
    assert sock.recv(4096) == b"READY=1\nSTATUS=serving"


def test_a_leading_at_sign_names_the_abstract_namespace() -> None:
    name = f"bodega-test-{secrets.token_hex(8)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert notify("STOPPING=1", {"NOTIFY_SOCKET": "@" + name}) is True
        assert sock.recv(4096) == b"STOPPING=1"


def test_without_a_service_manager_nothing_is_sent() -> None:
    assert notify("READY=1", {}) is False
    assert notify_socket_address({"NOTIFY_SOCKET": ""}) is None


def test_a_transport_bodega_does_not_speak_is_left_alone() -> None:
    assert notify_socket_address({"NOTIFY_SOCKET": "vsock:2:1234"}) is None


def test_an_unreachable_manager_is_logged_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = str(tmp_path / "nobody-listens")
    with caplog.at_level(logging.WARNING):
        assert notify("READY=1", {"NOTIFY_SOCKET": missing}) is False
    assert "cannot notify the service manager" in caplog.text
