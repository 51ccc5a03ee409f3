"""Each benchmark runs once, at a tiny size, so none can rot. Their numbers mean nothing here:
`make bench` measures (docs/benchmarks.md)."""

import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNS = {
    "pipeline": (["benchmarks.pipeline", "20"], "cycles/s"),
    "floor": (["benchmarks.floor", "20"], "cycles/s"),
    "scaling": (["benchmarks.dispatch_scaling", "2", "100"], "SEARCH"),
    "latency": (["benchmarks.live", "latency", "5"], "p99"),
    "offers": (["benchmarks.live", "offers", "5"], "p99"),
    "locations": (["benchmarks.live", "locations", "5"], "edits/s taken"),
    "deadlines": (["benchmarks.deadlines", "20"], "p99"),
    "burst": (["benchmarks.live", "burst", "10"], "x 429"),
    "memory": (["benchmarks.live", "memory", "50"], "peak RSS"),
    "http_api": (["benchmarks.http_api", "40", "4"], "requests/s"),
}


@pytest.mark.parametrize("name", RUNS)
def test_the_benchmark_runs_and_prints_its_figure(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    """`python -m <benchmark> <size>`, run in this process: it has imported what they all
    import already (seconds of CPU each)."""
    arguments, figure = RUNS[name]
    monkeypatch.setattr(sys, "argv", [arguments[0], *arguments[1:]])
    monkeypatch.chdir(ROOT)
    runpy.run_module(arguments[0], run_name="__main__", alter_sys=True)
    out = capsys.readouterr().out
    assert figure in out, out
