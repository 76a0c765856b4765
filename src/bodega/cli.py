"""The command line: parse, build Settings, call. Every serve option is also a BODEGA_*
environment variable and a key of the optional TOML config file."""

import asyncio
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from bodega import __version__
from bodega.config import SETTINGS, Setting, Settings, env_name, load_settings
from bodega.core.lockfiles import Pin, parse_pins
from bodega.core.names import normalize_project_name
from bodega.core.units import format_size, parse_duration
from bodega.errors import ConfigError, InvalidLockfile, InvalidName
from bodega.prefetch import Outcome, State
from bodega.prefetch import prefetch as prefetch_pins
from bodega.proxy.maintenance import CacheMaintenance, CacheSummary
from bodega.services import initialize, open_maintenance
from bodega.web.server import serve as serve_forever

_CONFIG_HELP = "A TOML file of settings, keys named as the long options. [env: BODEGA_CONFIG]"


def _setting_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for setting in reversed(SETTINGS):
        command = _option(setting)(command)
    return click.option(
        "--config", type=click.Path(path_type=Path), default=None, help=_CONFIG_HELP
    )(command)


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


T = TypeVar("T")


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
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


@cache.command("stats")
@_setting_options
def cache_stats(**options: Any) -> None:
    """How many files the cache holds, their size, and the oldest last use."""

    async def work(maintenance: CacheMaintenance, settings: Settings) -> tuple[CacheSummary, int]:
        return await maintenance.summary(), settings.max_cache_size

    summary, limit = _maintain(options, work)
    click.echo(f"files:  {summary.files} ({format_size(summary.total_bytes)})")
    click.echo(f"limit:  {format_size(limit) if limit else 'none (--max-cache-size)'}")
    click.echo(f"pages:  {summary.pages}")
    if summary.least_recent_access is not None:
        days = (time.time() - summary.least_recent_access) / 86400
        click.echo(f"least recently used file: last asked for {days:.1f} days ago")


@cache.command("prune")
@click.option(
    "--unused-for",
    required=True,
    help="Delete files nobody asked for in this long: 90d, 12h, 2w.",
)
@_setting_options
def cache_prune(unused_for: str, **options: Any) -> None:
    """Delete the files nobody asked for in a while."""
    try:
        seconds = parse_duration(unused_for)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--unused-for") from None
    count, size = _maintain(options, lambda maintenance, _: maintenance.prune(seconds))
    click.echo(f"pruned {count} files ({format_size(size)}) unused for {unused_for}")


@cache.command("verify")
@_setting_options
def cache_verify(**options: Any) -> None:
    """Re-hash every file; quarantine the ones that fail, reconcile the database.

    Exits 1 when anything had to be corrected."""

    def report_problem(line: str) -> None:
        click.echo(line, err=True)

    report = _maintain(options, lambda maintenance, _: maintenance.verify(report_problem))
    click.echo(
        f"checked {report.checked} files: {report.quarantined} quarantined,"
        f" {report.missing} missing, {report.adopted} adopted, {report.unknown} unknown"
    )
    if not report.is_clean:
        sys.exit(1)


@cache.command("forget")
@click.argument("project")
@_setting_options
def cache_forget(project: str, **options: Any) -> None:
    """Drop a project's stored page, so the next request fetches it in full.

    A running server holds pages in memory too: it fetches the page in full at its next
    revalidation (after --index-ttl, or at once for a no-cache request such as
    `pip --refresh-package`)."""
    try:
        name = normalize_project_name(project)
    except InvalidName as error:
        raise click.BadParameter(str(error), param_hint="PROJECT") from None
    if _maintain(options, lambda maintenance, _: maintenance.forget(name)):
        click.echo(f"forgot the page of {name}")
    else:
        click.echo(f"no stored page for {name}")


@main.command()
@click.argument(
    "lock_files",
    metavar="FILE...",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option(
    "--url",
    default="http://127.0.0.1:3141/",
    show_default=True,
    envvar="BODEGA_URL",
    help="The running bodega whose cache to fill. [env: BODEGA_URL]",
)
@click.option(
    "--jobs", default=8, show_default=True, type=click.IntRange(1, 64), help="Files at a time."
)
def prefetch(lock_files: tuple[Path, ...], url: str, jobs: int) -> None:
    """Fetch every file pinned by FILE... into a running bodega's cache.

    FILE is a requirements file (name==version, with or without --hash), uv.lock,
    poetry.lock, Pipfile.lock or pylock.toml. Exits 1 if any file could not be fetched."""
    pins, skipped = _read_pins(lock_files)
    for entry in skipped:
        click.echo(f"skipped {entry}", err=True)
    progress = _Progress()
    try:
        outcomes = asyncio.run(
            prefetch_pins(url, pins, jobs=jobs, on_total=progress.start, on_outcome=progress.add)
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


def _read_pins(paths: tuple[Path, ...]) -> tuple[list[Pin], list[str]]:
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

    def add(self, outcome: Outcome) -> None:
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
