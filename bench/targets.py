"""The targets of issues 6 and 11, checked against this run.

Rates must beat the peers measured in the same run by a factor (10x devpi, 5x proxpi); where a
peer was not measured (`--peers`), its figure from the issue's reference run on a 2-core machine
stands in, and the table says so. Every other target is a ratio to nginx, paired by round, or an
absolute bound. Issue 11's targets (`verdicts_network`) are about the networked upstream, where
the nginx column is the client going direct to it, and about being ahead of every peer.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


def _entry(summary: dict[str, Any], server: str, key: str) -> dict[str, Any] | None:
    entry: dict[str, Any] | None = summary.get(server, {}).get(key)
    return entry


def _median(summary: dict[str, Any], server: str, key: str) -> float | None:
    entry = _entry(summary, server, key)
    return None if entry is None else float(entry["median"])


def _ratio(summary: dict[str, Any], key: str) -> float | None:
    entry = _entry(summary, "bodega", key)
    if entry is None or entry.get("ratio_to_nginx") is None:
        return None
    return float(entry["ratio_to_nginx"])


def _rate(summary: dict[str, Any], key: str, label: str) -> Verdict:
    """bodega's rate against 10x devpi and 5x proxpi (this run's, else the reference's)."""
    bodega = _median(summary, "bodega", key)
    bounds, met = [], True
    for peer, factor in FACTORS.items():
        peer_value = _median(summary, peer, key)
        source = "this run"
        if peer_value is None:
            peer_value = REFERENCE[peer].get(key)
            source = "reference"
        if peer_value is None:
            continue
        needed = factor * peer_value
        bounds.append(f"≥ {needed:,.0f} ({factor:g}× {peer}, {source})")
        met = met and bodega is not None and bodega >= needed
    shown = "—" if bodega is None else f"{bodega:,.1f}"
    return Verdict(label, shown, "; ".join(bounds), None if bodega is None else met)


def _bound(
    label: str, value: float | None, wanted: str, test: Callable[[float], bool], unit: str = ""
) -> Verdict:
    shown = "—" if value is None else f"{value:,.2f}{unit}"
    return Verdict(label, shown, wanted, None if value is None else test(value))


def verdicts(summary: dict[str, Any]) -> list[Verdict]:
    herd_fetches = _median(summary, "bodega", "herd_upstream_fetches")
    return [
        _rate(summary, "page_rps", "one page (req/s)"),
        _rate(summary, "mix_rps", "mix of pages + root list (req/s)"),
        _rate(summary, "root_rps", "root list (req/s)"),
        _bound(
            "uv install, cold (× nginx)",
            _ratio(summary, "uv_cold_s"),
            "≤ 1.10×",
            lambda v: v <= 1.10,
            "×",
        ),
        _bound(
            "uv install, warm (× nginx)",
            _ratio(summary, "uv_warm_s"),
            "≤ 1.05×",
            lambda v: v <= 1.05,
            "×",
        ),
        _bound(
            "first hit of a project page (× nginx)",
            _ratio(summary, "first_page_s"),
            "≤ 3×",
            lambda v: v <= 3.0,
            "×",
        ),
        _bound(
            "start-up to ready (s)",
            _median(summary, "bodega", "startup_s"),
            "≤ 0.5 s",
            lambda v: v <= 0.5,
        ),
        _bound(
            "large cached file (× nginx MiB/s)",
            _ratio(summary, "file_mib_s"),
            "≥ 0.95×",
            lambda v: v >= 0.95,
            "×",
        ),
        _bound("herd: upstream fetches", herd_fetches, "exactly 1", lambda v: v == 1),
        _bound(
            "herd: wall time (× nginx)", _ratio(summary, "herd_s"), "≤ 1.2×", lambda v: v <= 1.2
        ),
        _bound(
            "peak RSS (MiB)",
            _median(summary, "bodega", "peak_rss_mib"),
            "≤ 80",
            lambda v: v <= 80,
        ),
    ]


def markdown(summary: dict[str, Any]) -> str:
    return _table(verdicts(summary))


