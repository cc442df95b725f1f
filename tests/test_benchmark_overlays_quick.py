"""The zone-overlay benchmark (benchmarks/zone_overlays.py) runs end to end in --quick mode: the new
overlays agree with the old brute force it carries as the reference (within 1e-9), and the output ends
with the time-ratio line. Speed is not asserted here; see benchmarks/README.md for the figures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "zone_overlays.py"


def test_quick_overlay_benchmark_runs_and_agrees() -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=300, check=False)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "agreement: PASS" in out
    diffs = [float(x) for x in re.findall(r"max difference (\S+) (?:percentage points|of the zone)", out)]
    # residential, population, dissolved layer, green-space layer, people per zone
    assert len(diffs) == 5 and max(diffs) <= 1e-9
    last = out.strip().splitlines()[-1]
    assert re.fullmatch(r"zone overlays old/new time ratio at 400 zones: \d+\.\d\d", last), last
