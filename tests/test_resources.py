"""Job resources (greensink.resources): each rule's memory and wall time from the job's size.

Checked against hand computation and against the measured peaks they come from (benchmarks/README.md,
issue 14): a request below a measured peak would get the job killed on a cluster.
"""

from __future__ import annotations

import json
import os

import pytest
from affine import Affine

from greensink import resources
from greensink.grid import Grid
from greensink.workflow import LAUNCH_ENV, launch_context

DEMO = {"imagery": {"source": "demo"}, "demo": {"extent_m": 2000}, "resolution": 10, "tiles": {"size_px": None}}


def test_memory_and_time_by_hand():
    # aggregate on 9 Mpx: (800 + 200 * 9) MiB * 1.5 = 3900; 20 s/Mpx * 9 * 3 / 60 + 10 = 19 min
    assert resources.mem_mb("aggregate", 9.0) == 3900
    assert resources.runtime_min("aggregate", 9.0) == 19
    # a retry asks for twice as much
    assert resources.mem_mb("aggregate", 9.0, attempt=2) == 7800 and resources.runtime_min("aggregate", 9.0, 2) == 38
    # a streamed stage on a 2048 px tile: (600 + 4 * 4.194304) * 1.5 = 925.17 -> 926
    assert resources.mem_mb("composite_tile", 2048**2 / 1e6) == 926
    # two dask threads add the per-pixel part again, at least 100 MiB: (600 + 4 + 100) * 1.5 = 1056
    assert resources.mem_mb("composite", 1.0, threads=2) == 1056
    # a rule the table does not know counts as a whole-grid stage
    assert resources.mem_mb("some_new_rule", 1.0) == resources.mem_mb("aggregate", 1.0)


# measured peaks: issue 14 and benchmarks/README.md (10980² Sentinel-2 tile, 30 km demo), and the demo's jobs (/proc
# VmHWM of each rule script, 2026-12-04: the 5 km demo, 502² px, and a 10 km demo, 1002² px, 200 draws)
@pytest.mark.parametrize(("rule", "mpx", "peak_mib"), [
    ("composite", 10980**2 / 1e6, 982),   # issue 14: 3 dates, 10980²
    ("vegetation", 10980**2 / 1e6, 886),
    ("carbon", 36.0, 747),                # 6000², 5 types, 200 draws
    ("aggregate", 9.0, 2150),             # the 30 km demo: 2.1 GiB
    ("change", 9.0, 2048),                # 2.0 GiB
    ("aggregate", 502**2 / 1e6, 857),
    ("aggregate", 1002**2 / 1e6, 1016),
    ("change", 502**2 / 1e6, 1164),
    ("change", 1002**2 / 1e6, 1370),
    ("trend", 502**2 / 1e6, 683),
    ("build_demo", 502**2 / 1e6, 857),
    ("build_demo", 1002**2 / 1e6, 2354),
    ("model", 1002**2 / 1e6, 368),
    ("report", 502**2 / 1e6, 399),
    ("aggregate", 120.56, 27 * 1024),     # a whole Sentinel-2 tile in one job: about 27 GiB
    ("zone_coverage", 100.0, 1481),       # coverage_matrix on 10⁸ px, 50,000 parcels (CSR 1200 MiB)
])
def test_requests_cover_the_measured_peaks(rule, mpx, peak_mib):
    assert resources.mem_mb(rule, mpx) >= peak_mib
    assert resources.mem_mb(rule, mpx) <= 2 * peak_mib + 1000  # and do not ask for far more


@pytest.mark.parametrize(("rule", "mpx", "seconds"), [
    ("composite", 10980**2 / 1e6, 2 * 165),   # 0.73 Mpx/s; twice the times measured on an idle machine
    ("carbon", 36.0, 2 * 315),                # 0.11 Mpx/s, streamed
    ("aggregate", 9.0, 2 * 174),
    ("change", 9.0, 2 * 90),
    ("aggregate", 1002**2 / 1e6, 248),        # the 10 km demo's jobs on 2 cores at load 12-20
    ("change", 1002**2 / 1e6, 530),
    ("build_demo", 1002**2 / 1e6, 311),
    ("model", 1002**2 / 1e6, 48),
])
def test_runtimes_cover_the_measured_times(rule, mpx, seconds):
    assert resources.runtime_min(rule, mpx) * 60 >= seconds


def test_job_size_from_tile_grid_or_demo(tmp_path):
    # before the grid exists: the demo's extent, 200 x 200 px
    assert resources.job_mpx(DEMO, {"year": "2023"}, tmp_path) == pytest.approx(0.04)
    assert resources.job_mpx({**DEMO, "imagery": {"source": "files"}}, {}, tmp_path) == resources.UNKNOWN_MPX
    # once prepare_zones has written the grid: its pixels (here 300 x 250)
    grid = Grid(crs="EPSG:32651", transform=Affine(10, 0, 0, 0, -10, 0), width=300, height=250)
    (tmp_path / "results/zones").mkdir(parents=True)
    (tmp_path / resources.GRID_FILE).write_text(json.dumps(grid.to_dict()), encoding="utf-8")
    assert resources.job_mpx(DEMO, {"year": "2023"}, tmp_path) == pytest.approx(0.075)
    # a tile job: the tile, at most the grid
    tiled = {**DEMO, "tiles": {"size_px": 128}}
    assert resources.job_mpx(tiled, {"year": "2023", "tile": "r000c000"}, tmp_path) == pytest.approx(128**2 / 1e6)
    assert resources.job_mpx({**DEMO, "tiles": {"size_px": 1000}}, {"tile": "r000c000"}, tmp_path) == pytest.approx(0.075)
    assert resources.job_mpx(tiled, {"year": "2023"}, tmp_path) == pytest.approx(0.075)  # the mosaic: whole grid


def test_launch_context_main_records_and_cluster_job_reads(tmp_path, monkeypatch):
    monkeypatch.delenv(LAUNCH_ENV, raising=False)
    # a cluster job without a record: its own folder is the project folder
    assert launch_context(tmp_path / "project", False, main=False) == (str(tmp_path / "project"), True)
    assert launch_context(tmp_path, False, main=True) == (str(tmp_path), False)
    assert json.loads(os.environ[LAUNCH_ENV]) == {"base": str(tmp_path.resolve()), "directory_given": False}
    # the job starts in the project folder, without --directory: it takes the main process's
    assert launch_context(tmp_path / "projects" / "city", False, main=False) == (str(tmp_path.resolve()), False)
