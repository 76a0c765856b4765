"""The report: medians, min-max ranges and ratios to nginx paired by round; markdown, JSON.

    python bench/report.py bench/results/bench-<date>.json   # re-render a run's markdown

Re-rendering runs nothing: it prints the markdown of the results file to stdout.
"""

import argparse
import json
import os
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import targets
from figures import GROUPS, Figures


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    digits: int = 2
    versus_nginx: bool = True  # shown as a ratio to the nginx column of the same round


# An error quoted from a process's output (a peer's traceback) names files under this
# checkout by their absolute paths: this machine's directories, which the committed results
# must not carry. They are written relative to the checkout.
_CHECKOUT = str(Path(__file__).resolve().parent.parent) + os.sep

METRICS = (
    Metric("startup_s", "start-up to ready (s)", versus_nginx=False),
    Metric("uv_cold_s", "uv pip install, cold (s)"),
    Metric("uv_warm_s", "uv pip install, warm (s)"),
    Metric("uv_cold_upstream_requests", "  upstream requests, uv cold", 0, False),
    Metric("uv_cold_upstream_mib", "  upstream MiB, uv cold", 1, False),
    Metric("uv_warm_upstream_requests", "  upstream requests, uv warm", 0, False),
    Metric("uv_warm_upstream_mib", "  upstream MiB, uv warm", 1, False),
    Metric("uv_installed", "  distributions installed", 0, False),
    Metric("pip_cold_s", "pip install, cold (s)"),
    Metric("pip_warm_s", "pip install, warm (s)"),
    Metric("pip_cold_upstream_requests", "  upstream requests, pip cold", 0, False),
    Metric("pip_cold_upstream_mib", "  upstream MiB, pip cold", 1, False),
    Metric("pip_warm_upstream_requests", "  upstream requests, pip warm", 0, False),
    Metric("pip23_cold_s", "pip 23.2.1 install, cold (s)"),
    Metric("pip23_warm_s", "pip 23.2.1 install, warm (s)"),
    Metric("pip23_warm_upstream_pages", "  upstream page fetches, pip 23.2.1 warm", 0, False),
    Metric("compile_cold_s", "uv pip compile, wide tree, cold (s)"),
    Metric("compile_warm_s", "uv pip compile, wide tree, warm (s)"),
    Metric("compile_installed", "  packages pinned", 0, False),
    Metric("first_page_s", "first hit: project page (s)", 3),
    Metric("first_page_upstream_mib", "  upstream MiB for it", 1, False),
    Metric("first_file_s", "first hit: large file (s)", 3),
    Metric("first_root_s", "first hit: root list (s)", 3),
    Metric("page_rps", "one page (req/s)", 0),
    Metric("page_p99_ms", "  p99 (ms)", 1, False),
    Metric("mix_rps", "mix of pages + root list (req/s)", 0),
    Metric("mix_p99_ms", "  p99 (ms)", 1, False),
    Metric("root_rps", "root list (req/s)", 1),
    Metric("root_p99_ms", "  p99 (ms)", 0, False),
    Metric("file_mib_s", "large cached file (MiB/s)", 0),
    Metric("herd_s", "herd on one cold file (s)", 2),
    Metric("herd_upstream_fetches", "  upstream fetches of it", 0, False),
    Metric("tiny_under_load_p99_ms", "tiny request under load, p99 (ms)", 1),
    Metric("tiny_under_load_max_ms", "  max (ms)", 1, False),
    Metric("peak_rss_mib", "peak RSS of the process tree (MiB)", 0, False),
    # Per CPU-second of the server's process tree (one replica), from /proc.
    Metric("cpu_page_requests_per_s", "page requests per CPU-second", 0, False),
    Metric("cpu_page_backend_share", "  CPU of PG + object store, per replica CPU", 2, False),
    Metric("cpu_file_requests_per_s", "small-file hits per CPU-second", 0, False),
    Metric("cpu_file_backend_share", "  CPU of PG + object store, per replica CPU", 2, False),
    Metric("cpu_large_mib_per_s", "large-file MiB per CPU-second", 0, False),
    Metric("cpu_large_backend_share", "  CPU of PG + object store, per replica CPU", 2, False),
    # The networked upstream: the nginx column is the client going direct to it.
    Metric("net_page_p50_ms", "net: cold project page, p50 (ms)", 1),
    Metric("net_page_p90_ms", "net: cold project page, p90 (ms)", 1),
    Metric("net_uv_cold_s", "net: uv pip install, cold (s)"),
    Metric("net_uv_warm_s", "net: uv pip install, warm (s)"),
    Metric("net_uv_cold_upstream_requests", "  upstream requests, uv cold", 0, False),
    Metric("net_uv_cold_upstream_mib", "  upstream MiB, uv cold", 1),
    Metric("net_pip_cold_s", "net: pip install, cold (s)"),
    Metric("net_pip_warm_s", "net: pip install, warm (s)"),
    Metric("net_pip23_cold_s", "net: pip 23.2.1 install, cold (s)"),
    Metric("net_pip23_warm_s", "net: pip 23.2.1 install, warm (s)"),
    Metric("net_pip23_warm_upstream_pages", "  upstream page fetches, pip 23.2.1 warm", 0, False),
    Metric("net_compile_cold_s", "net: uv pip compile, wide tree, cold (s)"),
    Metric("net_compile_warm_s", "net: uv pip compile, wide tree, warm (s)"),
    Metric("net_compile_cold_upstream_requests", "  upstream requests, compile cold", 0, False),
    Metric("net_compile_cold_upstream_mib", "  upstream MiB, compile cold", 1),
)
REFERENCE = "nginx"


