"""Benchmark bodega side by side with devpi-server, proxpi and nginx, in one run.

    python bench/run.py [--rounds N] [--peers bodega,nginx,...] [--groups uv,net-uv,...]
                        [--latency-ms 30] [--core-metadata] [--ignore-range] [--smoke] [--tree DIR]

Run it with the repo's venv Python (`.venv/bin/python bench/run.py`): bodega runs from that venv.
It generates the upstream tree (or serves `--tree DIR`), starts nginx on 127.0.0.1 as the upstream
and the ceiling column (and, beside it, the networked upstream: a delay per request, no
core-metadata on its pages), installs the peers into venvs under bench/.work, measures every server
round by round (A B C A B C ...), prints the markdown table and writes it with a JSON file under
bench/results/. All traffic stays on 127.0.0.1 and every process started is stopped at the end.
"""

import argparse
import contextlib
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import debian
import installers
import nginx
import report
import tree
from figures import GROUPS, Bench, Figures, measure_round
from servers import Bodega, Devpi, NginxDirect, Proxpi, Server, SharedBodega, free_port
from venvs import PEER_PACKAGES, ensure_venv, installed_versions

if TYPE_CHECKING:
    from backends import SharedBackends

BENCH = Path(__file__).resolve().parent
WORK = BENCH / ".work"
RESULTS = BENCH / "results"
DEFAULT_PEERS = ("nginx", "bodega", "devpi", "devpi-web", "proxpi")
# bodega as a replica of a cluster runs: on a PostgreSQL and a SeaweedFS bucket that the run
# starts (only when one of these columns is asked for); -lc also keeps hits on local disk.
SHARED_PEERS = {"bodega-shared": "", "bodega-shared-lc": "1G"}
# bodega with --workers: one process per core of the 2-core machine.
WORKER_PEERS = {"bodega-workers": 2}
ALL_PEERS = (*DEFAULT_PEERS, *SHARED_PEERS, *WORKER_PEERS)
SMOKE_GROUPS = ("uv", "pip23", "compile", "serve", "net-pages", "net-uv", "net-pip", "replica")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3, smoke 1)")
    parser.add_argument(
        "--peers",
        default=",".join(DEFAULT_PEERS),
        help=f"comma-separated columns out of {','.join(ALL_PEERS)} (nginx is always measured;"
        f" default {','.join(DEFAULT_PEERS)})",
    )
    parser.add_argument(
        "--groups",
        default=None,
        help=f"comma-separated figure groups out of {','.join(GROUPS)} (default: all; smoke:"
        f" {','.join(SMOKE_GROUPS)}, which runs every code path once)",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=30.0,
        help="the networked upstream's delay per request (default 30; 0: none)",
    )
    parser.add_argument(
        "--core-metadata",
        action="store_true",
        help="the networked upstream's pages advertise PEP 658 metadata (default: none)",
    )
    parser.add_argument(
        "--ignore-range", action="store_true", help="the networked upstream ignores Range"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny tree, one round, short loads")
    parser.add_argument("--tree", type=Path, help="serve this PEP 503 tree (with manifest.json)")
    parser.add_argument("--load-seconds", type=float, default=None, help="each wrk run's length")
    parser.add_argument("--herd", type=int, default=None, help="clients in the herd (8-20)")
    parser.add_argument("--keep", action="store_true", help="keep the servers' data dirs")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="another bodega checkout (with its .venv), e.g. a worktree at an older commit:"
        " measured as the column bodega-base in the same run (bodega-workers-base beside"
        " bodega-workers), to show a change's effect",
    )
    return parser.parse_args()


def bodega_python() -> str:
    """The repo venv's Python: sys.executable when run from it."""
    repo_venv = BENCH.parent / ".venv" / "bin" / "python"
    if Path(sys.prefix).resolve() == (BENCH.parent / ".venv").resolve() or not repo_venv.exists():
        return sys.executable
    return str(repo_venv)


def bodega_is_runnable(python: str) -> bool:
    check = subprocess.run(
        [python, "-m", "bodega", "serve", "--help"], check=False, capture_output=True, timeout=60
    )
    return check.returncode == 0


