"""A tiled run's gathers (rules aggregate, change and trend) ask for memory from their zones, draws and zone blocks
(greensink.resources): by hand, against the peaks benchmarks/gather_memory.py and benchmarks/change_gather_memory.py
measured, and from zone layers read at run time (their feature count from the GeoPackage header)."""

from __future__ import annotations

import json
import math

import geopandas as gpd
import pytest
from affine import Affine
from shapely.geometry import box

from greensink import resources
from greensink.grid import Grid

LEVELS = ["city", "block"]
TILED = {"imagery": {"source": "files"}, "resolution": 10, "tiles": {"size_px": 128}, "model": {"n_bootstrap": 5000},
         "zones": [{"level": level} for level in LEVELS]}


def write_zones(root, counts: dict[str, int]) -> None:
    (root / "results/zones").mkdir(parents=True, exist_ok=True)
    for level, n in counts.items():
        gpd.GeoDataFrame({"zone_id": [f"{level}{i}" for i in range(n)]},
                         geometry=[box(i, 0, i + 1, 1) for i in range(n)], crs="EPSG:32651").to_file(
            root / f"results/zones/{level}.gpkg", driver="GPKG")


def test_gather_memory_by_hand():
    # aggregate: the largest level, 10⁶ zones × 200 draws × 17.2 B = 3280.6 MiB, + 300 MiB, × 1.5 = 5370.9 -> 5371
    assert resources.gather_mem_mb("aggregate_gather", [1, 50, 1_000_000], 200) == 5371
    # change in zone blocks of 100 000: one block's draws, 100 000 × 200 × 70 B = 1335.1 MiB, and every level's zones,
    # 1 002 041 × 1100 B = 1051.2 MiB: (300 + 1335.1 + 1051.2) × 1.5 = 4029.4 -> 4030 (it was 24 GiB unblocked)
    assert resources.gather_mem_mb("change_gather", [1, 40, 2000, 1_000_000], 200) == 4030
    # a level below the block holds its own zones' draws: 950 × 1000 × 70 B = 63.42 MiB, 1000 × 1100 B = 1.05 MiB
    assert resources.gather_mem_mb("change_gather", [1, 49, 950], 1000) == math.ceil((300 + 63.42 + 1.05) * 1.5) == 547
    # trend in blocks of 20 000 zones of the largest level, per year: 20 000 × 200 × 3 × 72 B = 824.0 MiB, 10⁶ × 2100 B
    # = 2002.7 MiB: (300 + 824.0 + 2002.7) × 1.5 = 4690.1 -> 4691; a year more adds one year's block, 274.7 MiB × 1.5
    assert resources.gather_mem_mb("trend_gather", [1, 1_000_000], 200, years=3) == 4691
    assert resources.gather_mem_mb("trend_gather", [1, 1_000_000], 200, years=4) == 5103
    # a retry asks for twice as much
    assert resources.gather_mem_mb("change_gather", [1, 49, 950], 1000, attempt=2) == 2 * 547


def test_gather_blocks_are_the_gathers_own():
    from greensink.aggregate.tiles import ZONE_BLOCK
    from greensink.trend_tiles import TREND_ZONE_BLOCK

    assert resources.GATHER_COSTS["change_gather"].block == ZONE_BLOCK  # run_change_gather's default zone_block
    assert resources.GATHER_COSTS["trend_gather"].block == TREND_ZONE_BLOCK


@pytest.mark.parametrize(("rule", "counts", "draws", "years", "peak_mib"), [
    ("aggregate_gather", [1_000_000], 200, 1, 3585),  # gather_memory.py, 10⁶ zones, one level
    ("aggregate_gather", [1, 16, 256, 4084], 200, 1, 305),  # tile_memory.py: 4357 zones, 4.2 Mpx
    ("change_gather", [1, 40, 2000, 100_000], 200, 2, 1626),  # change_gather_memory.py, in zone blocks
    ("change_gather", [1, 40, 2000, 1_000_000], 200, 2, 2525),  # and the tables
    ("trend_gather", [50_000], 200, 3, 1174),  # change_gather_memory.py, trend in zone blocks
    ("trend_gather", [200_000], 200, 3, 1455),
    ("trend_gather", [1, 16, 256, 4084], 200, 3, 521),  # tile_memory.py --only trend: the level whole, 4.2 Mpx
])
def test_gather_requests_cover_the_measured_peaks(rule, counts, draws, years, peak_mib):
    ask = resources.gather_mem_mb(rule, counts, draws, years=years)
    assert peak_mib <= ask <= 2 * peak_mib + 1000


def test_change_gather_at_a_million_parcels_asks_under_the_bound():
    # issue 14: 10⁶ parcels under 8 GiB; measured 2525 MiB, asked 4030 MB (× 1.5 margin); trend's 3 years 4691 MB
    assert resources.gather_mem_mb("change_gather", [1, 40, 2000, 1_000_000], 200) < 8 * 1024
    assert resources.gather_mem_mb("trend_gather", [1, 40, 2000, 1_000_000], 200, years=3) < 8 * 1024


