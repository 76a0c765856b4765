"""What an installer's burst costs bodega, phase by phase: the profile behind issue 6's gaps.

    python bench/burst.py [--rounds N] [--py-spy OUT.txt] [-- extra bodega serve options]

uv asks for every page of a dependency tree at once, then every wheel's .metadata, then every
wheel. This does the same with aiohttp against nginx (the ceiling) and against a bodega started
on an empty data dir (cold), then again (warm) and once more (with --workers, each worker has
then likely seen each request), and prints each phase's wall time and the CPU seconds
bodega's processes used. `--py-spy OUT.txt` records the cold burst with py-spy
(`--gil --idle`, raw format: one stack per line with its sample count; with `--wall`, every
thread's stack whether it runs or waits, `--threads --idle`). Like run.py it uses the
generated tree under bench/.work and stops every process it starts; nothing here is timed in
the tests.
"""

import argparse
import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import debian
import installers
import nginx
import tree
import yarl
from run import WORK, bodega_python
from servers import Bodega, free_port

JSON = "application/vnd.pypi.simple.v1+json"
Phases = dict[str, float]


async def burst(index_url: str, projects: Sequence[str]) -> Phases:
    """Seconds for all pages at once, then all .metadata, then all newest wheels."""
    async with aiohttp.ClientSession() as session:

        async def newest_wheel(project: str) -> str:
            async with session.get(f"{index_url}{project}/", headers={"Accept": JSON}) as page:
                files = (await page.json(content_type=None))["files"]
            wheel = [f for f in files if f["filename"].endswith(".whl")][-1]
            return str(page.url.join(yarl.URL(wheel["url"])))

        async def fetch(url: str) -> None:
            async with session.get(url) as response:
                await response.read()
                response.raise_for_status()

        started = time.perf_counter()
        wheels = await asyncio.gather(*(newest_wheel(p) for p in projects))
        pages_done = time.perf_counter()
        await asyncio.gather(*(fetch(url + ".metadata") for url in wheels))
        metadata_done = time.perf_counter()
        await asyncio.gather(*(fetch(url) for url in wheels))
        return {
            "pages": pages_done - started,
            "metadata": metadata_done - pages_done,
            "wheels": time.perf_counter() - metadata_done,
        }


def cpu_seconds(pid: int) -> float:
    """CPU seconds of the process and its children (--workers' processes), as they run."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return own + sum(cpu_seconds(int(child)) for child in children)


def show(label: str, phases: Phases, cpu: float | None = None) -> None:
    cells = "  ".join(f"{name} {seconds * 1000:7.1f} ms" for name, seconds in phases.items())
    extra = "" if cpu is None else f"  bodega CPU {cpu:.2f} s"
    print(f"{label:<13}{cells}{extra}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--py-spy", type=Path, help="record the cold burst with py-spy here")
    parser.add_argument(
        "--wall",
        action="store_true",
        help="py-spy samples every thread, idle or not (where wall time goes), not the GIL holder",
    )
    parser.add_argument("serve_options", nargs="*", help="after --: passed to bodega serve")
    arguments = parser.parse_args()
    spec = tree.TreeSpec.full()
    root = WORK / f"tree-{spec.key}"
    manifest = tree.generate(spec, root)
    scratch = WORK / "runs" / f"burst-{time.strftime('%Y%m%d-%H%M%S')}"
    environment = installers.isolated_environment()
    commands = debian.ensure_commands()
    ports = (free_port(), free_port(), free_port())
    upstream = nginx.Nginx(commands["nginx"], root, scratch / "nginx", ports)
    upstream.start(environment)

    class Server(Bodega):
        def command(self, data_dir: Path) -> list[str]:
            extra: list[str] = arguments.serve_options
            return super().command(data_dir) + extra

    bodega = Server(upstream.url, environment, bodega_python())
    try:
        for number in range(1, arguments.rounds + 1):
            show(f"{number} nginx", asyncio.run(burst(upstream.url, manifest.projects)))
            bodega.start(scratch / f"bodega-{number}")
            assert bodega.process is not None
            pid = bodega.process.popen.pid
            spy = None
            if arguments.py_spy and number == 1:
                command = [
                    installers.venv_tool("py-spy", "pip install py-spy into the repo's venv"),
                    "record",
                    *(["--threads"] if arguments.wall else ["--gil"]),
                    "--idle",
                    "--subprocesses",  # the workers of --workers
                    "-r",
                    "500",
                    "-f",
                    "raw",
                ]
                spy = subprocess.Popen(
                    [*command, "-o", str(arguments.py_spy), "-p", str(pid)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(0.5)  # py-spy attaches
            # "warm again": with --workers, once every worker has likely seen each request.
            for state in ("cold", "warm", "warm again"):
                before = cpu_seconds(pid)
                phases = asyncio.run(burst(bodega.index_url, manifest.projects))
                show(f"{number} {state}", phases, cpu_seconds(pid) - before)
                if spy is not None:
                    spy.send_signal(2)
                    spy.wait(timeout=30)
                    spy = None
            bodega.stop()
    finally:
        bodega.stop()
        upstream.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
