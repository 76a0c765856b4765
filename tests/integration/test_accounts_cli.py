"""`bodega user` and `bodega token`, beside a running server and without one, and what
`bodega serve` says at start about access (the first admin token, the open network)."""

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.integration.test_cli import clean_environ
from tests.support.distributions import build_wheel
from tests.support.fake_index import FakeIndex
from tests.support.servers import BodegaProcess

TOKEN = re.compile(r"bodega_[A-Za-z0-9]{12}_[A-Za-z0-9_-]{43}")
PASSWORD = "correct horse battery staple"
SIX = build_wheel("six", "1.16")


def write_config(tmp_path: Path, upstream: str, rules: str = 'read = ["alice"]') -> Path:
    config = tmp_path / "bodega.toml"
    config.write_text(
        f'[indexes."root/pypi"]\ntype = "mirror"\nupstream = "{upstream}"\n\n'
        f'[indexes."acme/private"]\ntype = "mirror"\nupstream = "{upstream}"\n{rules}\n'
    )
    return config


def bodega(
    config: Path, data: Path, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    environ = clean_environ(BODEGA_CONFIG=str(config), BODEGA_DATA_DIR=str(data))
    result = subprocess.run(
        [sys.executable, "-m", "bodega", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
        input=stdin,
    )
    assert "Traceback" not in result.stderr
    return result


def test_accounts_and_tokens_beside_a_running_server(tmp_path: Path, fake_index: FakeIndex) -> None:
    fake_index.add("six", SIX)
    config, data = write_config(tmp_path, fake_index.simple_url), tmp_path / "data"
    server = BodegaProcess(["--config", str(config), "--data-dir", str(data)])
    try:
        page = f"{server.url}acme/private/+simple/six/"
        assert httpx.get(page, trust_env=False).status_code == 401

        added = bodega(config, data, "user", "add", "alice", stdin=PASSWORD + "\n")
        assert added.returncode == 0, added.stderr
        assert added.stdout == "added account alice\n"
        with_password = httpx.get(page, auth=("alice", PASSWORD), trust_env=False)
        assert with_password.status_code == 200

        made = bodega(
            config, data, "token", "create", "--user", "alice", "--index", "acme/private",
            "--expires", "1d", "--description", "laptop",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        assert TOKEN.fullmatch(made.stdout.strip())  # the token alone on stdout
        token = made.stdout.strip()
        assert httpx.get(page, auth=("__token__", token), trust_env=False).status_code == 200

        listed = bodega(config, data, "token", "list")
        (line,) = listed.stdout.splitlines()
        token_id = token.split("_")[1]
        assert line.startswith(f"{token_id}\talice\tread\tacme/private\texpires ")
        assert line.endswith("\tlaptop")
        secret = token.split("_", 2)[2]  # the secret may itself hold "_"
        assert secret not in listed.stdout  # never the secret

        scoped = bodega(
            config, data, "token", "create", "--user", "alice", "--index", "acme/private",
            "--scope", "read", "--project", "Acme_Lib", "--project", "acme-cli",
        )  # fmt: skip
        assert scoped.returncode == 0, scoped.stderr
        scoped_line = bodega(config, data, "token", "list").stdout.splitlines()[1]
        assert scoped_line.endswith("\tprojects acme-lib,acme-cli")
        bodega(config, data, "token", "revoke", scoped.stdout.strip())  # whole, not by id

        revoked = bodega(config, data, "token", "revoke", token_id)
        assert revoked.returncode == 0
        assert revoked.stdout == f"revoked token {token_id}\n"
        assert bodega(config, data, "token", "list").stdout == ""
    finally:
        server.stop()
    assert TOKEN.search("".join(server.log)) is None
    assert PASSWORD not in "".join(server.log)


def test_account_commands_refuse_clearly(tmp_path: Path) -> None:
    config, data = write_config(tmp_path, "http://127.0.0.1:9/simple/"), tmp_path / "data"
    assert bodega(config, data, "user", "add", "alice", "--no-password").returncode == 0
    again = bodega(config, data, "user", "add", "alice", stdin="pw\n")
    assert again.returncode == 1
    assert again.stderr == "Error: there is an account named alice already\n"
    empty = bodega(config, data, "user", "add", "bob", stdin="\n")
    assert empty.stderr == "Error: an empty password is no password\n"
    unknown = bodega(config, data, "token", "create", "--user", "alice", "--index", "x/y")
    assert unknown.stderr == "Error: no index named x/y (configured: acme/private, root/pypi)\n"
    admin = bodega(
        config, data, "token", "create", "--user", "alice", "--index", "*", "--scope", "admin"
    )
    assert admin.stderr.startswith("Error: alice is no admin account")
    expiry = bodega(config, data, "token", "create", "--user", "alice", "--index", "*",
                    "--expires", "soon")  # fmt: skip
    assert expiry.returncode == 2
    assert "is not a duration" in expiry.stderr
    assert bodega(config, data, "token", "revoke", "nope").stderr == (
        "Error: no token with the id nope\n"
    )
    listed = bodega(config, data, "user", "list")
    assert listed.stdout == "alice\tuser\ttokens only\n"
    assert bodega(config, data, "user", "remove", "alice").returncode == 0
    assert bodega(config, data, "user", "list").stdout == ""


def test_the_first_start_that_takes_uploads_prints_an_admin_token_once(
    tmp_path: Path, fake_index: FakeIndex
) -> None:
    fake_index.add("six", SIX)
    config = write_config(tmp_path, fake_index.simple_url, 'upload = ["alice"]')
    data = tmp_path / "data"
    first = BodegaProcess(["--config", str(config), "--data-dir", str(data)])
    first.stop()
    said = first.banner + "".join(first.log)
    (token,) = TOKEN.findall(said)
    assert "shown this once" in said
    again = BodegaProcess(["--config", str(config), "--data-dir", str(data)])
    try:
        page = f"{again.url}acme/private/+simple/six/"
        assert httpx.get(page, auth=("__token__", token), trust_env=False).status_code == 200
    finally:
        again.stop()
    assert TOKEN.search(again.banner + "".join(again.log)) is None
    listed = bodega(config, data, "token", "list")
    assert listed.stdout.split("\t")[1:4] == ["admin", "admin", "*"]


def test_listening_on_loopback_with_no_rules_says_nothing(
    tmp_path: Path, fake_index: FakeIndex
) -> None:
    local = BodegaProcess(
        ["--data-dir", str(tmp_path / "data"), "--upstream", fake_index.simple_url]
    )
    local.stop()
    assert "warning" not in local.banner + "".join(local.log)


def test_user_add_asks_twice_on_a_terminal_without_echo(tmp_path: Path) -> None:
    """The password prompt on a real terminal (a pseudo-terminal that is the command's
    controlling terminal, as a shell's is)."""
    config, data = write_config(tmp_path, "http://127.0.0.1:9/simple/"), tmp_path / "data"
    controller, terminal = pty.openpty()

    # A new session whose first terminal becomes its controlling one, then bodega.
    take_terminal = (
        "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0);"
        " os.execv(sys.executable, [sys.executable, '-m', 'bodega', *sys.argv[1:]])"
    )
    environ = clean_environ(BODEGA_CONFIG=str(config), BODEGA_DATA_DIR=str(data))
    process = subprocess.Popen(
        [sys.executable, "-c", take_terminal, "user", "add", "alice"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=environ,
        start_new_session=True,
    )
    os.close(terminal)
    said = b""
    for _ in range(2):  # the password, then its confirmation
        said += read_until(controller, b": ")
        os.write(controller, PASSWORD.encode() + b"\n")
    said += read_until(controller, b"added account alice")
    assert process.wait(timeout=60) == 0
    os.close(controller)
    text = said.decode()
    assert "Password: " in text
    assert "Repeat for confirmation: " in text
    assert PASSWORD not in text  # not echoed
    assert bodega(config, data, "user", "list").stdout == "alice\tuser\tpassword and tokens\n"


def read_until(fd: int, ending: bytes) -> bytes:
    """What the terminal shows until `ending` (or 30 s pass)."""
    seen = b""
    deadline = time.monotonic() + 30
    while ending not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                seen += os.read(fd, 1024)
            except OSError:  # the command ended and closed the terminal
                break
    return seen
