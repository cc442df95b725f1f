"""The composite benchmark (benchmarks/composite_benchmark.py) runs end to end in --quick mode
(2000 × 2000 px, 3 dates): both stages finish, their outputs are whole-grid COGs with plausible
statistics, and the output reports time, throughput and peak memory per stage and ends with the
peak-memory verdict. Speed is not asserted (it depends on the machine); see benchmarks/README.md."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "composite_benchmark.py"


@pytest.mark.slow
def test_quick_composite_benchmark_runs_within_the_memory_budget(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--workdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, check=False)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    for stage in ("composite", "vegetation"):
        line = next(ln for ln in out.splitlines() if ln.startswith(f"{stage}:"))
        assert re.search(r"wall +\d+\.\d\d s, CPU +\d+\.\d\d s, +\d+\.\d\d Mpx/s", line), line
        assert re.search(r"peak \d+ MiB", line), line
    assert "outputs: PASS" in out
    last = out.strip().splitlines()[-1]
    m = re.fullmatch(r"peak memory: composite (\d+) MiB, vegetation (\d+) MiB \(budget 2048 MiB\): PASS", last)
    assert m, last
    assert 0 < int(m[1]) <= 2048 and 0 < int(m[2]) <= 2048
    # the scenes are kept in --workdir and reused by a second run
    assert (tmp_path / "meta.json").exists() and (tmp_path / "out" / "composite.tif").exists()
