"""The targets of issues 6 and 11, checked against this run.

Rates must beat the peers measured in the same run by a factor (10x devpi, 5x proxpi); where a
peer was not measured (`--peers`), its figure from the issue's reference run on a 2-core machine
stands in, and the table says so. Every other target is a ratio to nginx, paired by round, or an
absolute bound. Issue 11's targets (`verdicts_network`) are about the networked upstream, where
the nginx column is the client going direct to it, and about being ahead of every peer.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from figures import GROUPS, INSTALL_GROUPS, group_of

# The peers' figures in the issue's reference run (medians of 5 rounds on 2 cores).
REFERENCE = {
    "devpi": {"page_rps": 604.0, "root_rps": 446.0},
    "proxpi": {"page_rps": 1_231.0, "root_rps": 649.0},
}
FACTORS = {"devpi": 10.0, "proxpi": 5.0}


@dataclass(frozen=True)
class Verdict:
    target: str
    bodega: str  # what bodega did, as shown
    wanted: str  # the bound it had to meet
    met: bool | None  # None: not measured in this run
    why: str = ""  # when met is None: what the run lacked (a group, a peer, a failed figure)


@dataclass(frozen=True)
class Run:
    """A run's summary (report.summarize) with the groups it measured: a figure's absence is
    then told apart as a peer not run, a group not run, or a measurement that failed."""

    summary: dict[str, Any]
    groups: tuple[str, ...] = tuple(GROUPS)

    def entry(self, server: str, key: str) -> dict[str, Any] | None:
        entry: dict[str, Any] | None = self.summary.get(server, {}).get(key)
        return entry

    def median(self, server: str, key: str) -> float | None:
        entry = self.entry(server, key)
        return None if entry is None else float(entry["median"])

    def ratio(self, key: str) -> float | None:
        """bodega's median ratio to nginx, paired by round."""
        entry = self.entry("bodega", key)
        if entry is None or entry.get("ratio_to_nginx") is None:
            return None
        return float(entry["ratio_to_nginx"])

    def why(self, key: str, servers: Iterable[str] = ("bodega", "nginx")) -> str:
        """Why `key` is missing for the first of `servers` that lacks it."""
        group = group_of(key)
        for server in servers:
            if self.entry(server, key) is not None:
                continue
            if server not in self.summary:
                return f"not run: peer {server}"
            if group is not None and group not in self.groups:
                return f"not run: group {group}"
            failed = f"{server}'s {group}" if group else server
            return f"not measured: {failed} failed (see Errors)"
        return ""


def _rate(run: Run, key: str, label: str) -> Verdict:
    """bodega's rate against 10x devpi and 5x proxpi (this run's, else the reference's)."""
    bodega = run.median("bodega", key)
    bounds, met, checked = [], True, 0
    for peer, factor in FACTORS.items():
        peer_value = run.median(peer, key)
        source = "this run"
        if peer_value is None:
            peer_value = REFERENCE[peer].get(key)
            source = "reference"
        if peer_value is None:
            bounds.append(f"{factor:g}× {peer}: no figure, in this run or the reference")
            continue
        needed = factor * peer_value
        bounds.append(f"≥ {needed:,.0f} ({factor:g}× {peer}, {source})")
        met = met and bodega is not None and bodega >= needed
        checked += 1
    wanted = "; ".join(bounds)
    if bodega is None:
        return Verdict(label, "—", wanted, None, run.why(key, ["bodega"]))
    if not checked:
        why = "; ".join(run.why(key, [peer]) for peer in FACTORS)
        return Verdict(label, f"{bodega:,.1f}", wanted, None, why)
    return Verdict(label, f"{bodega:,.1f}", wanted, met)


def _bound(
    label: str,
    value: float | None,
    wanted: str,
    test: Callable[[float], bool],
    unit: str = "",
    *,
    why: str = "",
) -> Verdict:
    if value is None:
        return Verdict(label, "—", wanted, None, why)
    return Verdict(label, f"{value:,.2f}{unit}", wanted, test(value))


def _times(run: Run, label: str, key: str, bound: float) -> Verdict:
    """bodega's time on `key` at most `bound` times nginx's (or direct's, on a `net:` row)."""
    wanted = f"≤ {bound:.2f}×"
    return _bound(label, run.ratio(key), wanted, lambda v: v <= bound, "×", why=run.why(key))


def _median_bound(
    run: Run, label: str, key: str, wanted: str, test: Callable[[float], bool]
) -> Verdict:
    """An absolute bound on bodega's own median."""
    why = run.why(key, ["bodega"])
    return _bound(label, run.median("bodega", key), wanted, test, why=why)


def verdicts(run: Run) -> list[Verdict]:
    return [
        _rate(run, "page_rps", "one page (req/s)"),
        _rate(run, "mix_rps", "mix of pages + root list (req/s)"),
        _rate(run, "root_rps", "root list (req/s)"),
        _times(run, "uv install, cold (× nginx)", "uv_cold_s", 1.10),
        _times(run, "uv install, warm (× nginx)", "uv_warm_s", 1.05),
        _times(run, "first hit of a project page (× nginx)", "first_page_s", 3.0),
        _median_bound(run, "start-up to ready (s)", "startup_s", "≤ 0.5 s", lambda v: v <= 0.5),
        _bound(
            "large cached file (× nginx MiB/s)",
            run.ratio("file_mib_s"),
            "≥ 0.95×",
            lambda v: v >= 0.95,
            "×",
            why=run.why("file_mib_s"),
        ),
        _median_bound(
            run, "herd: upstream fetches", "herd_upstream_fetches", "exactly 1", lambda v: v == 1
        ),
        _times(run, "herd: wall time (× nginx)", "herd_s", 1.2),
        _median_bound(run, "peak RSS (MiB)", "peak_rss_mib", "≤ 80", lambda v: v <= 80),
    ]


