"""The command line: parse, build Settings, call. Every serve option is also a BODEGA_*
environment variable and a key of the optional TOML config file.

`prefetch` imports its lock-file parsers when it runs: `bodega serve` never needs them, and
start-up time is what a restarted service costs its clients."""

import asyncio
import dataclasses
import ipaddress
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from bodega import __version__, logs
from bodega.clients import (
    CLIENTS,
    ConfigFile,
    check_base_url,
    commands,
    config_files,
    config_paths,
    extra_variables,
    index_url,
)
from bodega.config import SETTINGS, Setting, Settings, env_name, load_settings
from bodega.core.access import Action, parse_token
from bodega.core.indexes import HostedIndex, MirrorIndex, check_index_name
from bodega.core.names import normalize_project_name
from bodega.core.policy import Exemption, parse_target
from bodega.core.units import format_size, parse_duration
from bodega.core.urls import shown_url
from bodega.errors import (
    AccountError,
    ConfigError,
    InvalidLockfile,
    InvalidName,
    InvalidUpload,
    NotFound,
    StorageError,
)
from bodega.proxy.accounts import Accounts
from bodega.proxy.hosted import STATUSES, HostedProjects
from bodega.proxy.maintenance import CacheMaintenance, CacheSummary
from bodega.proxy.migration import MigrationReport
from bodega.proxy.policy import Policies
from bodega.services import (
    Services,
    initialize,
    open_accounts,
    open_hosted_admin,
    open_maintenance,
    open_migration,
    open_policies,
)
from bodega.storage.metadata import NewExemption
from bodega.systemd import (
    closed_folder_problem,
    closed_to_others,
    next_steps,
    render_unit,
    unit_path,
)
from bodega.userfiles import backup_path, restore_original, write_keeping_original
from bodega.web.server import serve as serve_forever
from bodega.web.workers import serve_as_worker, supervise, worker_role

if TYPE_CHECKING:
    from bodega.core.lockfiles import Pin
    from bodega.prefetch import Outcome

_CONFIG_HELP = "A TOML file of settings, keys named as the long options. [env: BODEGA_CONFIG]"


