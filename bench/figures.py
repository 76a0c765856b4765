"""Each measurement, taken on one server in one round.

A round of one server is a run of groups, each on a freshly started server with an empty data
dir: installs with uv, pip and pip 23.2.1 (cold, then warm), `uv pip compile` of the wide tree,
serving (first hits, the herd, wrk loads, throughput), and the `net-` groups: the same clients
with the server in front of the networked upstream (latency, no core-metadata), where the nginx
column is the client going direct to that upstream. Upstream traffic is read from nginx's log.
"""

import contextlib
import http.client
import re
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import fetch
import installers
from loadgen import Load, run_wrk
from nginx import LogTotals, Nginx
from processes import cpu_seconds, group_members
from servers import Server
from tree import Manifest

MIB = 1024 * 1024
Figures = dict[str, float]
_HTML_ONLY = {"Accept": "text/html", "User-Agent": "bodega-bench"}
_HREF = re.compile(r"""href=["']([^"']+)["']""")


@dataclass
class Bench:
    """What every figure needs: the tree, the upstream, where to scratch, how long to load."""

    manifest: Manifest
    tree: Path
    upstream: Nginx
    scratch: Path
    load_seconds: float
    herd_size: int
    client_scratch: Path  # on a tmpfs when the machine allows (installers.client_scratch)
    pip23_python: str  # the Python of a venv with pip 23.2.1
    errors: list[str] = field(default_factory=list)


def _upstream(totals: LogTotals, prefix: str) -> Figures:
    return {
        f"{prefix}_upstream_requests": float(totals.requests),
        f"{prefix}_upstream_mib": totals.bytes / MIB,
    }


def install_figures(server: Server, bench: Bench, tool: str, prefix: str) -> Figures:
    """Cold run on the just-started server, then warm with a fresh client cache.

    `tool` is uv, pip (the bench venv's, current), pip23 or uv-compile (the wide tree).
    """
    requirement = bench.manifest.requirement
    if tool == "uv-compile":
        requirement = bench.manifest.compile_requirement
        if not requirement:
            return {}  # a --tree without a wide tree
    python = bench.pip23_python if tool == "pip23" else sys.executable
    figures: Figures = {}
    # Going direct there is no server cache to warm: one run stands for both (saves a minute
    # per round), and every proxy's warm row is paired with it.
    states = ("cold", "warm") if server.has_cache else ("cold",)
    for state in states:
        mark = bench.upstream.log.mark()
        seconds, installed = installers.install(
            tool.replace("pip23", "pip"),
            server.index_url,
            requirement,
            bench.client_scratch / "client",
            python,
        )
        figures[f"{prefix}_{state}_s"] = seconds
        figures[f"{prefix}_installed"] = float(installed)
        totals = bench.upstream.log.since(mark)
        figures.update(_upstream(totals, f"{prefix}_{state}"))
        figures[f"{prefix}_{state}_upstream_pages"] = float(totals.count_under("/simple/"))
    if not server.has_cache:
        figures |= {
            key.replace(f"{prefix}_cold", f"{prefix}_warm"): value
            for key, value in figures.items()
            if key.startswith(f"{prefix}_cold")
        }
    return figures


def cold_page_figures(server: Server, bench: Bench) -> Figures:
    """Every project page once, one after another, on a cold server: p50 and p90 latency."""
    latencies = [
        _timed_ok(f"{server.index_url}{project}/").seconds for project in bench.manifest.projects
    ]
    return {
        "net_page_p50_ms": _percentile(latencies, 50) * 1000,
        "net_page_p90_ms": _percentile(latencies, 90) * 1000,
    }


def file_url(server: Server, project: str, filename: str) -> str:
    """The URL a client would follow: taken from the server's own project page."""
    page_url = f"{server.index_url}{project}/"
    page = fetch.get(page_url, _HTML_ONLY)
    for href in _HREF.findall(page.body.decode(errors="replace")):
        url = urllib.parse.urljoin(page.url, str(href)).split("#", 1)[0]
        if urllib.parse.unquote(url.rsplit("/", 1)[-1]) == filename:
            return url
    raise RuntimeError(f"{server.name}: no link to {filename} on {page_url} ({page.status})")