def make_servers(
    peers: list[str],
    upstream_url: str,
    versions: dict[str, str],
    notes: list[str],
    *,
    baseline: Path | None = None,
    backends: "SharedBackends | None" = None,
) -> list[Server]:
    environment = installers.isolated_environment()
    servers: list[Server] = [NginxDirect(upstream_url, environment)]
    for peer in peers:
        if peer in SHARED_PEERS:
            if backends is not None and bodega_is_runnable(bodega_python()):
                servers.append(
                    SharedBodega(
                        upstream_url,
                        environment,
                        bodega_python(),
                        backends,
                        name=peer,
                        local_cache_size=SHARED_PEERS[peer],
                    )
                )
        elif peer in WORKER_PEERS:
            checkouts = [(BENCH.parent, bodega_python(), peer)]
            if baseline is not None:
                python = str(baseline / ".venv" / "bin" / "python")
                checkouts.append((baseline, python, f"{peer}-base"))
            for checkout, python, name in checkouts:
                servers += _bodega(
                    checkout,
                    python,
                    name=name,
                    upstream_url=upstream_url,
                    environment=environment,
                    notes=notes,
                    workers=WORKER_PEERS[peer],
                )
        elif peer == "bodega":
            servers += _bodega(
                BENCH.parent,
                bodega_python(),
                name="bodega",
                upstream_url=upstream_url,
                environment=environment,
                notes=notes,
            )
            if baseline is not None:
                python = str(baseline / ".venv" / "bin" / "python")
                servers += _bodega(
                    baseline,
                    python,
                    name="bodega-base",
                    upstream_url=upstream_url,
                    environment=environment,
                    notes=notes,
                )
        elif peer in PEER_PACKAGES:
            bin_dir = ensure_venv(WORK, peer)
            versions.update(installed_versions(bin_dir, PEER_PACKAGES[peer]))
            if peer == "proxpi":
                servers.append(Proxpi(upstream_url, environment, bin_dir))
            else:
                servers.append(Devpi(upstream_url, environment, bin_dir, peer))
    return servers