def markdown(summary: dict[str, Any], groups: Iterable[str] = tuple(GROUPS)) -> str:
    return _table(verdicts(Run(summary, tuple(groups))))


PEERS = ("devpi", "devpi-web", "proxpi")
STATES = ("cold", "warm")


def install_rows(run: Run) -> list[tuple[str, str]]:
    """(row, key) of every install row the run measured: cold and warm of each install group,
    loopback and networked; bodega must be ahead of every peer on each."""
    return [
        (f"{group} {state}", f"{GROUPS[group].keys[0]}{state}_s")
        for group in INSTALL_GROUPS
        if group in run.groups
        for state in STATES
    ]


def _page_over_direct(run: Run) -> Verdict:
    key = "net_page_p50_ms"
    bodega, direct = run.median("bodega", key), run.median("nginx", key)
    over = None if bodega is None or direct is None else bodega - direct
    return _bound(
        "net: cold project page p50, over direct (ms)",
        over,
        "≤ +10 ms",
        lambda v: v <= 10,
        why=run.why(key),
    )


def _behind(run: Run, key: str) -> tuple[list[str], int]:
    """The peers faster than bodega on `key`, and how many peers it was compared with."""
    bodega = run.median("bodega", key)
    values = {peer: run.median(peer, key) for peer in PEERS}
    measured = {peer: value for peer, value in values.items() if value is not None}
    if bodega is None:
        return [], 0
    return [peer for peer, value in measured.items() if value < bodega], len(measured)


def _ahead_of_peers(run: Run) -> Verdict:
    """Counted per install row: a row is ahead when bodega beats every peer measured on it."""
    label = "ahead of every peer on every install row"
    rows, behind = 0, []
    for row, key in install_rows(run):
        slower_than, compared = _behind(run, key)
        if not compared:
            continue
        rows += 1
        if slower_than:
            behind.append(f"{row} ({', '.join(slower_than)})")
    absent = [peer for peer in PEERS if peer not in run.summary]
    wanted = "faster than each peer measured"
    if not rows:
        if not install_rows(run):
            why = "not run: no install group"
        elif len(absent) == len(PEERS):
            why = f"not run: peers {', '.join(PEERS)}"
        else:
            why = "not measured: no install row with bodega and a peer (see Errors)"
        return Verdict(label, "—", wanted, None, why)
    if absent:
        wanted += f" (not run: {', '.join(absent)})"
    shown = f"ahead on {rows - len(behind)} of {rows} rows"
    if behind:
        shown += "; behind on " + ", ".join(behind)
    return Verdict(label, shown, wanted, not behind)


def _refetches(run: Run) -> Verdict:
    # What bodega pulls from upstream for a cold install against what the client pulls going
    # direct: a file downloaded twice (an upstream ignoring Range: `--ignore-range`) shows here.
    key = "net_uv_cold_upstream_mib"
    bodega, direct = run.median("bodega", key), run.median("nginx", key)
    ratio = None if bodega is None or not direct else bodega / direct
    return _bound(
        "net: upstream MiB of a cold uv install (× direct)",
        ratio,
        "≤ 1.10× (one fetch per file)",
        lambda v: v <= 1.10,
        "×",
        why=run.why(key) or "not measured: nothing went direct to upstream",
    )


def verdicts_network(run: Run) -> list[Verdict]:
    return [
        _page_over_direct(run),
        _times(run, "net: uv pip compile, cold (× direct)", "net_compile_cold_s", 1.25),
        _times(run, "net: uv pip install, cold (× direct)", "net_uv_cold_s", 1.25),
        _times(run, "uv pip compile, cold (× nginx)", "compile_cold_s", 1.2),
        _times(run, "uv pip install, cold (× nginx)", "uv_cold_s", 1.2),
        _times(run, "pip install, cold (× nginx)", "pip_cold_s", 1.05),
        _times(run, "net: pip install, cold (× direct)", "net_pip_cold_s", 1.15),
        _times(run, "net: pip 23.2.1 install, cold (× direct)", "net_pip23_cold_s", 1.15),
        _times(run, "uv pip install, warm (× nginx)", "uv_warm_s", 1.05),
        _times(run, "pip 23.2.1 install, warm (× nginx)", "pip23_warm_s", 1.03),
        _median_bound(
            run,
            "pip 23.2.1 warm: upstream page fetches",
            "pip23_warm_upstream_pages",
            "0",
            lambda v: v == 0,
        ),
        _median_bound(
            run,
            "net: pip 23.2.1 warm: page fetches",
            "net_pip23_warm_upstream_pages",
            "0",
            lambda v: v == 0,
        ),
        _ahead_of_peers(run),
        _refetches(run),
    ]


def _met(verdict: Verdict) -> str:
    if verdict.met is None:
        return verdict.why or "not measured"
    return "yes" if verdict.met else "**no**"


def _table(rows: list[Verdict]) -> str:
    lines = ["| target | bodega | wanted | met |", "|---|---|---|---|"]
    for verdict in rows:
        lines.append(
            f"| {verdict.target} | {verdict.bodega} | {verdict.wanted} | {_met(verdict)} |"
        )
    return "\n".join(lines) + "\n"


def markdown_network(summary: dict[str, Any], groups: Iterable[str] = tuple(GROUPS)) -> str:
    return _table(verdicts_network(Run(summary, tuple(groups))))
