"""Keeps the benchmark harness working: one tiny round of bench/run.py, bodega against nginx.

Only that the run completes and reports is checked; the timings it prints never decide a
test (they are the benchmark's business, not the suite's).
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.postgres import find_pg_bin
from tests.support.seaweedfs import weed_binary

ROOT = Path(__file__).resolve().parents[2]
NEEDS_NGINX = pytest.mark.skipif(
    not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()),
    reason="the bench needs nginx (./dev test installs it as root)",
)


def smoke_report(*options: str, timeout: int) -> str:
    """One --smoke round of bench/run.py with these options, to success; its report."""
    result = subprocess.run(
        [sys.executable, "bench/run.py", "--smoke", *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return (ROOT / "bench" / "results" / "smoke-latest.md").read_text()


@pytest.mark.timeout(300)
@pytest.mark.skipif(
    not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()) or not shutil.which("wrk"),
    reason="the bench needs nginx and wrk (./dev test installs them as root)",
)
def test_a_smoke_round_of_the_bench_reports_bodega_and_nginx() -> None:
    report = smoke_report("--peers", "bodega,nginx", timeout=280)
    assert "bodega" in report
    assert "nginx" in report
    assert "net: uv pip install, cold" in report  # the rows through the networked upstream


@pytest.mark.timeout(120)
@NEEDS_NGINX
def test_a_smoke_round_of_the_workers_column_reports_its_installs() -> None:
    """bodega with --workers 2, on the install groups only: the serving code paths are the
    bodega column's."""
    report = smoke_report("--peers", "bodega-workers,nginx", "--groups", "uv,compile", timeout=110)
    assert "| bodega-workers |" in report
    assert "uv pip compile, wide tree, cold" in report
    assert "Errors:" not in report


@pytest.mark.timeout(300)
@NEEDS_NGINX
def test_a_smoke_round_of_the_shared_columns_reports_requests_per_cpu_second() -> None:
    """bodega on PostgreSQL + a SeaweedFS bucket, as a replica runs, started by the bench."""
    if find_pg_bin() is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    weed_binary()  # skips without the pinned SeaweedFS (fails under ./dev test)
    report = smoke_report("--peers", "bodega-shared,nginx", "--groups", "replica", timeout=280)
    assert "| bodega-shared |" in report
    assert "page requests per CPU-second" in report
    assert "CPU of PG + object store, per replica CPU" in report
    assert "Errors:" not in report


@pytest.mark.timeout(120)
@NEEDS_NGINX
def test_a_smoke_round_of_the_groups_the_default_smoke_leaves_out() -> None:
    """pip (current), pip 23.2.1 through the networked upstream and the networked compile:
    groups the full run reports whose code the default smoke round does not reach."""
    groups = "pip,net-pip23,net-compile"
    report = smoke_report("--peers", "bodega,nginx", "--groups", groups, timeout=110)
    assert "| pip install, cold (s) |" in report
    assert "| net: pip 23.2.1 install, cold (s) |" in report
    assert "| net: uv pip compile, wide tree, cold (s) |" in report
    assert "Errors:" not in report