def _timed_ok(url: str) -> fetch.Response:
    response = fetch.get(url)
    if response.status != 200:
        raise RuntimeError(f"GET {url} answered {response.status}")
    return response


def first_hit_figures(server: Server, bench: Bench) -> Figures:
    # A project page first: devpi reads the whole root list before its first page, and a warm
    # root list would hide that.
    mark = bench.upstream.log.mark()
    page = _timed_ok(f"{server.index_url}{bench.manifest.requirement}/")
    figures = {"first_page_s": page.seconds}
    figures.update(_upstream(bench.upstream.log.since(mark), "first_page"))
    project, filename = bench.manifest.large_file
    url = file_url(server, project, filename)
    figures["first_file_s"] = _timed_ok(url).seconds
    figures["first_root_s"] = _timed_ok(server.index_url).seconds
    return figures


def herd_figures(server: Server, bench: Bench) -> Figures:
    """`herd_size` clients ask for the same cold file at once: wall time and upstream fetches."""
    project, filename = bench.manifest.herd_file
    url = file_url(server, project, filename)
    expected = (bench.tree / "files" / project / filename).stat().st_size
    start_line = threading.Barrier(bench.herd_size)

    def one_client(_: int) -> int:
        start_line.wait(timeout=30)
        return len(fetch.get(url, {"User-Agent": "bodega-bench"}).body)

    mark = bench.upstream.log.mark()
    started = time.perf_counter()
    with ThreadPoolExecutor(bench.herd_size) as pool:
        sizes = list(pool.map(one_client, range(bench.herd_size)))
    seconds = time.perf_counter() - started
    totals = bench.upstream.log.since(mark)
    if any(size != expected for size in sizes):
        bench.errors.append(f"{server.name}: herd got sizes {sorted(set(sizes))} != {expected}")
    return {"herd_s": seconds, "herd_upstream_fetches": float(totals.count("/" + filename))}


def _probe_latencies(url: str, until: float) -> list[float]:
    latencies = []
    while time.perf_counter() < until:
        started = time.perf_counter()
        # A refused or timed-out probe counts with the time it took.
        with contextlib.suppress(OSError):
            fetch.get(url, {"User-Agent": "bodega-bench"}, timeout=60)
        latencies.append(time.perf_counter() - started)
        time.sleep(0.02)
    return latencies


def _load(prefix: str, load: Load) -> Figures:
    figures = {f"{prefix}_rps": load.requests_per_second}
    if load.requests:  # wrk reports a p99 of 0 when nothing completed
        figures[f"{prefix}_p99_ms"] = load.p99_ms
    return figures