def summarize(rounds: list[dict[str, Figures]], servers: list[str]) -> dict[str, Any]:
    """Per server and metric: every round's value, median, min, max and median ratio to nginx."""
    summary: dict[str, Any] = {}
    for server in servers:
        per_metric: dict[str, Any] = {}
        for metric in METRICS:
            values = [r[server][metric.key] for r in rounds if metric.key in r.get(server, {})]
            if not values:
                continue
            entry: dict[str, Any] = {
                "values": values,
                "median": statistics.median(values),
                "min": min(values),
                "max": max(values),
            }
            ratios = [
                r[server][metric.key] / r[REFERENCE][metric.key]
                for r in rounds
                if metric.versus_nginx
                and metric.key in r.get(server, {})
                and r.get(REFERENCE, {}).get(metric.key)
            ]
            if ratios and server != REFERENCE:
                entry["ratio_to_nginx"] = statistics.median(ratios)
            per_metric[metric.key] = entry
        summary[server] = per_metric
    return summary


def _cell(entry: dict[str, Any] | None, digits: int) -> str:
    if entry is None:
        return "—"
    text = f"{entry['median']:,.{digits}f}"
    if entry["min"] != entry["max"]:
        text += f" ({entry['min']:,.{digits}f}–{entry['max']:,.{digits}f})"
    if "ratio_to_nginx" in entry:
        text += f" · {entry['ratio_to_nginx']:.2f}×"
    return text


def markdown(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    servers = list(summary)
    lines = [
        f"Benchmark {meta['date']} on {meta['machine']}, {meta['rounds']} round(s), "
        f"tree: {meta['tree']}. Median (min–max) · ratio to nginx paired by round.",
        "",
        f"`net:` rows: each server in front of the networked upstream ({meta.get('network')});"
        " there the nginx column is the client going direct to that upstream, so the ratio is"
        " *through the server vs direct*. Other rows: upstream and nginx column on loopback. "
        f"Installs: {meta.get('client_dirs')}.",
        "",
        "| figure | " + " | ".join(servers) + " |",
        "|---|" + "---|" * len(servers),
    ]
    for metric in METRICS:
        cells = [_cell(summary[server].get(metric.key), metric.digits) for server in servers]
        if all(cell == "—" for cell in cells):
            continue
        lines.append(f"| {metric.label} | " + " | ".join(cells) + " |")
    # Older results files carry no groups: then a missing figure is put down to a failure.
    groups = meta.get("groups") or list(GROUPS)
    lines += ["", "Targets (issue 6):", "", targets.markdown(summary, groups).rstrip()]
    lines += ["", "Targets (issue 11):", "", targets.markdown_network(summary, groups).rstrip()]
    if meta.get("versions"):
        lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items())]
    if meta.get("errors"):
        lines += ["", "Errors:", *(f"- {_relative(error)}" for error in meta["errors"])]
    return "\n".join(lines) + "\n"


def latest_stem(meta: dict[str, Any]) -> str:
    """The name of the run's `latest` files: a smoke run (a test, one tiny round) writes its
    own, so that it never overwrites the full run's tables the README quotes."""
    return "smoke-latest" if meta.get("smoke") else "latest"


def write(
    results_dir: Path,
    summary: dict[str, Any],
    meta: dict[str, Any],
    rounds: list[dict[str, Figures]],
) -> tuple[Path, Path]:
    """The markdown and JSON as `latest_stem`.md/.json; a full run also as a dated copy."""
    results_dir.mkdir(parents=True, exist_ok=True)
    meta = {**meta, "errors": [_relative(error) for error in meta.get("errors", [])]}
    table = markdown(summary, meta)
    data = json.dumps({"meta": meta, "summary": summary, "rounds": rounds}, indent=1)
    stems = [latest_stem(meta)]
    if not meta.get("smoke"):  # every ./dev test makes a smoke run: no dated copy piles up
        stems.insert(0, "bench-" + meta["date"].replace(":", "").replace("-", ""))
    for stem in stems:
        (results_dir / f"{stem}.md").write_text(table)
        (results_dir / f"{stem}.json").write_text(data)
    return results_dir / f"{stems[0]}.md", results_dir / f"{stems[0]}.json"


def _relative(error: str) -> str:
    return error.replace(_CHECKOUT, "")


def main() -> None:
    parser = argparse.ArgumentParser(description="Print the markdown of a bench results file.")
    parser.add_argument("results", type=Path, help="a results JSON (bench/results/*.json)")
    results = json.loads(parser.parse_args().results.read_text())
    print(markdown(results["summary"], results["meta"]), end="")


if __name__ == "__main__":
    main()
