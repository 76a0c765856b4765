"""The bench's targets tables, rendered from small hand-made results by `bench/report.py FILE`.

Nothing is timed: the figures below are made up, and the report only re-renders them. The
report runs as the command people use, so the suite never imports the bench's modules.
"""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def entry(median: float, ratio: float | None = None) -> dict[str, Any]:
    """One figure as report.summarize writes it (a single round)."""
    figure: dict[str, Any] = {"values": [median], "median": median, "min": median, "max": median}
    if ratio is not None:
        figure["ratio_to_nginx"] = ratio
    return figure


def render(
    tmp_path: Path, summary: dict[str, Any], groups: list[str], errors: list[str] | None = None
) -> str:
    meta = {
        "date": "2026-12-05T12:00:00+0000",
        "machine": "a test",
        "rounds": 1,
        "tree": "none",
        "network": "none",
        "client_dirs": "none",
        "groups": groups,
        "smoke": False,
        "errors": errors or [],
    }
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"meta": meta, "summary": summary, "rounds": []}))
    done = subprocess.run(
        [sys.executable, "bench/report.py", str(results)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def row(markdown: str, target: str) -> list[str]:
    """The cells (bodega, wanted, met) of the targets row `target`."""
    prefix = f"| {target} |"
    targets = markdown.split("Targets (issue 6):", 1)[1]  # not the figures table's rows
    (line,) = [line for line in targets.splitlines() if line.startswith(prefix)]
    return [cell.strip() for cell in line[len(prefix) :].strip(" |").split(" | ")]


def test_a_target_whose_group_did_not_run_names_the_group(tmp_path: Path) -> None:
    summary = {
        "nginx": {"uv_cold_s": entry(1.0)},
        "bodega": {"uv_cold_s": entry(2.0, ratio=2.0)},
    }
    markdown = render(tmp_path, summary, ["uv"])
    assert row(markdown, "net: uv pip compile, cold (× direct)") == [
        "—",
        "≤ 1.25×",
        "not run: group net-compile",
    ]
    assert row(markdown, "pip 23.2.1 warm: upstream page fetches")[2] == "not run: group pip23"
    assert row(markdown, "uv pip install, cold (× nginx)") == ["2.00×", "≤ 1.20×", "**no**"]


def test_a_group_that_ran_without_a_figure_is_a_failure_not_a_group_left_out(
    tmp_path: Path,
) -> None:
    summary = {"nginx": {"net_uv_cold_s": entry(1.0)}, "bodega": {}}
    markdown = render(tmp_path, summary, ["net-uv"])
    met = row(markdown, "net: uv pip install, cold (× direct)")[2]
    assert met == "not measured: bodega's net-uv failed (see Errors)"


def test_a_target_whose_peers_did_not_run_names_them(tmp_path: Path) -> None:
    summary = {
        "nginx": {"mix_rps": entry(9000.0), "uv_cold_s": entry(1.0)},
        "bodega": {"mix_rps": entry(3000.0), "uv_cold_s": entry(1.1, ratio=1.1)},
    }
    markdown = render(tmp_path, summary, ["uv", "serve"])
    bodega, wanted, met = row(markdown, "mix of pages + root list (req/s)")
    assert bodega == "3,000.0"
    assert "10× devpi: no figure" in wanted
    assert met == "not run: peer devpi; not run: peer proxpi"
    ahead = row(markdown, "ahead of every peer on every install row")
    assert ahead[2] == "not run: peers devpi, devpi-web, proxpi"


def test_ahead_of_the_peers_is_counted_per_install_row_and_names_where_behind(
    tmp_path: Path,
) -> None:
    seconds = {  # uv cold, uv warm, net-uv cold, net-uv warm
        "nginx": (1.0, 1.0, 1.0, 1.0),
        "bodega": (2.0, 1.0, 3.0, 2.0),
        "devpi": (9.0, 0.9, 8.0, 3.0),
        "proxpi": (3.0, 0.5, 4.0, 1.5),
    }
    keys = ("uv_cold_s", "uv_warm_s", "net_uv_cold_s", "net_uv_warm_s")
    summary = {
        server: {key: entry(value) for key, value in zip(keys, values, strict=True)}
        for server, values in seconds.items()
    }
    markdown = render(tmp_path, summary, ["uv", "net-uv"])
    bodega, wanted, met = row(markdown, "ahead of every peer on every install row")
    assert bodega == "ahead on 2 of 4 rows; behind on uv warm (devpi, proxpi), net-uv warm (proxpi)"
    assert wanted == "faster than each peer measured (not run: devpi-web)"
    assert met == "**no**"


def test_ahead_on_every_row_is_met(tmp_path: Path) -> None:
    summary = {
        "nginx": {"pip_cold_s": entry(1.0), "pip_warm_s": entry(1.0)},
        "bodega": {"pip_cold_s": entry(1.0), "pip_warm_s": entry(1.0)},
        "proxpi": {"pip_cold_s": entry(2.0), "pip_warm_s": entry(2.0)},
    }
    markdown = render(tmp_path, summary, ["pip"])
    bodega, _, met = row(markdown, "ahead of every peer on every install row")
    assert (bodega, met) == ("ahead on 2 of 2 rows", "yes")


def test_errors_quoted_from_a_peer_name_the_checkouts_files_relative_to_it(
    tmp_path: Path,
) -> None:
    # A peer's traceback names its files by absolute paths of this machine; the results are
    # committed, so they say where under the checkout instead.
    traceback = f'devpi: answered 500\n  File "{ROOT}/bench/.work/venv-devpi/views.py", line 1'
    summary = {"nginx": {"uv_cold_s": entry(1.0)}, "bodega": {"uv_cold_s": entry(2.0, 2.0)}}
    markdown = render(tmp_path, summary, ["uv"], errors=[traceback])
    assert 'File "bench/.work/venv-devpi/views.py", line 1' in markdown
    assert str(ROOT) not in markdown
