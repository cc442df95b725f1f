"""Snakemake's own report and a moved run folder (issue 16 items 1 and 6), on a copy of the shared baseline run.

The copy is the moved run: the run folder copied to another place, as a user moves or unpacks an archive.
Its records must name none of the old place, ``greensink.open_results`` must read it, and
``snakemake --report`` (no ``--cores``) must build a zip holding the planner report, the maps and the
captions in Snakemake's own HTML.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import greensink
from test_workflow import LEVELS, PAIRS, ROOT, SCENARIOS, YEARS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def moved(baseline_run: Path, tmp_path_factory) -> Path:
    """The baseline run copied to a new folder (timestamps kept, as an archive would)."""
    target = tmp_path_factory.mktemp("moved") / "run"
    shutil.copytree(baseline_run, target, symlinks=True)
    return target


def test_moved_run_records_name_no_old_folder(baseline_run: Path, moved: Path) -> None:
    old = str(baseline_run.resolve())
    records = sorted((moved / "results").rglob("*.json"))
    assert moved / "results" / "provenance.json" in records
    assert any(p.name == "scenes.json" for p in records) and any(p.name == "grid.json" for p in records)
    holding = [str(p.relative_to(moved)) for p in records if old in p.read_text(encoding="utf-8")]
    assert holding == [], f"records naming the old run folder {old}: {holding}"
    prov = json.loads((moved / "results" / "provenance.json").read_text(encoding="utf-8"))
    assert prov["config"]["workdir"] == "."
    # every input inside the run is named relative to it, and its checksum still matches the moved file
    inside = [e for e in prov["inputs"] if not Path(e["path"]).is_absolute()]
    assert inside, "no input recorded relative to the run folder"
    import hashlib

    for entry in inside:
        assert hashlib.sha256((moved / entry["path"]).read_bytes()).hexdigest() == entry["sha256"], entry["path"]
    # the scenes' band files are named relative to the run folder and exist in the moved copy
    for year in YEARS:
        scenes = json.loads((moved / f"results/{year}/ingest/scenes.json").read_text(encoding="utf-8"))["scenes"]
        for scene in scenes:
            assert not Path(scene["red"]).is_absolute() and (moved / scene["red"]).is_file()


def test_open_results_reads_the_moved_run(moved: Path) -> None:
    with greensink.open_results(moved) as run:
        assert run.years == YEARS and run.levels == LEVELS
        district = run.zones("district", YEARS[-1])
        table = pd.read_csv(moved / f"results/{YEARS[-1]}/zones/district.csv", dtype={"zone_id": str})
        np.testing.assert_allclose(district.sort_values("zone_id")["carbon_t"].to_numpy(),
                                   table.sort_values("zone_id")["carbon_t"].to_numpy(), rtol=1e-9)
        assert float(run.rasters["carbon_t_ha"].sel(year=YEARS[0]).notnull().sum()) > 0


def test_snakemake_report_holds_the_planner_report_maps_and_captions(moved: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.zip"
    # as the README prints it: no --cores
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(moved),
           "--configfile", str(moved / "config.yaml"), "--report", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-6000:]
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        files = sorted(Path(n).name for n in names if "/data/raw/" in n)
        html = z.read(next(n for n in names if n.count("/") == 1 and n.endswith("/report.html"))).decode("utf-8")
        planner = [n for n in names if "/data/raw/" in n and n.endswith("/report.html")]
        assert len(planner) == 1
        assert z.read(planner[0]) == (moved / "results/report.html").read_bytes()  # the planner report itself
    assert files.count("carbon.png") == len(YEARS) and files.count("sink.png") == len(PAIRS)
    # zone tables, sink tables and each planning scenario's zone table (the demo ships three), and their comparison
    assert files.count("district.csv") == len(YEARS) + len(PAIRS) + len(SCENARIOS)
    assert files.count("summary.csv") == (1 if SCENARIOS else 0)
    assert files.count("models.json") == len(YEARS) and "provenance.json" in files
    # captions and categories in Snakemake's HTML (its JSON escapes non-ASCII text)
    def has(text: str) -> bool:
        return text in html or json.dumps(text)[1:-1] in html

    for text in ("Carbon density per pixel", "Yearly net sink per pixel", f"Zone table of {YEARS[-1]}",
                 f"Sink table {PAIRS[0][0]}–{PAIRS[0][1]}", "The planner report (规划报告)", "规划报告 Planner report",
                 "地图 Maps", "模型诊断 Model diagnostics", "greensink turns satellite imagery",
                 " → ".join(LEVELS)):
        assert has(text), text
