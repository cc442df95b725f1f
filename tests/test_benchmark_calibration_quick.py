"""The calibration benchmark (benchmarks/calibration.py) on 2 realisations of a tiny demo city (1 km, 2 x 2
blocks of 2 x 2 parcels): one line per level ending ``coverage <level> stock X sink Y``, the JSON summary,
and the block coverage recomputed here from the kept project folders' zone tables and truth tables. The
figures themselves (2 realisations) are noise; docs/method.md §6 quotes a full run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "calibration.py"
LEVELS = ("city", "district", "block", "parcel")
ZONES = {"city": 1, "district": 4, "block": 4, "parcel": 16}

pytestmark = [pytest.mark.workflow, pytest.mark.slow, pytest.mark.large]  # two demo realisations run end to end (about 1 min): make test-large


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path, Path]:
    tmp = tmp_path_factory.mktemp("calibration")
    out = tmp / "calibration.json"
    work = tmp / "runs"
    cmd = [sys.executable, str(SCRIPT), "--realisations", "2", "--jobs", "2", "--extent-m", "1000", "--blocks", "2", "2",
           "--parcels-per-block", "2", "2", "--scenes-per-year", "3", "--n-bootstrap", "30", "--seed", "7",
           "--out", str(out), "--workdir", str(work), "--keep"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc, out, work


def test_one_line_per_level_ends_with_the_coverage(quick):
    proc, _, _ = quick
    lines = [ln for ln in proc.stdout.splitlines() if re.search(r"coverage \w+ stock", ln)]
    assert [ln.split()[0] for ln in lines] == list(LEVELS)
    for level, line in zip(LEVELS, lines, strict=True):
        m = re.search(rf"coverage {level} stock (\d\.\d\d) sink (\d\.\d\d)$", line)
        assert m, line
        assert 0.0 <= float(m[1]) <= 1.0 and 0.0 <= float(m[2]) <= 1.0
        assert "width stock" in line and "% of estimate" in line
        # 2 realisations x 2 years of stock per zone, 2 x 1 sinks
        assert f"{4 * ZONES[level]:5d} zone-years" in line and f"{2 * ZONES[level]:5d} zone sinks" in line
    assert "realisation   1 seed 8" in proc.stdout  # seeds 7 and 8


def test_block_coverage_recomputed_from_the_files(quick):
    proc, out, work = quick
    summary = json.loads(out.read_text(encoding="utf-8"))
    assert summary["settings"]["realisations"] == 2 and summary["settings"]["nominal"] == 0.9
    hits = n = sink_hits = sink_n = 0
    runs = sorted(work.glob("r*_seed*"))
    assert len(runs) == 2
    for run in runs:
        truth = {}
        for year in (2023, 2024):
            t = pd.read_csv(run / f"resources/demo/truth/zones_{year}_block.csv", dtype={"zone_id": str}).set_index("zone_id")
            e = pd.read_csv(run / f"results/{year}/zones/block.csv", dtype={"zone_id": str}).set_index("zone_id")
            truth[year] = t["carbon_t"]
            e = e.loc[t.index]
            hits += int(((e["carbon_t_lo"] <= t["carbon_t"]) & (t["carbon_t"] <= e["carbon_t_hi"])).sum())
            n += len(t)
        ch = pd.read_csv(run / "results/change/2023_2024/zones/block.csv", dtype={"zone_id": str}).set_index("zone_id")
        sink = (truth[2024] - truth[2023]).loc[ch.index]
        sink_hits += int(((ch["sink_t_yr_lo"] <= sink) & (sink <= ch["sink_t_yr_hi"])).sum())
        sink_n += len(sink)
    block = summary["levels"]["block"]
    assert (block["n_stock"], block["n_sink"]) == (n, sink_n) == (16, 8)
    assert block["stock_coverage"] == pytest.approx(hits / n)
    assert block["sink_coverage"] == pytest.approx(sink_hits / sink_n)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("block "))
    assert line.endswith(f"coverage block stock {hits / n:.2f} sink {sink_hits / sink_n:.2f}")