def test_zone_counts_from_the_layers_once_they_exist(tmp_path):
    assert resources.zone_counts(LEVELS, tmp_path) is None  # before prepare_zones
    write_zones(tmp_path, {"city": 1})
    assert resources.zone_counts(LEVELS, tmp_path) is None  # not all levels yet
    write_zones(tmp_path, {"block": 2000})
    assert resources.zone_counts(LEVELS, tmp_path) == [1, 2000]


def test_job_mem_mb_of_a_tiled_gather_grows_with_its_zones(tmp_path):
    grid = Grid(crs="EPSG:32651", transform=Affine(10, 0, 0, 0, -10, 0), width=300, height=250)  # 0.075 Mpx
    (tmp_path / "results/zones").mkdir(parents=True)
    (tmp_path / resources.GRID_FILE).write_text(json.dumps(grid.to_dict()), encoding="utf-8")
    by_pixels = {r: resources.mem_mb(resources.cost_rule(r, TILED), 0.075) for r in ("aggregate", "change")}
    # before the zone layers exist: the pixel-based figure of the gather's entry
    assert resources.job_mem_mb("aggregate", TILED, {}, workdir=tmp_path) == by_pixels["aggregate"]
    write_zones(tmp_path, {"city": 1, "block": 2000})
    # aggregate: 2000 zones × 5000 draws × 17.2 B = 164.03 MiB; (300 + 164.03) × 1.5 = 696.05 -> 697
    agg = resources.job_mem_mb("aggregate", TILED, {}, workdir=tmp_path)
    assert agg == math.ceil((300 + 17.2 * 2000 * 5000 / 2**20) * 1.5) == 697 > by_pixels["aggregate"]
    # change: the block is the largest level, 2000 zones × 5000 draws × 70 B = 667.6 MiB, + 2001 zones × 1100 B =
    # 2.1 MiB; (300 + 667.6 + 2.1) × 1.5 = 1454.6 -> 1455
    assert resources.job_mem_mb("change", TILED, {}, workdir=tmp_path) == 1455
    # trend over the config's 3 years: 2000 × 5000 × 3 × 72 B = 2059.9 MiB + 2000 × 2100 B = 4.0 MiB -> 3546
    assert resources.job_mem_mb("trend", {**TILED, "years": [2020, 2021, 2024]}, {}, workdir=tmp_path) == 3546
    # an untiled run's rule aggregate reads the rasters: its pixel figure, no zone term
    untiled = {**TILED, "tiles": {"size_px": None}}
    assert resources.job_mem_mb("aggregate", untiled, {}, workdir=tmp_path) == resources.mem_mb("aggregate", 0.075)
    # a tile job is not a gather
    assert resources.job_mem_mb("aggregate_tile", TILED, {"tile": "r000c000"}, workdir=tmp_path) == resources.mem_mb(
        "aggregate_tile", 128**2 / 1e6)


def test_transitions_and_zoning_of_a_tiled_run_ask_for_a_tile(tmp_path):
    grid = Grid(crs="EPSG:32651", transform=Affine(10, 0, 0, 0, -10, 0), width=10980, height=10980)  # 120.56 Mpx
    (tmp_path / "results/zones").mkdir(parents=True)
    (tmp_path / resources.GRID_FILE).write_text(json.dumps(grid.to_dict()), encoding="utf-8")
    tiled = {**TILED, "tiles": {"size_px": 2048}}
    # transitions: (450 + 220 × 4.194304) × 1.5 = 2059.1 -> 2060 MB for a 2048-px tile, whatever the grid
    assert resources.job_mem_mb("transitions", tiled, {}, workdir=tmp_path) == 2060
    # zoning: (500 + 90 × 4.194304) × 1.5 = 1316.2 -> 1317; measured 481 MiB on 512-px tiles (0.26 Mpx) is covered
    assert resources.job_mem_mb("zoning_importance", tiled, {"year": "2024"}, workdir=tmp_path) == 1317
    assert resources.mem_mb("zoning_tiled", 512**2 / 1e6) >= 481 and resources.mem_mb("transitions_tiled", 0.262) >= 440
    # their time still grows with the grid: 34 s/Mpx × 120.56 × 3 / 60 + 10 = 214.95 -> 215 min
    assert resources.runtime_min(resources.cost_rule("transitions", tiled), 120.56) == 215
    # untiled: the whole-grid stage, 37 GB for this grid
    untiled = {**TILED, "tiles": {"size_px": None}}
    assert resources.job_mem_mb("transitions", untiled, {}, workdir=tmp_path) == resources.mem_mb("transitions", 10980**2 / 1e6)
    assert resources.mem_mb("transitions", 120.56) > 36_000
