"""Keeps the benchmark harness working: one tiny round of bench/run.py, bodega against nginx.

Only that the run completes and reports is checked; the timings it prints never decide a
test (they are the benchmark's business, not the suite's).
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
@pytest.mark.skipif(
    not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()) or not shutil.which("wrk"),
    reason="the bench needs nginx and wrk (./dev test installs them as root)",
)
def test_a_smoke_round_of_the_bench_reports_bodega_and_nginx() -> None:
    result = subprocess.run(
        [sys.executable, "bench/run.py", "--smoke", "--peers", "bodega,nginx"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = (ROOT / "bench" / "results" / "latest.md").read_text()
    assert "bodega" in report
    assert "nginx" in report
    assert "net: uv pip install, cold" in report  # the rows through the networked upstream
