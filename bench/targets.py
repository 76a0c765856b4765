"""The targets of issue 6: the peers' figures from a reference run on a 2-core machine.

bodega meets a target when it does at least as well as the better peer did in that reference
run. Read them beside this run's own peer columns: a slower or busier machine moves everyone.
"""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    devpi: float
    proxpi: float
    is_ratio: bool = False  # compared as the ratio to nginx of the same round
    higher_is_better: bool = False

    def best(self) -> float:
        pick = max if self.higher_is_better else min
        return pick(self.devpi, self.proxpi)

    def is_met(self, value: float) -> bool:
        return value >= self.best() if self.higher_is_better else value <= self.best()


TARGETS = (
    Target("page_rps", "one page (req/s)", 604, 1_231, higher_is_better=True),
    Target("root_rps", "root list (req/s)", 446, 649, higher_is_better=True),
    Target("file_mib_s", "large cached file (MiB/s)", 1_004, 2_488, higher_is_better=True),
    Target("herd_upstream_fetches", "herd: upstream fetches", 8, 2),
    Target("uv_cold_s", "uv install cold (× nginx)", 1.46, 1.23, is_ratio=True),
    Target("uv_warm_s", "uv install warm (× nginx)", 1.18, 1.21, is_ratio=True),
    Target("first_page_s", "first hit of a page (× nginx)", 22.6, 6.8, is_ratio=True),
    Target("startup_s", "start-up to ready (s)", 6.1, 0.4),
    Target("peak_rss_mib", "peak RSS (MiB)", 576, 84),
)
# The ceiling from the same reference run, for scale.
REFERENCE_NGINX = {"page_rps": 61_500.0, "file_mib_s": 2_714.0}


def _measured(summary: dict[str, Any], server: str, target: Target) -> float | None:
    entry = summary.get(server, {}).get(target.key)
    if entry is None:
        return None
    value = entry.get("ratio_to_nginx") if target.is_ratio else entry["median"]
    return None if value is None else float(value)


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def markdown(summary: dict[str, Any]) -> str:
    servers = [name for name in ("bodega", "devpi", "proxpi") if name in summary]
    lines = [
        "| target | reference devpi | reference proxpi | "
        + " | ".join(f"{name} now" for name in servers)
        + " | bodega meets |",
        "|---|---|---|" + "---|" * len(servers) + "---|",
    ]
    for target in TARGETS:
        measured = {name: _measured(summary, name, target) for name in servers}
        bodega = measured.get("bodega")
        verdict = "—" if bodega is None else ("yes" if target.is_met(bodega) else "no")
        cells = [_number(target.devpi), _number(target.proxpi)]
        cells += [_number(measured[name]) for name in servers]
        lines.append(f"| {target.label} | " + " | ".join(cells) + f" | {verdict} |")
    ceiling = ", ".join(f"{key} {value:,.0f}" for key, value in REFERENCE_NGINX.items())
    lines += ["", f"Reference nginx in that run: {ceiling}."]
    return "\n".join(lines) + "\n"
