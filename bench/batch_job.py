"""One batch job, timed and measured: `python -m serving.batch` in its own process.

`run_batch` runs the command, waits for it without reaping it while `PeakMemory` reads its
/proc entries (its own high-water mark, VmHWM, and its process tree's summed RSS), and returns
the rates from the job's sidecar (`scoring_seconds`) and from the wall clock, with the peaks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent


class PeakMemory(threading.Thread):
    """A process's own peak RSS (VmHWM: its address space's high-water mark since exec, so not
    the forking parent's, which wait4's maxrss inherits) and the peak of its process tree's
    summed RSS, sampled every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.own = self.tree = 0
        self.done = threading.Event()

    def run(self) -> None:
        from bench.processes import tree_memory

        status = Path(f"/proc/{self.pid}/status")
        try:
            root = psutil.Process(self.pid)
            while not self.done.wait(self.interval):
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.own = max(self.own, int(line.split()[1]) * 1024)
                self.tree = max(self.tree, sum(tree_memory(root).values()))
        except (psutil.Error, OSError, ValueError):
            pass  # it has ended


def run_batch(
    source: Path, output: Path, extra: Sequence[str], env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run `python -m serving.batch` on `source`; its timings, peak RSS and sidecar."""
    command = [sys.executable, "-m", "serving.batch", "--input", str(source), "--output",
               str(output), *extra]  # fmt: skip
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True, env=env)
    sampler = PeakMemory(process.pid, interval=0.05)
    sampler.start()
    stderr_lines: list[str] = []
    reader = threading.Thread(target=lambda: stderr_lines.extend(process.stderr or []))
    reader.start()
    # the sampler reads /proc while the process is a zombie too: wait for it without reaping
    os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
    elapsed = time.monotonic() - started
    sampler.done.set()
    sampler.join()
    _, status = os.waitpid(process.pid, 0)
    reader.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"batch failed ({process.returncode}):\n{''.join(stderr_lines)[-3000:]}")
    meta = json.loads(output.with_name(output.name + ".meta.json").read_text())
    return {
        "rows_per_second": round(meta["rows"] / meta["scoring_seconds"]),
        "rows_per_second_end_to_end": round(meta["rows"] / elapsed),
        "scoring_seconds": meta["scoring_seconds"],
        "wall_seconds": round(elapsed, 1),
        "peak_rss_mib": round(sampler.own / 2**20),
        "peak_tree_rss_mib": round(sampler.tree / 2**20),
        "threads": meta.get("threads"),
        "layout": meta["layout"],
        "load_average_1m": round(os.getloadavg()[0], 1),
    }
