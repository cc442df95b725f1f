"""The aggregation benchmark (benchmarks/aggregate_benchmark.py) runs end to end in --quick mode:
greensink's parcel sums agree with exactextract's, the roll-up to blocks and districts agrees
with direct coverage sums, and the output ends with the time-ratio line. Speed is not asserted
here (it depends on the machine); see benchmarks/README.md for the figures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "aggregate_benchmark.py"


def test_quick_benchmark_runs_and_agrees(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--repeats", "1", "--no-warmup", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "agreement: PASS" in out
    assert "roll-up agreement: PASS" in out
    last = out.strip().splitlines()[-1]
    assert re.fullmatch(r"aggregate/exactextract time ratio: \d+\.\d\d", last), last