def _setting_options(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--config and the options of the named settings: each command offers only those it
    uses (the file and the environment may still hold the others; they are ignored)."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for setting in reversed(SETTINGS):
            if setting.name in names:
                command = _option(setting)(command)
        return click.option(
            "--config",
            type=click.Path(path_type=Path),
            default=None,
            metavar="FILE",
            help=_CONFIG_HELP,
        )(command)

    return decorate


_SERVE_SETTINGS = tuple(setting.name for setting in SETTINGS)


class _SettingType(click.ParamType[str]):
    """Names a setting's value in --help (SECONDS, SIZE, PORT, ...). The value stays the
    string given: config.load_settings converts and checks it, as it does the environment's
    and the file's, so every source gets the same one-line error."""

    def __init__(self, setting: Setting) -> None:
        self.name = setting.metavar.lower()

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return value


def _option(setting: Setting) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    flag = "--" + setting.name.replace("_", "-")
    # The default is in the help text, not click's: click's default would win over the
    # environment and the config file, which load_settings puts before it.
    shown_default = setting.default_help or _default_text(setting.default())
    help_text = f"{setting.help} [default: {shown_default}] [env: {env_name(setting.name)}]"
    if setting.kind is bool:
        # --offline/--no-offline, so the command line can also turn off what env or file set.
        return click.option(f"{flag}/--no-{flag[2:]}", setting.name, default=None, help=help_text)
    return click.option(
        flag, setting.name, type=_SettingType(setting), default=None, help=help_text
    )


def _default_text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _settings(options: dict[str, Any]) -> Settings:
    config_file = options.pop("config") or os.environ.get("BODEGA_CONFIG")
    return load_settings(options, os.environ, Path(config_file) if config_file else None)


@click.group()
@click.version_option(__version__, prog_name="bodega")
def main() -> None:
    """bodega: a caching proxy for the Python Package Index."""


@main.command()
@_setting_options(*_SERVE_SETTINGS)
def serve(**options: Any) -> None:
    """Run the caching proxy (creates the data dir on first start)."""
    role = worker_role(os.environ)  # one of --workers, started by the supervisor below
    logs.configure(role.number if role is not None else 0)
    try:
        settings = _settings(options)

        def announce(url: str, first_admin_token: str | None, is_open_to_everyone: bool) -> None:
            default = settings.index(settings.default_index)
            upstream = shown_url(default.upstream) if isinstance(default, MirrorIndex) else ""
            source = (
                f"offline (never contacting {upstream}), only what is cached,"
                if isinstance(default, MirrorIndex) and default.offline
                else upstream or f"{default.name} (virtual)"
            )
            others = [spec.name for spec in settings.indexes if spec.name != default.name]
            also = f"; also {', '.join(others)} under {url}<user>/<index>/" if others else ""
            metadata = f", metadata in {shown_url(settings.database)}" if settings.database else ""
            click.echo(
                f"bodega {__version__} serving {source} at {url}simple/"
                f" (data in {settings.data_dir}{metadata}){also}",
                err=True,
            )
            _announce_access(settings, first_admin_token, is_open_to_everyone)

        def serving_alone(url: str, services: Services) -> None:
            announce(url, services.first_admin_token, services.access.is_open_to_everyone)

        if role is not None:
            asyncio.run(serve_as_worker(dataclasses.replace(settings, port=role.port), role))
        elif settings.workers > 1:
            asyncio.run(supervise(settings, announce))
        else:
            asyncio.run(serve_forever(settings, serving_alone))
    except (ConfigError, StorageError) as error:
        raise click.ClickException(str(error)) from None


def _announce_access(
    settings: Settings, first_admin_token: str | None, is_open_to_everyone: bool
) -> None:
    """The first admin token, shown this once; a warning when the network reaches a
    bodega that lets anyone do anything it allows."""
    if first_admin_token is not None:
        # Straight to the terminal that started bodega, never through logging.
        click.echo(
            "bodega made an admin account, as this server takes uploads and had none."
            " Its token is shown this once (make others with `bodega token create`):",
            err=True,
        )
        click.echo(f"  {first_admin_token}", err=True)
    warning = open_network_warning(settings.host, is_open_to_everyone)
    if warning:
        click.echo(warning, err=True)


def open_network_warning(host: str, is_open_to_everyone: bool) -> str | None:
    """What to say when bodega listens beyond this machine with no access rules at all."""
    if _is_loopback(host) or not is_open_to_everyone:
        return None
    return (
        f"warning: listening on {host} with no access rules: anyone who can reach this"
        " port reads every index. Give indexes `read = [...]` rules (README: Serve your"
        " team) and put TLS in front."
    )


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


@main.command()
@_setting_options("data_dir", "database")
def init(**options: Any) -> None:
    """Create the data dir and database without serving (for scripts and images)."""
    try:
        settings = _settings(options)
        asyncio.run(initialize(settings))
    except (ConfigError, StorageError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"initialised {settings.data_dir}")


_CLIENT_LABELS = {
    "pip": "pip and pip-tools",
    "uv": "uv",
    "poetry": "Poetry, in each project",
    "pdm": "PDM",
    "pipenv": "Pipenv, in your shell's profile",
}


_URL_HELP = (
    "bodega's base URL, e.g. http://cache.example:3141/ (an index URL ending in simple/ is"
    " read as the base above it). Default: this machine's bodega, from the host and port"
    " settings. [env: BODEGA_URL]"
)


def _url_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--url, which means the same for every command: the base URL of a running bodega."""
    return click.option("--url", envvar="BODEGA_URL", metavar="URL", help=_URL_HELP)(command)


@main.command()
@_url_option
@click.option(
    "--client",
    "clients",
    multiple=True,
    type=click.Choice(CLIENTS),
    help="Only this client (repeatable). Default: every one.",
)
@click.option(
    "--index",
    metavar="USER/INDEX",
    help="Point the clients at this index (e.g. team/all). Default: the default index.",
)
@click.option("--write", "action", flag_value="write", help="Edit pip's and uv's config files.")
@click.option("--undo", "action", flag_value="undo", help="Put back what --write changed.")
@click.option(
    "--comment-out-extras",
    is_flag=True,
    help="With --write: comment out the extra indexes and find-links of those files, through"
    " which pip and uv would still go around bodega (--undo restores them).",
)
def configure(
    url: str | None,
    clients: tuple[str, ...],
    index: str | None,
    action: str | None,
    comment_out_extras: bool,
) -> None:
    """Point pip, pip-tools, uv, Poetry, PDM and Pipenv at bodega.

    Prints the settings by default. --write edits pip's and uv's user config files, keeping
    the originals beside them; --undo restores those.
    """
    chosen = clients or CLIENTS
    if comment_out_extras and action != "write":
        raise click.UsageError("--comment-out-extras goes with --write")
    try:
        if action == "undo":
            _undo(chosen)
            return
        if index is not None:
            index = check_index_name(index)
        simple = index_url(_base_url(url), index)
        files = config_files(simple, chosen, comment_out_extras=comment_out_extras)
    except (ConfigError, InvalidName) as error:
        raise click.ClickException(str(error)) from None
    for file in files:
        where = _write(file.path, file.text) if action == "write" else str(file.path)
        click.echo(f"# {_CLIENT_LABELS[file.client]}: {where}")
        click.echo(file.added)
    for client, command in commands(simple).items():
        if client in chosen:
            click.echo(f"# {_CLIENT_LABELS[client]}:\n{command}\n")
    if action is None and files:
        click.echo("# `bodega configure --write` edits these files, keeping the originals;")
        click.echo("# `bodega configure --undo` puts them back.")
    _report_extras(files, extra_variables(chosen))


def _report_extras(files: list[ConfigFile], variables: list[str]) -> None:
    """On stderr: what still sends pip or uv around bodega, or what was commented out."""
    for file in files:
        for extra in file.extras:
            if file.extras_commented_out:
                click.echo(f"commented out in {file.path}: {extra}", err=True)
            else:
                click.echo(
                    f"warning: {file.path} has {extra}: {file.client} searches it besides"
                    " bodega, so installs can go around the cache",
                    err=True,
                )
    if any(file.extras and not file.extras_commented_out for file in files):
        click.echo(
            "  `bodega configure --write --comment-out-extras` comments these out;"
            " `bodega configure --undo` restores them",
            err=True,
        )
    for name in variables:
        click.echo(
            f"warning: the environment sets {name}, which sends installs around bodega;"
            f" unset it to go through bodega only",
            err=True,
        )


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


def _base_url(url: str | None) -> str:
    """--url as every command reads it; without one, this machine's bodega as the settings
    (environment, config file) describe it."""
    if url:
        return check_base_url(url)
    config_file = os.environ.get("BODEGA_CONFIG")
    settings = load_settings({}, os.environ, Path(config_file) if config_file else None)
    host = _LOOPBACK_FOR.get(settings.host, settings.host)
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.port}/"


@main.group()
def service() -> None:
    """Run bodega as a systemd service."""


@service.command("install")
@click.option("--user", "is_user", is_flag=True, help="A unit for your own service manager.")
@click.option("--print", "only_print", is_flag=True, help="Print the unit; write nothing.")
@_setting_options(*(name for name in _SERVE_SETTINGS if name != "data_dir"))
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
    closed = None if is_user else closed_to_others(_bodega_paths())
    if only_print:
        click.echo(text, nl=False)
        if closed is not None:
            click.echo(f"warning: {closed_folder_problem(sys.executable, closed)}", err=True)
        return
    if closed is not None:
        raise click.ClickException(closed_folder_problem(sys.executable, closed))
    path = unit_path(user=is_user)
    try:
        changed = write_keeping_original(path, text)
    except OSError as error:
        raise click.ClickException(f"cannot write {path}: {error.strerror or error}") from None
    click.echo(f"{'wrote' if changed else 'unchanged:'} {path}")
    click.echo("start it now and at every boot:")
    for step in next_steps(user=is_user):
        click.echo(f"  {step}")


def _bodega_paths() -> list[Path]:
    """What the service's user must reach: this Python, its environment, bodega's code."""
    return [Path(sys.executable), Path(sys.prefix), Path(__file__).parent]


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


T = TypeVar("T")


class _Duration(click.ParamType[str]):
    """A duration as people write one (90d, 12h); checked here, kept as written for reports."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            parse_duration(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)
        return str(value)


@main.group()
def cache() -> None:
    """Look at, prune, verify and correct the cache; works beside a running server."""


def _maintain(
    options: dict[str, Any], work: Callable[[CacheMaintenance, Settings], Awaitable[T]]
) -> T:
    async def run(settings: Settings) -> T:
        async with open_maintenance(settings) as maintenance:
            return await work(maintenance, settings)

    try:
        return asyncio.run(run(_settings(options)))
    except (ConfigError, StorageError) as error:
        raise click.ClickException(str(error)) from None


def _index_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--index", metavar="USER/INDEX", help=help_text)


def _known_index(index: str | None, settings: Settings) -> str | None:
    """The --index given, checked against the configured indexes."""
    if index is not None and index not in {spec.name for spec in settings.indexes}:
        known = ", ".join(spec.name for spec in settings.indexes)
        raise click.BadParameter(
            f"no index named {index} (configured: {known})", param_hint="--index"
        )
    return index


@cache.command("stats")
@_index_option("Count only this index's pages. Default: every index's.")
@_setting_options("data_dir", "database", "max_cache_size")
def cache_stats(index: str | None, **options: Any) -> None:
    """How many files the cache holds, their size, and the oldest last use.

    Files are distribution files and their core metadata (what --max-cache-size bounds);
    the root list's renderings are listed apart."""

    async def work(maintenance: CacheMaintenance, settings: Settings) -> tuple[CacheSummary, int]:
        _known_index(index, settings)
        return await maintenance.summary(), settings.max_cache_size

    summary, limit = _maintain(options, work)
    click.echo(f"files:  {summary.files} ({format_size(summary.total_bytes)})")
    click.echo(f"limit:  {format_size(limit) if limit else 'none (--max-cache-size)'}")
    pages = summary.pages if index is None else {index: summary.pages[index]}
    if len(pages) == 1:
        click.echo(f"pages:  {sum(pages.values())}")
    else:
        click.echo("pages:  " + ", ".join(f"{count} ({name})" for name, count in pages.items()))
    if summary.root_renderings:
        click.echo(
            f"root list: {summary.root_renderings} renderings"
            f" ({format_size(summary.root_bytes)}), not counted as files"
        )
    if summary.least_recent_access is not None:
        days = (time.time() - summary.least_recent_access) / 86400
        click.echo(f"least recently used file: last asked for {days:.1f} days ago")


@cache.command("prune")
@click.option(
    "--unused-for",
    required=True,
    type=_Duration(),
    help="Delete files nobody asked for in this long: 90d, 12h, 30m, 45s, 2w.",
)
@_setting_options("data_dir", "database")
def cache_prune(unused_for: str, **options: Any) -> None:
    """Delete the files nobody asked for in a while."""
    seconds = parse_duration(unused_for)
    count, size = _maintain(options, lambda maintenance, _: maintenance.prune(seconds))
    click.echo(f"pruned {count} files ({format_size(size)}) unused for {unused_for}")


@cache.command("verify")
@_setting_options("data_dir", "database")
def cache_verify(**options: Any) -> None:
    """Re-hash every file; quarantine the ones that fail, reconcile the database.

    Exits 1 when anything had to be corrected."""

    def report_problem(line: str) -> None:
        click.echo(line, err=True)

    report = _maintain(options, lambda maintenance, _: maintenance.verify(report_problem))
    root_list = (
        f" and {report.root_renderings} renderings of the root list"
        if report.root_renderings
        else ""
    )
    click.echo(
        f"checked {report.checked} files{root_list}: {report.quarantined} quarantined,"
        f" {report.missing} missing, {report.adopted} adopted, {report.unknown} unknown"
    )
    if not report.is_clean:
        sys.exit(1)


@cache.command("forget")
@click.argument("project")
@_index_option("The index whose page to drop. Default: the default index.")
@_setting_options("data_dir", "database")
def cache_forget(project: str, index: str | None, **options: Any) -> None:
    """Drop a project's stored page, so the next request fetches it in full.

    A running server holds pages in memory too: it fetches the page in full at its next
    revalidation (after --index-ttl, or at once for a no-cache request such as
    `pip --refresh-package`)."""
    try:
        name = normalize_project_name(project)
    except InvalidName as error:
        raise click.BadParameter(str(error), param_hint="PROJECT") from None

    async def work(maintenance: CacheMaintenance, settings: Settings) -> bool:
        return await maintenance.forget(
            name, _known_index(index, settings) or settings.default_index
        )

    if _maintain(options, work):
        click.echo(f"forgot the page of {name}")
    else:
        click.echo(f"no stored page for {name}")


# ------------------------------------------------------------------------------ migrate


@main.command()
@click.option(
    "--to-database",
    required=True,
    metavar="URL",
    help="The PostgreSQL to copy the metadata into (postgresql://user@host:5432/bodega);"
    " keep the password in PGPASSWORD or ~/.pgpass.",
)
@click.option(
    "--to-blob-store",
    required=True,
    metavar="URL",
    help="The object store to copy the files into (s3://BUCKET/PREFIX, reached with the"
    " standard AWS_* variables and files).",
)
@click.option(
    "--progress-every",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    metavar="N",
    help="Say how far it got every N items of a kind.",
)
@_setting_options("data_dir")
def migrate(to_database: str, to_blob_store: str, progress_every: int, **options: Any) -> None:
    """Copy the embedded cache of the data dir (its files and SQLite database) into
    PostgreSQL and an object store, for replicas to share.

    Every file is re-hashed on its way and copied only when it matches its sha256. What
    the target already holds is skipped: run it again after an interruption, or after
    the server served on, and it copies only what is missing. It only reads the data dir,
    so a server may keep serving it meanwhile. Exits 1 when anything failed."""

    def say(line: str) -> None:
        click.echo(f"migrate: {line}", err=True)

    async def run(settings: Settings) -> MigrationReport:
        async with open_migration(
            settings, to_database, to_blob_store, say=say, progress_every=progress_every
        ) as migration:
            return await migration.run()

    try:
        report = asyncio.run(run(_settings(options)))
    except (ConfigError, StorageError) as error:
        raise click.ClickException(str(error)) from None
    for kind, tally in report.tallies.items():
        click.echo(f"{kind}: {tally}")
    if not report.is_complete:
        click.echo(f"{len(report.failures)} failed (not copied):", err=True)
        for failure in report.failures:
            click.echo(f"  {failure}", err=True)
        sys.exit(1)


# ------------------------------------------------------------------------------ accounts


def _with_accounts(options: dict[str, Any], work: Callable[[Accounts], Awaitable[T]]) -> T:
    async def run(settings: Settings) -> T:
        async with open_accounts(settings) as accounts:
            return await work(accounts)

    try:
        return asyncio.run(run(_settings(options)))
    except (AccountError, ConfigError, StorageError) as error:
        raise click.ClickException(str(error)) from None


def _read_password() -> str:
    """Asked twice on a terminal; else one line of standard input (for scripts)."""
    if sys.stdin.isatty():
        password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        return password
    return sys.stdin.readline().rstrip("\r\n")


@main.group()
def user() -> None:
    """Accounts, which `read` and `upload` rules name; works beside a running server."""


@user.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="May read, upload and manage every index.")
@click.option("--no-password", is_flag=True, help="Logs in with API tokens only.")
@_setting_options("data_dir")
def user_add(name: str, admin: bool, no_password: bool, **options: Any) -> None:
    """Add an account. Its password is asked on a terminal, else read as one line of
    standard input."""
    password = None if no_password else _read_password()
    _with_accounts(options, lambda accounts: accounts.add_user(name, password, is_admin=admin))
    click.echo(f"added {'the admin ' if admin else ''}account {name}")