def _percentile(values: list[float], percent: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, len(ordered) * percent // 100)]


def load_figures(server: Server, bench: Bench) -> Figures:
    index_path = urllib.parse.urlsplit(server.index_url).path
    pages = [f"{index_path}{project}/" for project in bench.manifest.projects]
    for page in pages:  # warm every page, so the loads measure serving from cache
        _timed_ok(server.base_url + page)
    scratch = bench.scratch / "wrk"
    seconds = bench.load_seconds
    figures: Figures = {}
    one_page = run_wrk(server.base_url, pages[:1], scratch, seconds=seconds, connections=16)
    figures |= _load("page", one_page)
    root = run_wrk(server.base_url, [index_path], scratch, seconds=seconds, connections=4)
    figures |= _load("root", root)

    # The mix, with a tiny request probed alongside: its latency shows a blocked event loop.
    probe: list[float] = []
    until = time.perf_counter() + seconds
    prober = threading.Thread(
        target=lambda: probe.extend(_probe_latencies(server.base_url + server.tiny_path, until))
    )
    prober.start()
    mix = run_wrk(server.base_url, [*pages, index_path], scratch, seconds=seconds, connections=16)
    prober.join()
    figures |= _load("mix", mix)
    if probe:
        figures["tiny_under_load_p99_ms"] = _percentile(probe, 99) * 1000
        figures["tiny_under_load_max_ms"] = max(probe) * 1000
    project, filename = bench.manifest.large_file
    path = urllib.parse.urlsplit(file_url(server, project, filename)).path
    large = run_wrk(server.base_url, [path], scratch, seconds=seconds, connections=2, headers={})
    figures["file_mib_s"] = large.mib_per_second
    for name, load in (("page", one_page), ("root", root), ("mix", mix), ("file", large)):
        if load.errors or load.bad_status:
            bench.errors.append(
                f"{server.name}: wrk {name}: {load.errors} errors, {load.bad_status} bad status"
            )
    return figures


def serving_figures(server: Server, bench: Bench) -> Figures:
    return (
        first_hit_figures(server, bench) | herd_figures(server, bench) | load_figures(server, bench)
    )


# Requests per CPU-second: a fixed number of requests, each kind on a warm cache, over
# keep-alive connections as installers use; the CPU is the server's process tree's (and the
# shared backends', apart) from /proc, so the clients and other load on the machine don't count.
CPU_CLIENTS = 8
CPU_REQUESTS = {"page": 4000, "file": 1000, "large": 24}


def _hammer(base_url: str, path: str, count: int, headers: dict[str, str]) -> tuple[int, int]:
    """`count` GETs of `path` from CPU_CLIENTS keep-alive connections: (answered 200, bytes)."""
    host = urllib.parse.urlsplit(base_url)

    def one_client(share: int) -> tuple[int, int]:
        connection = http.client.HTTPConnection(
            host.hostname or "127.0.0.1", host.port, timeout=120
        )
        ok = received = 0
        try:
            for _ in range(share):
                connection.request("GET", path, headers=headers)
                answer = connection.getresponse()
                body = answer.read()
                ok += answer.status == 200
                received += len(body)
        finally:
            connection.close()
        return ok, received

    shares = [count // CPU_CLIENTS + (i < count % CPU_CLIENTS) for i in range(CPU_CLIENTS)]
    with ThreadPoolExecutor(CPU_CLIENTS) as pool:
        results = list(pool.map(one_client, shares))
    return sum(ok for ok, _ in results), sum(size for _, size in results)


def _smallest_wheel(bench: Bench) -> tuple[str, str]:
    """(project, filename) of the tree's smallest wheel: what most of an install's files are."""
    wheels = sorted(
        (path.stat().st_size, project, path.name)
        for project in bench.manifest.projects
        for path in (bench.tree / "files" / project).iterdir()
        if path.name.endswith(".whl")
    )
    _, project, filename = wheels[0]
    return project, filename


def cpu_figures(server: Server, bench: Bench) -> Figures:
    """Requests per CPU-second of one server process (one replica), by kind: a project page
    (PEP 691 JSON, gzip), a small cached wheel, the large cached file (MiB per CPU-second);
    for a server on shared backends, the CPU PostgreSQL + the object store spent meanwhile, as
    a share of the server's (their background work included: a floor, not noise-free)."""
    if server.process is None:
        return {}  # nginx direct: no process of ours to watch
    session = server.process.popen.pid
    project, large = bench.manifest.large_file
    index_path = urllib.parse.urlsplit(server.index_url).path
    paths = {
        "page": f"{index_path}{project}/",
        "file": urllib.parse.urlsplit(file_url(server, *_smallest_wheel(bench))).path,
        "large": urllib.parse.urlsplit(file_url(server, project, large)).path,
    }
    figures: Figures = {}
    for kind, path in paths.items():
        headers = fetch.PIP_HEADERS if kind == "page" else {"User-Agent": "bodega-bench"}
        for _ in range(2):  # cached, then (with --local-cache-size) copied to the local disk
            _timed_ok(server.base_url + path)
        count = CPU_REQUESTS[kind]
        before = cpu_seconds(group_members(session)), server.backend_cpu_seconds()
        ok, received = _hammer(server.base_url, path, count, headers)
        after = cpu_seconds(group_members(session)), server.backend_cpu_seconds()
        if ok != count:
            bench.errors.append(f"{server.name}: {kind} per CPU-second: {count - ok} not 200")
        work = received / MIB if kind == "large" else float(ok)
        unit = "mib" if kind == "large" else "requests"
        spent = after[0] - before[0]
        if spent > 0:
            figures[f"cpu_{kind}_{unit}_per_s"] = work / spent
        if before[1] is not None and after[1] is not None and spent > 0:
            # Relative to the replica's own: what one replica's load asks of the shared ones.
            figures[f"cpu_{kind}_backend_share"] = (after[1] - before[1]) / spent
    return figures


@dataclass(frozen=True)
class Group:
    measure: Callable[[Server, Bench], Figures]
    networked: bool = False  # in front of the networked upstream instead of loopback nginx
    # How the keys of its figures begin: the report names the group a missing figure needs.
    keys: tuple[str, ...] = ()
    install: bool = False  # a client run cold, then warm: `{prefix}_cold_s`, `{prefix}_warm_s`


def _installs(tool: str, prefix: str, *, networked: bool = False) -> Group:
    return Group(
        lambda server, bench: install_figures(server, bench, tool, prefix),
        networked,
        keys=(f"{prefix}_",),
        install=True,
    )


GROUPS: dict[str, Group] = {
    "uv": _installs("uv", "uv"),
    "pip": _installs("pip", "pip"),
    "pip23": _installs("pip23", "pip23"),
    "compile": _installs("uv-compile", "compile"),
    "serve": Group(
        serving_figures,
        keys=("startup_", "first_", "page_", "mix_", "root_", "file_", "herd_", "tiny_"),
    ),
    "replica": Group(cpu_figures, keys=("cpu_",)),
    "net-pages": Group(cold_page_figures, networked=True, keys=("net_page_",)),
    "net-uv": _installs("uv", "net_uv", networked=True),
    "net-pip": _installs("pip", "net_pip", networked=True),
    "net-pip23": _installs("pip23", "net_pip23", networked=True),
    "net-compile": _installs("uv-compile", "net_compile", networked=True),
}

INSTALL_GROUPS = tuple(name for name, group in GROUPS.items() if group.install)


def group_of(key: str) -> str | None:
    """The group whose run measures the figure `key`; None for one every group adds (peak RSS)."""
    return next((name for name, group in GROUPS.items() if key.startswith(group.keys)), None)


def measure_round(
    server: Server, bench: Bench, round_dir: Path, groups: list[str] | None = None
) -> Figures:
    """The groups on `server`, each on a fresh start; a failing group is logged and skipped."""
    figures: Figures = {}
    peak_rss = 0
    for group in groups or list(GROUPS):
        measure = GROUPS[group].measure
        group_started = time.perf_counter()
        upstream = bench.upstream
        server.point_at(upstream.network_url if GROUPS[group].networked else upstream.url)
        try:
            startup = server.start(round_dir / server.name / group)
        except Exception as error:
            bench.errors.append(f"{server.name}: start for {group} failed: {error}")
            continue
        try:
            if group == "serve" and server.process is not None:
                figures["startup_s"] = startup
            figures |= measure(server, bench)
        except Exception as error:
            log = server.process.log_tail(10) if server.process is not None else ""
            bench.errors.append(f"{server.name}: {group} failed: {error}\n{log}".rstrip())
        finally:
            server.stop()
            peak_rss = max(peak_rss, server.peak_rss or 0)
        print(f"bench:   {group} {time.perf_counter() - group_started:.0f} s", flush=True)
    if peak_rss:
        figures["peak_rss_mib"] = peak_rss / MIB
    return figures