# Every install row, loopback and networked: bodega must be ahead of every peer on each.
INSTALL_ROWS = tuple(
    f"{prefix}{tool}_{state}_s"
    for prefix in ("", "net_")
    for tool in ("uv", "pip", "pip23", "compile")
    for state in ("cold", "warm")
)
PEERS = ("devpi", "devpi-web", "proxpi")


def _times(label: str, key: str, bound: float, summary: dict[str, Any]) -> Verdict:
    return _bound(label, _ratio(summary, key), f"≤ {bound:.2f}×", lambda v: v <= bound, "×")


def _page_over_direct(summary: dict[str, Any]) -> Verdict:
    bodega = _median(summary, "bodega", "net_page_p50_ms")
    direct = _median(summary, "nginx", "net_page_p50_ms")
    over = None if bodega is None or direct is None else bodega - direct
    return _bound(
        "net: cold project page p50, over direct (ms)", over, "≤ +10 ms", lambda v: v <= 10
    )


def _ahead_of_peers(summary: dict[str, Any]) -> Verdict:
    behind, compared = [], 0
    for key in INSTALL_ROWS:
        bodega = _median(summary, "bodega", key)
        for peer in PEERS:
            peer_value = _median(summary, peer, key)
            if bodega is None or peer_value is None:
                continue
            compared += 1
            if bodega > peer_value:
                behind.append(f"{key} ({peer})")
    shown = "behind on " + ", ".join(behind) if behind else f"ahead in {compared} of {compared}"
    return Verdict(
        "ahead of every peer on every install row",
        shown,
        "faster than each peer measured",
        None if compared == 0 else not behind,
    )


def _refetches(summary: dict[str, Any]) -> Verdict:
    # What bodega pulls from upstream for a cold install against what the client pulls going
    # direct: a file downloaded twice (an upstream ignoring Range: `--ignore-range`) shows here.
    bodega = _median(summary, "bodega", "net_uv_cold_upstream_mib")
    direct = _median(summary, "nginx", "net_uv_cold_upstream_mib")
    ratio = None if bodega is None or not direct else bodega / direct
    return _bound(
        "net: upstream MiB of a cold uv install (× direct)",
        ratio,
        "≤ 1.10× (one fetch per file)",
        lambda v: v <= 1.10,
        "×",
    )


def verdicts_network(summary: dict[str, Any]) -> list[Verdict]:
    pip23_pages = _median(summary, "bodega", "pip23_warm_upstream_pages")
    net_pip23_pages = _median(summary, "bodega", "net_pip23_warm_upstream_pages")
    return [
        _page_over_direct(summary),
        _times("net: uv pip compile, cold (× direct)", "net_compile_cold_s", 1.25, summary),
        _times("net: uv pip install, cold (× direct)", "net_uv_cold_s", 1.25, summary),
        _times("uv pip compile, cold (× nginx)", "compile_cold_s", 1.2, summary),
        _times("uv pip install, cold (× nginx)", "uv_cold_s", 1.2, summary),
        _times("pip install, cold (× nginx)", "pip_cold_s", 1.05, summary),
        _times("net: pip install, cold (× direct)", "net_pip_cold_s", 1.15, summary),
        _times("net: pip 23.2.1 install, cold (× direct)", "net_pip23_cold_s", 1.15, summary),
        _times("uv pip install, warm (× nginx)", "uv_warm_s", 1.05, summary),
        _times("pip 23.2.1 install, warm (× nginx)", "pip23_warm_s", 1.03, summary),
        _bound("pip 23.2.1 warm: upstream page fetches", pip23_pages, "0", lambda v: v == 0),
        _bound("net: pip 23.2.1 warm: page fetches", net_pip23_pages, "0", lambda v: v == 0),
        _ahead_of_peers(summary),
        _refetches(summary),
    ]


def _table(rows: list[Verdict]) -> str:
    lines = ["| target | bodega | wanted | met |", "|---|---|---|---|"]
    for verdict in rows:
        met = {True: "yes", False: "**no**", None: "—"}[verdict.met]
        lines.append(f"| {verdict.target} | {verdict.bodega} | {verdict.wanted} | {met} |")
    return "\n".join(lines) + "\n"


def markdown_network(summary: dict[str, Any]) -> str:
    return _table(verdicts_network(summary))
