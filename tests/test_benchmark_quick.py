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


def test_quick_benchmark_memory_budget_fails_the_run_when_exceeded(tmp_path: Path) -> None:
    """--budget-mib: the greensink child's peak (VmHWM, a few hundred MiB at least for the imports)
    over a 50 MiB budget makes the run exit 1 even though the sums agree (400 × 400 px, 100 parcels)."""
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--size", "400", "--parcels", "100", "--repeats", "1", "--no-warmup",
         "--budget-mib", "50", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "agreement: PASS" in out and "roll-up agreement: PASS" in out
    peak = float(re.search(r"greensink peak memory (\d+) MiB: OVER the 50 MiB budget", out).group(1))
    before = float(re.search(r"run 1 greensink:.*before work (\d+)\)", out).group(1))
    assert 50 < before <= peak


def test_edges_memory_alone_builds_the_same_matrix_both_ways(tmp_path: Path) -> None:
    """--edges-memory --repeats 0: only the coverage matrix with the whole-array edges of before, with the
    batched edges and the whole-array edges by task, and with both batched, in one process each; the
    matrices' digests are equal and the peaks are printed."""
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--size", "400", "--parcels", "100", "--repeats", "0", "--edges-memory",
         "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    m = re.search(r"_edges peak memory before/after \(whole-array / batched\): (\d+) / (\d+) MiB", out)
    assert m and int(m.group(1)) > 50 and int(m.group(2)) > 50, out
    m = re.search(r"_edges_by_task peak memory before/after \(whole-array / batched\): (\d+) / (\d+) MiB .*; "
                  r"the three matrices identical", out)
    assert m and int(m.group(1)) > 50 and int(m.group(2)) > 50, out
    assert "run 1" not in out  # no timed comparison with exactextract


_BIG_PARENT = """
import subprocess, sys
big = bytearray(600 * 2**20)  # touched: 600 MiB resident in the parent
big[:: 4096] = b"x" * len(big[:: 4096])
print(subprocess.run([sys.executable, "-c", sys.argv[1]], capture_output=True, text=True, check=True).stdout)
"""
_CHILD = """
import resource, sys
sys.path.insert(0, {bench!r})
from _bench import vmhwm_mib
print(vmhwm_mib(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def test_vmhwm_is_the_childs_own_peak_not_the_parents() -> None:
    """The benchmarks' peak memory (benchmarks/_bench.vmhwm_mib, used by aggregate_benchmark and
    zone_overlays) is the child's own: a small child of a 600 MiB parent reports well under 600 MiB,
    where ru_maxrss (which Linux carries across execve) reports the parent's 600 MiB or more."""
    child = _CHILD.format(bench=str(ROOT / "benchmarks"))
    out = subprocess.run([sys.executable, "-c", _BIG_PARENT, child], capture_output=True, text=True, check=True,
                         timeout=120).stdout
    vmhwm, maxrss = (float(x) for x in out.split())
    assert vmhwm < 400, out
    assert maxrss >= 600, out  # what the benchmarks used to report for such a child


def test_quick_overlay_benchmark_with_a_sampled_reference() -> None:
    """zone_overlays.py --sample: the old brute force runs on 60 of the 400 zones only; the new
    overlays of those zones (from the run over all zones) still agree with it within 1e-9, and the
    last line says the old time is extrapolated; each size prints its peak memory."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "zone_overlays.py"), "--quick", "--sample", "60"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "old method on 60 zones drawn at random" in out
    assert "agreement: PASS" in out
    diffs = [float(x) for x in re.findall(r"max difference (\S+) (?:percentage points|of the zone)", out)]
    assert len(diffs) == 5 and max(diffs) <= 1e-9
    assert re.search(r"peak memory \(VmHWM, (?:this size|process so far)\) \d+ MiB", out)
    last = out.strip().splitlines()[-1]
    assert re.fullmatch(r"zone overlays old/new time ratio at 400 zones: \d+\.\d\d \(old extrapolated from 60 zones\)",
                        last), last


_RESET_CHILD = """
import sys
import numpy as np
sys.path.insert(0, {bench!r})
from _bench import reset_vmhwm, vmhwm_mib
big = np.ones(500 * 2**20, dtype=np.uint8)  # 500 MiB, every page touched
del big
before = vmhwm_mib()
print(before, reset_vmhwm(), vmhwm_mib())
"""


def test_reset_vmhwm_starts_a_new_peak() -> None:
    """zone_overlays.py reports each size's own peak: after reset_vmhwm the peak is the current size,
    not the 500 MiB array freed before it (Linux /proc/self/clear_refs)."""
    out = subprocess.run([sys.executable, "-c", _RESET_CHILD.format(bench=str(ROOT / "benchmarks"))],
                         capture_output=True, text=True, check=True, timeout=120).stdout.split()
    before, done, after = float(out[0]), out[1] == "True", float(out[2])
    assert before >= 500
    if done:  # where /proc/self/clear_refs is writable
        assert after < before - 400
