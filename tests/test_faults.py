"""Faults in real Snakemake runs (slow lane; issue 15): a rule failing on a bad input, an interrupted run
resumed, a full disk.

The project is the small own city of tests/test_bad_input_catalogue.py (tests/own_city.py plus plots and a
coefficient table): 2 years of Landsat-like files, 2 zone levels, about 30 jobs.

* A band file cut short after the preflight passed it (the preflight reads headers, not pixels) fails rule
  ingest: the rule's log holds the message (file, GDAL's reason, fix), the console shows it with the rule's
  name and the log path, no Python traceback anywhere, and the rule wrote no output.
* The process group is killed (SIGKILL, the worst case) while rule carbon runs; after ``--unlock`` the same
  command resumes, and every zone CSV is byte-identical to the uninterrupted run's, every raster equal in
  value, and no temporary file is left.
* Writes are made to fail while rule aggregate and the rules after it rewrite the zone tables (a file size limit,
  RLIMIT_FSIZE, in the Snakemake process and its jobs: the portable stand-in for a full disk, as a tmpfs needs
  root; GDAL then says only "Failed to commit transaction" or "Unknown GDAL Error"): the run stops with greensink's message (file, free space,
  run again) in the rule's log and on screen, without a traceback, and no output is left half-written; the
  same command without the limit resumes to identical outputs.
"""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import own_city  # noqa: E402
import test_bad_input_catalogue as catalogue  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.workflow]
BAND_2023 = "mydata/imagery/LC08_L2SP_118038_20230614_20240101_02_T1_SR_B5.TIF"


def write_project(root: Path) -> None:
    own_city.write_city(root / "mydata")
    catalogue.plot_points().to_file(root / "mydata" / "plots.gpkg", layer="plots")
    (root / "mydata" / "coefficients.csv").write_text(catalogue.COEFFICIENTS, encoding="utf-8")
    (root / "config.yaml").write_text(yaml.safe_dump(catalogue.BASE), encoding="utf-8")


def command(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(root),
            "--configfile", str(root / "config.yaml"), "--cores", "2", *args]


def run(root: Path, *args: str, limit_bytes: int | None = None) -> subprocess.CompletedProcess:
    def limit() -> None:
        if limit_bytes:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run(command(root, *args), capture_output=True, text=True, timeout=900, preexec_fn=limit)


def snapshot(root: Path) -> dict[str, object]:
    """Zone CSVs by their bytes, rasters by their values (NaN kept), under results/."""
    out: dict[str, object] = {}
    for p in sorted((root / "results").rglob("*")):
        rel = str(p.relative_to(root))
        if p.suffix == ".csv" and "/zones/" in rel:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        elif p.suffix == ".tif":
            with rasterio.open(p) as src:
                out[rel] = src.read()
    return out


def assert_same(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        if isinstance(a[k], str):
            assert a[k] == b[k], f"{k} differs"
        else:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def temporaries(root: Path) -> list[Path]:
    return sorted(p for p in (root / "results").rglob(".*.tmp*"))


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("faults")
    write_project(root)
    proc = run(root)
    assert proc.returncode == 0, proc.stderr[-6000:]
    return root, snapshot(root)


def test_a_bad_input_met_in_a_rule_is_in_its_log_and_on_screen_without_a_traceback(tmp_path):
    write_project(tmp_path)
    os.truncate(tmp_path / BAND_2023, 8000)  # the header survives, so the preflight passes it
    proc = run(tmp_path)
    assert proc.returncode != 0
    log = (tmp_path / "logs" / "ingest" / "2023.log").read_text(encoding="utf-8")
    for text in (log, proc.stderr):
        assert f"{tmp_path / BAND_2023}" in text and "IReadBlock failed" in text and "download or export it again" in text
        assert "Traceback" not in text
    assert "ERROR greensink.workflow: rule ingest: 2023: 1 scene(s) cannot be used" in proc.stderr
    assert "(log: logs/ingest/2023.log)" in proc.stderr
    assert not (tmp_path / "results" / "2023" / "ingest" / "scenes.json").exists()
    assert temporaries(tmp_path) == []


def test_a_run_killed_in_rule_carbon_resumes_to_identical_outputs(finished):
    root, before = finished
    started = time.time()
    proc = subprocess.Popen(command(root, "--forcerun", "carbon"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    logs = [root / "logs" / "carbon" / f"{y}.log" for y in catalogue.BASE["years"]]
    deadline = time.time() + 600
    while time.time() < deadline and not any(p.exists() and p.stat().st_mtime > started for p in logs):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # snakemake and every job it started, as a killed session would
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    years = catalogue.BASE["years"]
    assert [y for y in years if not (root / f"results/{y}/carbon.tif").exists()], "the kill missed rule carbon"
    for tif in (root / "results").rglob("*.tif"):  # whatever exists under an output's name is complete
        with rasterio.open(tif) as src:
            src.read()
    assert run(root, "--unlock").returncode == 0
    resumed = run(root)
    assert resumed.returncode == 0, resumed.stderr[-6000:]
    assert_same(before, snapshot(root))
    assert temporaries(root) == []


def test_a_full_disk_stops_with_a_message_and_no_half_file_then_resumes(finished):
    root, before = finished
    # zone GeoPackages are 96 KiB; rule logs and Snakemake's own records stay far below 64 KiB
    proc = run(root, "--forcerun", "aggregate", limit_bytes=64 * 1024)
    assert proc.returncode != 0
    failed = [p for p in (root / "logs").rglob("*.log") if "cannot be written" in p.read_text(encoding="utf-8")]
    assert failed
    for text in (failed[0].read_text(encoding="utf-8"), proc.stderr):
        assert ".gpkg: cannot be written" in text and "MiB free on its disk" in text and "ulimit -f, 65536 bytes" in text
        assert "run the same command again" in text and "Traceback" not in text
    assert f"(log: {failed[0].relative_to(root)})" in proc.stderr and "ERROR greensink.workflow: rule " in proc.stderr
    assert temporaries(root) == []
    for tif in (root / "results").rglob("*.tif"):
        with rasterio.open(tif) as src:
            src.read()
    resumed = run(root)
    assert resumed.returncode == 0, resumed.stderr[-6000:]
    assert_same(before, snapshot(root))
