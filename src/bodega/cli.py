"""The command line: parse, build Settings, call. Every serve option is also a BODEGA_*
environment variable and a key of the optional TOML config file."""

import asyncio
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bodega import __version__
from bodega.clients import CLIENTS, check_index_url, commands, config_files, config_paths
from bodega.config import SETTINGS, Setting, Settings, env_name, load_settings
from bodega.errors import ConfigError
from bodega.services import initialize
from bodega.systemd import next_steps, render_unit, unit_path
from bodega.userfiles import backup_path, restore_original, write_keeping_original
from bodega.web.server import serve as serve_forever

_CONFIG_HELP = "A TOML file of settings, keys named as the long options. [env: BODEGA_CONFIG]"


def _setting_options(
    command: Callable[..., Any], exclude: tuple[str, ...] = ()
) -> Callable[..., Any]:
    for setting in reversed(SETTINGS):
        if setting.name not in exclude:
            command = _option(setting)(command)
    return click.option(
        "--config", type=click.Path(path_type=Path), default=None, help=_CONFIG_HELP
    )(command)


def _setting_options_except(
    *names: str,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return lambda command: _setting_options(command, exclude=names)


def _option(setting: Setting) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    flag = "--" + setting.name.replace("_", "-")
    help_text = f"{setting.help} [env: {env_name(setting.name)}]"
    if setting.kind is bool:
        # --offline/--no-offline, so the command line can also turn off what env or file set.
        return click.option(f"{flag}/--no-{flag[2:]}", setting.name, default=None, help=help_text)
    # Values stay strings here: config.load_settings converts and validates every source alike.
    return click.option(flag, setting.name, type=str, default=None, help=help_text)


def _settings(options: dict[str, Any]) -> Settings:
    config_file = options.pop("config") or os.environ.get("BODEGA_CONFIG")
    return load_settings(options, os.environ, Path(config_file) if config_file else None)


@click.group()
@click.version_option(__version__, prog_name="bodega")
def main() -> None:
    """bodega: a caching proxy for the Python Package Index."""


@main.command()
@_setting_options
def serve(**options: Any) -> None:
    """Run the caching proxy (creates the data dir on first start)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        settings = _settings(options)

        def announce(url: str) -> None:
            click.echo(
                f"bodega {__version__} serving {settings.upstream} at {url}simple/"
                f" (data in {settings.data_dir})",
                err=True,
            )

        asyncio.run(serve_forever(settings, announce))
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


@main.command()
@_setting_options
def init(**options: Any) -> None:
    """Create the data dir and database without serving (for scripts and images)."""
    try:
        settings = _settings(options)
        asyncio.run(initialize(settings))
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"initialised {settings.data_dir}")


_CLIENT_LABELS = {
    "pip": "pip and pip-tools",
    "uv": "uv",
    "poetry": "Poetry, in each project",
    "pdm": "PDM",
    "pipenv": "Pipenv, in your shell's profile",
}


@main.command()
@click.option("--url", help="bodega's index URL. Default: from the host and port settings.")
@click.option(
    "--client",
    "clients",
    multiple=True,
    type=click.Choice(CLIENTS),
    help="Only this client (repeatable). Default: every one.",
)
@click.option("--write", "action", flag_value="write", help="Edit pip's and uv's config files.")
@click.option("--undo", "action", flag_value="undo", help="Put back what --write changed.")
def configure(url: str | None, clients: tuple[str, ...], action: str | None) -> None:
    """Point pip, pip-tools, uv, Poetry, PDM and Pipenv at bodega.

    Prints the settings by default. --write edits pip's and uv's user config files, keeping
    the originals beside them; --undo restores those.
    """
    chosen = clients or CLIENTS
    try:
        if action == "undo":
            _undo(chosen)
            return
        index_url = check_index_url(url) if url else _own_index_url()
        files = config_files(index_url, chosen)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    for file in files:
        where = _write(file.path, file.text) if action == "write" else str(file.path)
        click.echo(f"# {_CLIENT_LABELS[file.client]}: {where}")
        click.echo(file.added)
    for client, command in commands(index_url).items():
        if client in chosen:
            click.echo(f"# {_CLIENT_LABELS[client]}:\n{command}\n")
    if action is None and files:
        click.echo("# `bodega configure --write` edits these files, keeping the originals;")
        click.echo("# `bodega configure --undo` puts them back.")


def _write(path: Path, text: str) -> str:
    try:
        changed = write_keeping_original(path, text)
    except OSError as error:
        raise click.ClickException(f"cannot write {path}: {error}") from None
    done = f"{'wrote' if changed else 'unchanged:'} {path}"
    if backup_path(path).exists():
        done += f" (the original is kept as {backup_path(path).name})"
    return done


def _undo(clients: tuple[str, ...]) -> None:
    for path in config_paths(clients):
        try:
            restored = restore_original(path)
        except OSError as error:
            raise click.ClickException(f"cannot restore {path}: {error}") from None
        click.echo(f"{'restored' if restored else 'nothing to undo:'} {path}")


# A bodega listening on every address is reachable on loopback.
_LOOPBACK_FOR = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104


def _own_index_url() -> str:
    """This machine's bodega, as the settings (environment, config file) describe it."""
    config_file = os.environ.get("BODEGA_CONFIG")
    settings = load_settings({}, os.environ, Path(config_file) if config_file else None)
    host = _LOOPBACK_FOR.get(settings.host, settings.host)
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.port}/simple/"


@main.group()
def service() -> None:
    """Run bodega as a systemd service."""


@service.command("install")
@click.option("--user", "is_user", is_flag=True, help="A unit for your own service manager.")
@click.option("--print", "only_print", is_flag=True, help="Print the unit; write nothing.")
@_setting_options_except("data_dir")
def service_install(is_user: bool, only_print: bool, **options: Any) -> None:
    """Write a systemd unit that runs `bodega serve` with these options.

    The cache lives in the unit's state directory (/var/lib/bodega, or ~/.local/state/bodega
    with --user), so --data-dir is not offered here.
    """
    config_file = options.pop("config")
    arguments = _serve_arguments(options)
    try:
        # Checked now, with no environment, as the service will read them; not at 3 a.m.
        settings = load_settings(options, {}, config_file)
        if config_file is not None:
            arguments += ["--config", str(config_file.resolve())]
        text = render_unit(
            sys.executable, arguments, user=is_user, stop_timeout=settings.shutdown_timeout
        )
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    if only_print:
        click.echo(text, nl=False)
        return
    path = unit_path(user=is_user)
    try:
        changed = write_keeping_original(path, text)
    except OSError as error:
        raise click.ClickException(f"cannot write {path}: {error.strerror or error}") from None
    click.echo(f"{'wrote' if changed else 'unchanged:'} {path}")
    click.echo("start it now and at every boot:")
    for step in next_steps(user=is_user):
        click.echo(f"  {step}")


def _serve_arguments(options: dict[str, Any]) -> list[str]:
    """The options given on this command line, as `bodega serve` arguments."""
    arguments: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            arguments.append(flag if value else f"--no-{flag[2:]}")
        elif value is not None:
            arguments += [flag, str(value)]
    return arguments


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