@user.command("password")
@click.argument("name")
@_setting_options("data_dir")
def user_password(name: str, **options: Any) -> None:
    """Change an account's password (asked as for `user add`). A running server may
    accept the old one for up to 30 seconds."""
    password = _read_password()
    _with_accounts(options, lambda accounts: accounts.set_password(name, password))
    click.echo(f"changed the password of {name}")


@user.command("remove")
@click.argument("name")
@_setting_options("data_dir")
def user_remove(name: str, **options: Any) -> None:
    """Remove an account and revoke its tokens."""
    _with_accounts(options, lambda accounts: accounts.remove_user(name))
    click.echo(f"removed account {name} and its tokens")


@user.command("list")
@_setting_options("data_dir")
def user_list(**options: Any) -> None:
    """Every account: name, admin or not, and whether it has a password."""
    for found in _with_accounts(options, lambda accounts: accounts.users()):
        kind = "admin" if found.is_admin else "user"
        login = "password and tokens" if found.password_hash else "tokens only"
        click.echo(f"{found.name}\t{kind}\t{login}")


@main.group()
def token() -> None:
    """API tokens: made, listed and revoked; works beside a running server."""


class _Expiry(_Duration):
    """A duration, or `never`."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if str(value).strip().lower() == "never":
            return "never"
        return super().convert(value, param, ctx)


@token.command("create")
@click.option("--user", "user_name", required=True, metavar="NAME", help="The account.")
@click.option(
    "--index",
    "indexes",
    required=True,
    multiple=True,
    metavar="USER/INDEX",
    help="An index the token is good for (repeatable); * for every index.",
)
@click.option(
    "--scope",
    type=click.Choice([action.label for action in Action]),
    default="read",
    show_default=True,
    help="What it may do: read; upload (and read); admin (and upload: admin accounts only).",
)
@click.option(
    "--expires",
    type=_Expiry(),
    default="90d",
    show_default=True,
    help="How long it works: 90d, 12h, 2w; or never.",
)
@click.option(
    "--project",
    "projects",
    multiple=True,
    metavar="NAME",
    help="Upload and manage only this project (repeatable). Default: every project.",
)
@click.option("--description", default="", help="What it is for (shown by `token list`).")
@_setting_options("data_dir")
def token_create(
    *,
    user_name: str,
    indexes: tuple[str, ...],
    scope: str,
    expires: str,
    projects: tuple[str, ...],
    description: str,
    **options: Any,
) -> None:
    """Make an API token and print it, alone, on standard output: it is never shown again.

    Clients send it as HTTP Basic credentials with the user name __token__."""
    expires_in = None if expires == "never" else parse_duration(expires)
    made = _with_accounts(
        options,
        lambda accounts: accounts.create_token(
            user_name,
            indexes,
            Action.named(scope),
            expires_in=expires_in,
            description=description,
            projects=projects,
        ),
    )
    click.echo(made)


@token.command("list")
@click.option("--user", "user_name", metavar="NAME", help="Only this account's tokens.")
@_setting_options("data_dir")
def token_list(user_name: str | None, **options: Any) -> None:
    """Every token (never its secret): id, account, scope, indexes, expiry, projects if
    limited to some, description."""
    now = time.time()
    for found in _with_accounts(options, lambda accounts: accounts.tokens(user_name)):
        if found.expires_at is None:
            expiry = "never expires"
        elif found.expires_at <= now:
            expiry = "expired"
        else:
            expiry = "expires " + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(found.expires_at))
        click.echo(
            "\t".join(
                (found.token_id, found.user, found.scope, ",".join(found.indexes), expiry)
                + ((f"projects {','.join(found.projects)}",) if found.projects else ())
                + ((found.description,) if found.description else ())
            )
        )


@token.command("revoke")
@click.argument("token_id", metavar="TOKEN_ID")
@_setting_options("data_dir")
def token_revoke(token_id: str, **options: Any) -> None:
    """Revoke a token, by its id (as `token list` shows it) or whole. A running server may
    accept it for up to 30 seconds more."""
    parts = parse_token(token_id)
    wanted = parts.token_id if parts else token_id
    _with_accounts(options, lambda accounts: accounts.revoke_token(wanted))
    click.echo(f"revoked token {wanted}")


@main.command()
@click.argument(
    "lock_files",
    metavar="FILE...",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@_url_option
@click.option(
    "--jobs", default=8, show_default=True, type=click.IntRange(1, 64), help="Files at a time."
)
def prefetch(lock_files: tuple[Path, ...], url: str | None, jobs: int) -> None:
    """Fetch every file pinned by FILE... into a running bodega's cache.

    FILE is a requirements file (name==version, with or without --hash), uv.lock,
    poetry.lock, Pipfile.lock or pylock.toml. Exits 1 if any file could not be fetched."""
    from bodega.prefetch import State
    from bodega.prefetch import prefetch as prefetch_pins

    pins, skipped = _read_pins(lock_files)
    for entry in skipped:
        click.echo(f"skipped {entry}", err=True)
    progress = _Progress()
    try:
        outcomes = asyncio.run(
            prefetch_pins(
                _base_url(url), pins, jobs=jobs, on_total=progress.start, on_outcome=progress.add
            )
        )
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    progress.finish()
    counts = {state: [o for o in outcomes if o.state is state] for state in State}
    fetched_bytes = sum(o.size for o in counts[State.FETCHED])
    for failure in counts[State.FAILED]:
        click.echo(f"failed: {failure.name}: {failure.error}", err=True)
    click.echo(
        f"{len(pins)} pins, {len(outcomes)} files: {len(counts[State.CACHED])} already cached,"
        f" {len(counts[State.FETCHED])} fetched ({format_size(fetched_bytes)}),"
        f" {len(counts[State.FAILED])} failed"
    )
    if counts[State.FAILED]:
        sys.exit(1)


def _read_pins(paths: tuple[Path, ...]) -> tuple[list["Pin"], list[str]]:
    from bodega.core.lockfiles import parse_pins

    pins: list[Pin] = []
    skipped: list[str] = []
    pending, seen = list(paths), set()
    while pending:
        path = pending.pop(0)
        if path.resolve() in seen:
            continue  # a file included twice, or an include loop
        seen.add(path.resolve())
        try:
            found = parse_pins(str(path), path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            raise click.ClickException(f"cannot read {path}: {error}") from None
        except InvalidLockfile as error:
            raise click.ClickException(str(error)) from None
        pins += [pin for pin in found.pins if pin not in pins]
        skipped += found.skipped
        pending += [path.parent / include for include in found.includes]
    return pins, skipped


class _Progress:
    """Progress on stderr: one line rewritten in place on a terminal, a line per file in a
    log (where carriage returns would pile up)."""

    def __init__(self) -> None:
        self._is_terminal = sys.stderr.isatty()
        self._total = 0
        self._done = 0

    def start(self, total: int) -> None:
        self._total = total

    def add(self, outcome: "Outcome") -> None:
        self._done += 1
        width = len(str(self._total))
        line = f"[{self._done:>{width}}/{self._total}] {outcome.state}: {outcome.name}"
        if self._is_terminal:
            click.echo(f"\r\033[K{line}", err=True, nl=False)
        else:
            click.echo(line, err=True)

    def finish(self) -> None:
        if self._is_terminal and self._done:
            click.echo("", err=True)


# ------------------------------------------------------------------------------ policy


@main.command("allow")
@click.argument("target", required=False, metavar="PROJECT[==VERSION]")
@_index_option("The index whose policy to lift. Default: the default index.")
@click.option("--reason", help="Why: recorded with the exemption and in the audit trail.")
@click.option(
    "--until", "lasts", type=_Duration(), help="How long it holds: 2d, 12h. Default: until revoked."
)
@click.option("--list", "listing", is_flag=True, help="List every exemption, and its state.")
@click.option("--revoke", type=int, metavar="ID", help="Revoke the exemption ID (see --list).")
@_setting_options("data_dir", "database")
def allow(
    target: str | None,
    *,
    index: str | None,
    reason: str | None,
    lasts: str | None,
    listing: bool,
    revoke: int | None,
    **options: Any,
) -> None:
    """Break-glass: show a project, or one version of it, that the index's policy hides
    (too young for min_release_age, or denied), at once and without a restart.

    Works beside a running server, which sees the change within a second."""
    if sum((target is not None, listing, revoke is not None)) != 1:
        raise click.UsageError("give PROJECT[==VERSION], --list or --revoke ID")

    async def work(policies: Policies, settings: Settings) -> None:
        if listing:
            _list_exemptions(await policies.exemptions(), index)
        elif revoke is not None:
            revoked = await policies.revoke_exemption(revoke)
            if revoked is None:
                raise click.ClickException(f"no exemption {revoke}")
            click.echo(f"revoked {revoked.id}: {revoked.target} on {revoked.index}")
        else:
            made = await policies.add_exemption(
                _new_exemption(target or "", index, reason, lasts, settings)
            )
            until = "until revoked" if made.until is None else f"until {_when(made.until)}"
            click.echo(f"allowed {made.target} on {made.index} {until} (id {made.id})")

    _with_policies(options, work)


def _new_exemption(
    target: str, index: str | None, reason: str | None, lasts: str | None, settings: Settings
) -> NewExemption:
    try:
        project, version = parse_target(target)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="PROJECT[==VERSION]") from None
    if not reason or not reason.strip():
        raise click.UsageError("--reason is required: say why, for whoever reads the audit")
    now = time.time()
    return NewExemption(
        _known_index(index, settings) or settings.default_index,
        project,
        version,
        reason.strip(),
        _who(),
        now,
        None if lasts is None else now + parse_duration(lasts),
    )


def _with_policies(
    options: dict[str, Any], work: Callable[[Policies, Settings], Awaitable[None]]
) -> None:
    async def run(settings: Settings) -> None:
        async with open_policies(settings) as policies:
            await work(policies, settings)

    try:
        asyncio.run(run(_settings(options)))
    except (ConfigError, StorageError) as error:
        raise click.ClickException(str(error)) from None


def _list_exemptions(exemptions: list[Exemption], index: str | None) -> None:
    now = time.time()
    shown = [e for e in exemptions if index is None or e.index == index]
    if not shown:
        click.echo("no exemptions")
    for exemption in shown:
        if exemption.revoked_at is not None:
            state = f"revoked {_when(exemption.revoked_at)}"
        elif not exemption.is_active(now):
            state = "expired"
        else:
            state = (
                "until revoked" if exemption.until is None else f"until {_when(exemption.until)}"
            )
        click.echo(
            f"{exemption.id}\t{exemption.index}\t{exemption.target}\t{state}\t"
            f"by {exemption.created_by} {_when(exemption.created_at)}\t{exemption.reason}"
        )


def _who() -> str:
    """Who made an exemption, as the system knows the user running the command."""
    try:
        import getpass

        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container's)
        return f"uid {os.getuid()}"


def _when(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(moment))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


# ------------------------------------------------------------------ hosted indexes


def _hosted(
    options: dict[str, Any], index: str | None, work: Callable[[HostedProjects], Awaitable[T]]
) -> T:
    """Run `work` on a hosted index's projects (the only hosted index when --index is not
    given), beside a running server."""

    async def run(settings: Settings) -> T:
        name = _hosted_index(index, settings)
        async with open_hosted_admin(settings, name) as hosted:
            return await work(hosted)

    try:
        return asyncio.run(run(_settings(options)))
    except (ConfigError, StorageError, InvalidName) as error:
        raise click.ClickException(str(error)) from None
    except NotFound as error:
        raise click.ClickException(str(error)) from None
    except InvalidUpload as error:
        raise click.ClickException(str(error)) from None


def _hosted_index(index: str | None, settings: Settings) -> str:
    hosted = [spec.name for spec in settings.indexes if isinstance(spec, HostedIndex)]
    if index is not None:
        if index not in hosted:
            known = ", ".join(hosted) or "none"
            raise click.BadParameter(
                f"{index} is no hosted index (hosted: {known})", param_hint="--index"
            )
        return index
    if len(hosted) != 1:
        known = ", ".join(hosted) or "none is configured"
        raise click.BadParameter(f"say which hosted index ({known})", param_hint="--index")
    return hosted[0]


def _hosted_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = _setting_options("data_dir")(command)
    return click.option(
        "--index",
        metavar="USER/INDEX",
        help="The hosted index. Default: the only one configured.",
    )(command)


_FILE_OPTION = click.option("--file", "filename", help="Only this file of the release.")


@main.command()
@click.argument("project")
@click.argument("version", required=False)
@_FILE_OPTION
@click.option("--reason", default="", help="Why, as installers show it (PEP 592).")
@_hosted_options
def yank(
    project: str,
    version: str | None,
    filename: str | None,
    reason: str,
    index: str | None,
    **options: Any,
) -> None:
    """Yank a hosted project's release (or one file, or every release): installers skip
    it unless it is pinned exactly."""
    count = _hosted(options, index, lambda h: h.yank(project, version, filename, reason))
    click.echo(f"yanked {count} files")


@main.command()
@click.argument("project")
@click.argument("version", required=False)
@_FILE_OPTION
@_hosted_options
def unyank(
    project: str, version: str | None, filename: str | None, index: str | None, **options: Any
) -> None:
    """Undo a yank."""
    count = _hosted(options, index, lambda h: h.yank(project, version, filename, None))
    click.echo(f"unyanked {count} files")


@main.command()
@click.argument("project")
@click.argument("version", required=False)
@_FILE_OPTION
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_hosted_options
def delete(
    project: str,
    version: str | None,
    filename: str | None,
    yes: bool,
    index: str | None,
    **options: Any,
) -> None:
    """Delete a hosted file, release or (with neither VERSION nor --file) the whole
    project. Its filenames can never be uploaded again."""
    what = filename or (f"{project} {version}" if version else f"the whole project {project}")
    if not yes:
        click.confirm(f"delete {what}?", abort=True)
    count = _hosted(options, index, lambda h: h.delete(project, version, filename))
    click.echo(f"deleted {count} files")


@main.command()
@click.argument("project")
@click.argument("status", type=click.Choice(["active", *STATUSES]))
@click.option("--reason", help="Why, shown with the status (PEP 792).")
@_hosted_options
def status(
    project: str, status: str, reason: str | None, index: str | None, **options: Any
) -> None:
    """Set a hosted project's PEP 792 status: quarantined serves no files, archived and
    quarantined take no uploads."""
    value = None if status == "active" else status
    _hosted(options, index, lambda h: h.set_status(project, value, reason))
    click.echo(f"{project} is {status}")


@main.command()
@click.argument("projects", nargs=-1)
@click.option("--release", is_flag=True, help="Release the names instead.")
@_hosted_options
def reserve(projects: tuple[str, ...], release: bool, index: str | None, **options: Any) -> None:
    """Reserve project names on a hosted index before any upload: a virtual index over it
    then never serves them from a mirror, and an upload may take a name a mirror has.
    With no names, list the reserved ones."""

    async def work(hosted: HostedProjects) -> set[str]:
        for project in projects:
            if release:
                await hosted.release(project)
            else:
                await hosted.reserve(project)
        return await hosted.reservations()

    for name in sorted(_hosted(options, index, work)):
        click.echo(name)
