"""wrk runs: a Lua script cycles through the paths and prints its summary as JSON."""

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from fetch import PIP_HEADERS

# One path: wrk builds the request once (its fast path). Several: `request` cycles through them.
_ONE_PATH = "wrk.path = {path}\n"
_PATHS = """\
local paths = {paths}
local counter = 0
request = function()
  counter = counter % #paths + 1
  return wrk.format("GET", paths[counter])
end
"""
_DONE = """\
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "bytes": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"errors": %d, "bad_status": %d}\\n',
    summary.requests, summary.bytes, summary.duration,
    latency:percentile(50), latency:percentile(99),
    errors.connect + errors.read + errors.write + errors.timeout, errors.status))
end
"""


@dataclass(frozen=True)
class Load:
    """One wrk run's totals."""

    requests: int
    bytes: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    bad_status: int

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def mib_per_second(self) -> float:
        return self.bytes / self.seconds / (1024 * 1024)


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        sys.exit("bench: wrk is missing; install it (Debian: apt-get install wrk)")
    return found


def lua_script(paths: list[str], headers: dict[str, str]) -> str:
    script = "".join(
        f"wrk.headers[{json.dumps(key)}] = {json.dumps(value)}\n" for key, value in headers.items()
    )
    if len(paths) == 1:
        script += _ONE_PATH.format(path=json.dumps(paths[0]))
    else:
        quoted = "{" + ", ".join(json.dumps(path) for path in paths) + "}"
        script += _PATHS.format(paths=quoted)
    return script + _DONE


def run_wrk(
    base_url: str,
    paths: list[str],
    scratch: Path,
    *,
    seconds: float,
    connections: int,
    headers: dict[str, str] | None = None,
) -> Load:
    scratch.mkdir(parents=True, exist_ok=True)
    script = scratch / "wrk.lua"
    script.write_text(lua_script(paths, PIP_HEADERS if headers is None else headers))
    argv = [
        wrk_binary(),
        "--threads",
        "1",
        "--connections",
        str(connections),
        "--duration",
        f"{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "--script",
        str(script),
        base_url,
    ]
    result = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=seconds + 90)
    for line in result.stdout.splitlines():
        if line.startswith("BENCH "):
            data = json.loads(line.removeprefix("BENCH "))
            return Load(
                requests=data["requests"],
                bytes=data["bytes"],
                seconds=data["duration_us"] / 1e6,
                p50_ms=data["p50_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
                errors=data["errors"],
                bad_status=data["bad_status"],
            )
    raise RuntimeError(f"wrk printed no summary:\n{result.stdout}\n{result.stderr}")