def _bodega(
    checkout: Path,
    python: str,
    *,
    name: str,
    upstream_url: str,
    environment: dict[str, str],
    notes: list[str],
    workers: int = 1,
) -> list[Server]:
    """A bodega column run from `checkout`'s source by `python` (that checkout's venv)."""
    if not bodega_is_runnable(python):
        notes.append(f"{name}: `python -m bodega serve --help` failed; column skipped")
        return []
    # The peers come from wheels, compiled to bytecode when installed; bodega runs from a
    # working tree, so compile it the same way before any start is timed.
    subprocess.run([python, "-m", "compileall", "-q", str(checkout / "src")], check=True)
    return [Bodega(upstream_url, environment, python, name=name, workers=workers)]


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return (
        f"{model}, {os.cpu_count()} cores, {memory_kib / 1024 / 1024:.0f} GiB, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def prepare_tree(arguments: argparse.Namespace) -> tuple[Path, tree.Manifest, str]:
    if arguments.tree is not None:
        root = arguments.tree.resolve()
        if not (root / tree.MANIFEST).exists():
            sys.exit(f"bench: {root} has no {tree.MANIFEST} (see bench/tree.py for its fields)")
        return root, tree.Manifest.load(root), f"user tree {root.name}"
    spec = tree.TreeSpec.smoke() if arguments.smoke else tree.TreeSpec.full()
    root = WORK / f"tree-{spec.key}"
    started = time.perf_counter()
    manifest = tree.generate(spec, root)
    print(f"bench: tree ready in {time.perf_counter() - started:.1f} s", flush=True)
    description = (
        f"{len(manifest.projects)} projects x {spec.versions} versions, "
        f"{spec.root_names:,} names in the root list, largest file {spec.large_size >> 20} MiB"
    )
    return root, manifest, description


def _stop_on_signal(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _chosen(option: str, text: str, known: Sequence[str]) -> list[str]:
    chosen = [item.strip() for item in text.split(",") if item.strip()]
    unknown = set(chosen) - set(known)
    if unknown:
        sys.exit(f"bench: unknown {option} {sorted(unknown)}; choose from {','.join(known)}")
    return chosen


def pip23_python(groups: list[str], versions: dict[str, str], notes: list[str]) -> str:
    """The Python of the pip 23.2.1 venv, made on first use; without it (no package index to
    install from) its groups are dropped from `groups` and the report says so."""
    versions["pip"] = installed_versions(Path(sys.executable).parent, ("pip",))["pip"]
    wanted = [group for group in groups if group.endswith("pip23")]
    if not wanted:
        return sys.executable
    try:
        bin_dir = ensure_venv(WORK, "pip23")
    except subprocess.CalledProcessError as error:
        notes.append(f"no venv with pip 23.2.1 ({error}): {', '.join(wanted)} skipped")
        groups[:] = [group for group in groups if group not in wanted]
        return sys.executable
    versions["pip (old)"] = installed_versions(bin_dir, ("pip",))["pip"]
    return str(bin_dir / "python")


def main() -> None:
    arguments = parse_arguments()
    signal.signal(signal.SIGTERM, _stop_on_signal)
    rounds = arguments.rounds or (1 if arguments.smoke else 3)
    if rounds < 1:
        sys.exit("bench: --rounds must be at least 1")
    peers = _chosen("peers", arguments.peers, ALL_PEERS)
    default_groups = SMOKE_GROUPS if arguments.smoke else GROUPS
    groups = _chosen("groups", arguments.groups or ",".join(default_groups), list(GROUPS))
    WORK.mkdir(parents=True, exist_ok=True)
    commands = debian.ensure_commands()
    tree_root, manifest, tree_description = prepare_tree(arguments)
    run_dir = WORK / "runs" / time.strftime("%Y%m%d-%H%M%S")
    network = nginx.Network(
        latency_ms=arguments.latency_ms,
        core_metadata=arguments.core_metadata or not manifest.has_plain_pages,
        ignores_range=arguments.ignore_range,
    )
    ports = (free_port(), free_port(), free_port())
    upstream = nginx.Nginx(commands["nginx"], tree_root, run_dir / "nginx", ports, network)
    notes: list[str] = []
    versions: dict[str, str] = {}
    with installers.client_scratch(WORK) as (client_scratch, client_dirs):
        bench = Bench(
            manifest=manifest,
            tree=tree_root,
            upstream=upstream,
            scratch=run_dir / "scratch",
            load_seconds=arguments.load_seconds or (1.0 if arguments.smoke else 10.0),
            herd_size=arguments.herd or 8,
            client_scratch=client_scratch,
            pip23_python=pip23_python(groups, versions, notes),
            errors=notes,
        )
        meta: dict[str, Any] = {
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine(),
            "rounds": 0,
            "tree": tree_description,
            "network": network.describe(),
            "client_dirs": client_dirs,
            "groups": groups,
            "smoke": arguments.smoke,
            "load_seconds": bench.load_seconds,
            "herd_size": bench.herd_size,
            "versions": versions,
            "errors": notes,
        }
        summary = run_rounds(
            bench,
            run_dir,
            meta,
            (peers, groups, rounds),
            keep=arguments.keep,
            baseline=arguments.baseline,
        )
    print()
    print(report.markdown(summary, meta))
    latest = RESULTS / f"{report.latest_stem(meta)}.md"
    print(f"bench: wrote {latest.relative_to(BENCH.parent)} and its .json")


def _shared_backends(
    peers: list[str], context: contextlib.ExitStack, notes: list[str]
) -> "SharedBackends | None":
    """PostgreSQL and SeaweedFS for the shared columns, stopped when `context` closes."""
    wanted = [peer for peer in peers if peer in SHARED_PEERS]
    if not wanted:
        return None
    import backends  # loads the test suite's starters (and pytest): only for these columns

    why = backends.missing()
    if why is not None:
        notes.append(f"{', '.join(wanted)} skipped: {why}")
        return None
    return context.enter_context(backends.shared_backends())


def run_rounds(
    bench: Bench,
    run_dir: Path,
    meta: dict[str, Any],
    plan: tuple[list[str], list[str], int],
    *,
    keep: bool,
    baseline: Path | None = None,
) -> dict[str, Any]:
    """Every round, every server, every group; the report written after each round."""
    peers, groups, rounds = plan
    upstream = bench.upstream
    results: list[dict[str, Figures]] = []
    summary: dict[str, Any] = {}
    upstream.start(installers.isolated_environment())
    context = contextlib.ExitStack()
    try:
        backends = _shared_backends(peers, context, bench.errors)
        servers = make_servers(
            peers,
            upstream.url,
            meta["versions"],
            bench.errors,
            baseline=baseline,
            backends=backends,
        )
        names = [server.name for server in servers]
        for number in range(1, rounds + 1):
            round_results: dict[str, Figures] = {}
            for server in servers:
                print(f"bench: round {number}/{rounds}: {server.name}", flush=True)
                round_results[server.name] = measure_round(
                    server, bench, run_dir / f"round-{number}", groups
                )
            results.append(round_results)
            # Written after every round, so an interrupted run still leaves its rounds behind.
            meta["rounds"] = number
            summary = report.summarize(results, names)
            report.write(RESULTS, summary, meta, results)
    finally:
        context.close()
        upstream.stop()
        if not keep:
            shutil.rmtree(run_dir, ignore_errors=True)
    return summary


if __name__ == "__main__":
    main()
