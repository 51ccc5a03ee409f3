"""Each benchmark runs once, at a tiny size, so none can rot. Their numbers mean nothing here:
`make bench` measures (docs/benchmarks.md)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNS = {
    "pipeline": (["benchmarks.pipeline", "20"], "cycles/s"),
    "floor": (["benchmarks.floor", "20"], "cycles/s"),
    "scaling": (["benchmarks.dispatch_scaling", "2", "100"], "SEARCH"),
    "latency": (["benchmarks.live", "latency", "5"], "p99"),
    "burst": (["benchmarks.live", "burst", "10"], "x 429"),
    "memory": (["benchmarks.live", "memory", "50"], "peak RSS"),
    "http_api": (["benchmarks.http_api", "40", "4"], "requests/s"),
}


@pytest.mark.parametrize("name", RUNS)
def test_the_benchmark_runs_and_prints_its_figure(name: str):
    arguments, figure = RUNS[name]
    environment = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)}
    # In a session of its own, so that a timeout also ends the servers and bots it started.
    with subprocess.Popen(
        [sys.executable, "-m", *arguments],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            out, err = process.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    assert process.returncode == 0, out + err
    assert figure in out, out
