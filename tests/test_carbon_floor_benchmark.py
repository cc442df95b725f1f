"""benchmarks/raster_floor.py (issue 14 item 1) on a small grid: every per-pixel stage prints its line ending in
``stage/floor ratio: X`` with X its wall time over its floor's, and each floor wrote the stage's own outputs again
(same bands, dtype, codec, tiling and values), so the floor is the stage's I/O and nothing less. Speed is not
asserted (it depends on the machine); benchmarks/README.md has the figures. The change stage needs a finished
run and is left out here (--no-change)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import rasterio

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "raster_floor.py"


def test_every_stage_against_a_floor_that_rewrites_its_outputs(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--size", "300", "--dates", "2", "--no-exact", "--no-change",
                           "--workdir", str(tmp_path)], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    stages = {s["stage"]: s for s in summary["stages"]}
    assert list(stages) == ["ingest masking", "composite", "vegetation", "carbon (tabulated)"]
    for name, s in stages.items():
        line = next(ln for ln in lines if ln.startswith(f"{name}: "))
        ratio = re.search(r"stage/floor ratio: (\d+\.\d\d)$", line)
        assert ratio, line
        assert float(ratio.group(1)) == round(s["wall_s"] / s["floor_s"], 2)
        assert s["floor_s"] > 0 and s["cpu_s"] > 0
    # each floor's files against the stage's: the same layout, codec and values
    pairs = [(tmp_path / "composite_s2.tif", tmp_path / "composite_floor" / "composite_s2.tif"),
             (tmp_path / "carbon_tabulated.tif", tmp_path / "carbon_floor" / "carbon_tabulated.tif")]
    pairs += [(p, tmp_path / "veg_floor" / p.name) for p in sorted((tmp_path / "veg").glob("*.tif"))]
    assert len(pairs) >= 6
    for stage_file, floor_file in pairs:
        with rasterio.open(stage_file) as a, rasterio.open(floor_file) as b:
            assert (a.count, a.dtypes, a.compression, a.block_shapes, a.shape) == \
                (b.count, b.dtypes, b.compression, b.block_shapes, b.shape), stage_file.name
            assert a.descriptions == b.descriptions, stage_file.name
            np.testing.assert_array_equal(a.read(), b.read(), err_msg=stage_file.name)
    assert json.loads((tmp_path / "ingest_floor" / "scenes.json").read_text()) == \
        json.loads((tmp_path / "ingest" / "scenes.json").read_text())
