"""Job resources for a cluster scheduler: memory (MiB) and wall time (minutes) of each rule's job from its size.

A job's size is the number of pixels it works on: a ``{tile}`` job's tile (``tiles.size_px`` squared, at most
the grid), every other job's analysis grid (``results/zones/grid.json``, written by checkpoint prepare_zones),
and before the grid exists (rule build_demo, the dry run) the demo's extent or :data:`UNKNOWN_MPX`.
Snakemake evaluates a rule's resources again when the job is ready to run, so the grid is read by then.

Each rule has a fixed part and a part per million pixels (Mpx), both from measured peaks and times
(``benchmarks/README.md``, docs/method.md section "Job resources"):

* streamed per-pixel stages (composite, mosaic, vegetation, NDVI SE, carbon) read and write row strips,
  so their memory hardly grows with the area: 930-982 MiB for a 10980 × 10980 grid (120 Mpx) with the
  composite, 888 MiB with vegetation, 717 MiB for carbon on 36 Mpx;
* whole-grid stages hold rasters and their draws: aggregate 857 MiB on the 5 km demo (0.25 Mpx, 200 draws),
  1016 MiB on a 10 km demo (1 Mpx), 2.1 GiB on issue 14's 30 km demo (9 Mpx); change 1164 MiB, 1370 MiB and
  2.0 GiB; the demo generator 2354 MiB on 1 Mpx (its truth has 25 cells of 2 m per pixel);
* small jobs (zones, ingest, model, tables, report, QGIS) peak at 170-400 MiB on the demos.

Memory is the rule's figure × :data:`MEMORY_MARGIN`, times the attempt (a retried job asks for more);
the wall time is the measured seconds per Mpx × :data:`TIME_MARGIN` (shared, slower nodes) plus
:data:`MIN_RUNTIME_MIN`, times the attempt. A rule not in the table is taken as a whole-grid stage.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from greensink.grid import Grid

GRID_FILE = "results/zones/grid.json"
UNKNOWN_MPX = 1.0  # the size assumed before the grid exists and without a demo extent (replaced once it does)
MEMORY_MARGIN = 1.5  # measured peaks × this: other engineers' machines, other data, Python's allocator
TIME_MARGIN = 3.0  # measured times × this: the benchmarks ran on 2 cores, cluster cores may be slower or shared
MIN_RUNTIME_MIN = 10  # minutes every job gets beyond its share: start-up, reading the Snakefile, slow file systems


@dataclass(frozen=True)
class RuleCost:
    """A rule's measured peak memory and time: ``base_mib + mib_per_mpx × Mpx`` and ``s_per_mpx × Mpx``."""

    base_mib: float
    mib_per_mpx: float
    s_per_mpx: float
    source: str  # where the figures come from


STREAMED = RuleCost(600, 4, 1.5, "composite 982 MiB, 0.73 Mpx/s on 120 Mpx; vegetation 886 MiB, 1.58 Mpx/s")
WHOLE_GRID = RuleCost(800, 200, 20, "aggregate 857 MiB on 0.25 Mpx, 1016 MiB on 1 Mpx, 2.1 GiB and 174 s on 9 Mpx")
SMALL = RuleCost(400, 20, 2, "zones, ingest, tables, provenance, QGIS: 170-400 MiB on the demos")

COSTS: dict[str, RuleCost] = {
    "build_demo": RuleCost(300, 2100, 300, "demo generator 857 MiB on 0.25 Mpx, 2354 MiB and 311 s on 1 Mpx (2 m truth cells)"),
    "prepare_zones": SMALL,
    "zone_coverage": RuleCost(400, 16, 1, "coverage_matrix 1481 MiB peak, 3.7 s on 100 Mpx (CSR 1200 MiB)"),
    "zone_coverage_tile": RuleCost(400, 16, 1, "250 MiB on a 1024-px tile, 298 MiB on 2048 px (10k parcels read whole)"),
    "ingest": SMALL,
    "composite": STREAMED,
    "composite_tile": STREAMED,
    "mosaic": STREAMED,
    "vegetation": STREAMED,
    "vegetation_endmembers": STREAMED,  # reads the whole composite, a strip of one tile at a time
    "vegetation_tile": STREAMED,  # a {tile} job: its Mpx is the tile's (job_mpx)
    "vegetation_mosaic": STREAMED,
    "ndvi_se": STREAMED,
    "ndvi_se_tile": STREAMED,
    "ndvi_se_mosaic": STREAMED,
    "carbon": RuleCost(600, 6, 9.1, "carbon streamed 717 MiB, 0.11 Mpx/s on 36 Mpx with 200 draws"),
    "carbon_tile": RuleCost(600, 6, 9.1, "as carbon, on the tile's pixels"),
    "carbon_mosaic": STREAMED,
    "scenario_plan": RuleCost(350, 6, 1, "scenario_plan in strips (a row of the files' blocks at a time): 362 MiB, "
                              "2.5 s CPU on 4.2 Mpx, 432 MiB, 8.6 s on 16.8 Mpx (tile_scenario.py); grows with the "
                              "grid's width, not its area"),
    "scenario_inputs_tile": RuleCost(300, 150, 5, "scenario_inputs_tile 296 MiB on a 256-px tile, 440 MiB, 1.5 s CPU "
                                     "on 1024 px (tile_scenario.py, 110 change polygons)"),
    "scenario_inputs_mosaic": STREAMED,
    "scenario_carbon_tile": RuleCost(620, 140, 45, "scenario_carbon_tile 622 MiB on a 256-px tile, 760 MiB, 15 s CPU "
                                     "(46 s wall, loaded) on 1024 px (tile_scenario.py: exact percentiles, 200 draws)"),
    "scenario_carbon_mosaic": STREAMED,
    "scenario_zones": RuleCost(810, 325, 20, "scenario_zones 1137 MiB, 20 s CPU on 1 Mpx, 2110 MiB, 81 s on 4 Mpx "
                               "(workflow_scale.py: both states' layers and draws of the whole grid)"),
    "scenario_zones_tile": RuleCost(680, 120, 30, "scenario_zones_tile, the corrections in row-bounded chunks: 764-771 "
                                    "MiB, 17 s CPU (median) on a 1024-px tile of a 2048² grid, 4096 parcels, 200 draws "
                                    "(tile_scenario_zones.py); 671-706 MiB, 7-9.5 s on a 512-px tile before that fix"),
    "scenario_zones_gather": RuleCost(300, 10, 1, "rule scenario_zones of a tiled run: 309-312 MiB, 0.8-1.3 s CPU for "
                                      "1090 zones × 200 draws (tile_scenario_zones.py); no raster, zones × draws"),
    "fill": RuleCost(350, 56, 5.3, "fill 1112 MiB peak, 84 s on 16 Mpx (5 types, 2 predictors, 200 draws)"),
    "fill_tile": RuleCost(350, 56, 5.3, "fill_tile 393 MiB, 10 s on a 1024-px tile; 538 MiB, 25 s on 2048 px"),
    "fill_gather": SMALL,  # reads the tiles' JSON sums: no raster
    "types": RuleCost(400, 40, 2, "per-type fraction rasters of the whole grid"),
    "plot_carbon": SMALL,
    "model": RuleCost(400, 40, 2, "predictor rasters read whole at the plots"),
    "aggregate": WHOLE_GRID,
    "aggregate_tile": RuleCost(500, 80, 20, "aggregate_tile 497 MiB, 3.4 s CPU on a 512-px tile, 747 MiB, 15 s on "
                               "1024 px (200 draws, tile_memory.py); the tile's rasters and one chunk's draws"),
    "aggregate_gather": RuleCost(300, 10, 1, "rule aggregate of a tiled run: 305 MiB, 0.6 s for 4.2 Mpx and 4357 zones "
                                 "× 200 draws; no raster, 48 bytes per zone and draw and level"),
    "targets": SMALL,
    "change": RuleCost(1000, 250, 60, "change 1164 MiB on 0.25 Mpx, 1370 MiB on 1 Mpx, 2.0 GiB and 90 s on 9 Mpx"),
    "change_tile": RuleCost(400, 300, 50, "change_tile 438-519 MiB, 6.5-8.1 s CPU (12-17 s wall) on a 512-px tile of "
                            "a 1024² / 2048² grid (200 draws, tile_memory.py); the tile's windows and coverage"),
    "change_gather": RuleCost(300, 85, 6, "rule change of a tiled run: 385 MiB on 1 Mpx, 664 MiB and 9.8 s CPU on "
                              "4.2 Mpx (165,000 lost patches), measured with two grid-sized int32 arrays for the patches, "
                              "since labelled tile by tile (per-Mpx part kept: the lost pixels grow with the area)"),
    "trend": RuleCost(800, 400, 90, "trend 683 MiB on 0.25 Mpx; 2384 MiB and 367 s CPU on 4.2 Mpx (3 years, 200 draws, "
                      "tile_memory.py --only trend): every year's rasters and the grid's four bands"),
    "trend_tile": RuleCost(400, 300, 100, "trend_tile 466 MiB, 22 s CPU (median) on a 512-px tile of a 2048² grid (3 "
                           "years, 200 draws, tile_memory.py); every year's windows and one chunk's draws"),
    "trend_gather": RuleCost(400, 40, 2, "rule trend of a tiled run: 521 MiB, 3.7 s CPU on 4.2 Mpx (4357 zones × 200 "
                             "draws × 3 years); the mosaic in strips and one level's zone sums, no other raster"),
    "transitions": WHOLE_GRID,
    "transitions_tiled": RuleCost(450, 220, 34, "rule transitions of a tiled run, Mpx the tile's: 440 MiB on 512-px tiles "
                                  "of a 2048² grid (untiled 1159 MiB), 141 s wall, 25 s CPU (zoning_memory.py)"),
    "zoning_tiled": RuleCost(500, 90, 5, "zoning rules of a tiled run, Mpx the tile's: 481 MiB on 512-px tiles of a "
                             "2048² grid (untiled 591-702 MiB), 11-21 s wall, 3.4-4.2 s CPU (zoning_memory.py)"),
    "comparability": SMALL,
    "report": RuleCost(600, 40, 5, "maps drawn from the rasters"),
    "provenance": SMALL,
    "qgis_styles": SMALL,
    "qgis_project": SMALL,
}


def cost(rule: str) -> RuleCost:
    """The rule's cost figures; a rule not in :data:`COSTS` counts as a whole-grid stage."""
    return COSTS.get(rule, WHOLE_GRID)


# rules that in a tiled run (tiles.size_px) add up their tiles' sums instead of reading the whole grid: their costs
TILED_GATHERS = {"aggregate": "aggregate_gather", "change": "change_gather", "scenario_zones": "scenario_zones_gather",
                 "trend": "trend_gather"}


# rules that in a tiled run stream tile by tile within one job (the tiles' coverage, a tile's windows): their costs,
# whose memory grows with the tile (job_mem_mb takes the tile's Mpx), their time with the grid
TILE_STREAMED = {"transitions": "transitions_tiled", "zoning_canopy_gap": "zoning_tiled",
                 "zoning_importance": "zoning_tiled", "zoning_potential": "zoning_tiled"}


def cost_rule(rule: str, cfg: Mapping) -> str:
    """The :data:`COSTS` entry of ``rule``'s jobs in a run of config ``cfg``: ``rule`` itself, or in a tiled run
    the gather's entry of a rule of :data:`TILED_GATHERS` (rule aggregate then reads no raster) or the tile-streamed
    entry of a rule of :data:`TILE_STREAMED`."""
    tiled = (cfg.get("tiles") or {}).get("size_px") is not None
    return (TILED_GATHERS.get(rule) or TILE_STREAMED.get(rule) or rule) if tiled else rule


def grid_pixels(workdir: str | Path = ".") -> int | None:
    """Pixels of the analysis grid once checkpoint prepare_zones has written it, else None."""
    path = Path(workdir) / GRID_FILE
    if not path.is_file():
        return None
    grid = Grid.read(path)
    return grid.width * grid.height


def job_mpx(cfg: Mapping, wildcards: Mapping, workdir: str | Path = ".") -> float:
    """Million pixels a job works on: a tile for a job with a ``tile`` wildcard, else the grid (see module doc)."""
    grid_px = grid_pixels(workdir)
    if grid_px is None and cfg.get("imagery", {}).get("source") == "demo" and cfg.get("demo", {}).get("extent_m"):
        grid_px = math.ceil(cfg["demo"]["extent_m"] / cfg["resolution"]) ** 2
    size_px = (cfg.get("tiles") or {}).get("size_px")
    if "tile" in wildcards and size_px:
        tile_px = int(size_px) ** 2
        return (tile_px if grid_px is None else min(tile_px, grid_px)) / 1e6
    return UNKNOWN_MPX if grid_px is None else grid_px / 1e6


def mem_mb(rule: str, mpx: float, threads: int = 1, attempt: int = 1) -> int:
    """Memory to ask for, MB: (base + per-Mpx × Mpx) × :data:`MEMORY_MARGIN` × attempt. Threads beyond the
    first each add the per-pixel part again (their chunks are in flight at once), at least 100 MiB each."""
    c = cost(rule)
    per_thread = max(c.mib_per_mpx * mpx, 100.0) * max(int(threads) - 1, 0)
    return int(math.ceil((c.base_mib + c.mib_per_mpx * mpx + per_thread) * MEMORY_MARGIN * max(int(attempt), 1)))


def runtime_min(rule: str, mpx: float, attempt: int = 1) -> int:
    """Wall time to ask for, minutes: measured s/Mpx × Mpx × :data:`TIME_MARGIN` + :data:`MIN_RUNTIME_MIN`,
    times the attempt."""
    minutes = cost(rule).s_per_mpx * mpx * TIME_MARGIN / 60.0 + MIN_RUNTIME_MIN
    return int(math.ceil(minutes * max(int(attempt), 1)))


# ----------------------------------------------------------------------------- gathers: zones × draws, not pixels

ZONE_FILE = "results/zones/{level}.gpkg"
GATHER_BASE_MIB = 300  # a gather's process before its sums: Python, the package, the zone layers' ids
# the change and trend gathers in zone blocks (benchmarks/change_gather_memory.py, 16 tiles, 200 draws): change
# 1626 MiB at 102 041 zones over 4 levels, 2525 MiB at 1 002 041 with the tables (blocks of 100 000): 1047 bytes per
# zone and 64 per zone and draw of a block; trend (3 years) 1174 MiB at 50 000 zones, 1455 at 200 000 (blocks of
# 20 000): 1964 bytes per zone and 68 per zone, draw and year of a block. Rounded up:
CHANGE_BLOCK_BYTES = 70.0  # per zone and draw of one zone block: its seven (zones × draws) sums and their summaries
CHANGE_ZONE_BYTES = 1100.0  # per zone of every level: the (Z,) sums, the draws' summaries, the tables
TREND_BLOCK_BYTES = 72.0  # per zone, draw and year of one zone block: its sums and the Theil–Sen fits' arrays
TREND_ZONE_BYTES = 2100.0  # per zone of the largest level: its table and the years' tables


@dataclass(frozen=True)
class GatherCost:
    """A gather's memory above :data:`GATHER_BASE_MIB`: ``per_zone_draw`` bytes per zone and draw (× years for
    ``per_year``) over the zones it holds draws of at once, and ``per_zone`` bytes per zone over the zones it holds
    tables and per-zone sums of. ``over`` says which zones: the largest level's ("largest": one level after another)
    or every level's ("sum"); ``block`` (zones) caps the zones whose draws are held at once (a gather in zone
    blocks), None for a level's whole draws."""

    per_zone_draw: float
    per_zone: float
    over: str
    block: int | None
    per_year: bool
    source: str


GATHER_COSTS: dict[str, GatherCost] = {
    "aggregate_gather": GatherCost(17.2, 0.0, "largest", None, False, "benchmarks/gather_memory.py: 3585 MiB at 10⁶ zones "
                                   "× 200 draws, one level (the level's draws, np.quantile's copy, one 100 000-zone "
                                   "block of per-source parts)"),
    "change_gather": GatherCost(CHANGE_BLOCK_BYTES, CHANGE_ZONE_BYTES, "sum", 100_000, False,
                                "benchmarks/change_gather_memory.py: 1626 MiB at 102 041 zones, 2525 MiB at 1 002 041 "
                                "(4 levels, 200 draws, blocks of 100 000 zones, greensink.aggregate.tiles.ZONE_BLOCK)"),
    "trend_gather": GatherCost(TREND_BLOCK_BYTES, TREND_ZONE_BYTES, "largest", 20_000, True,
                               "benchmarks/change_gather_memory.py: 1174 MiB at 50 000 zones, 1455 MiB at 200 000 "
                               "(3 years, 200 draws, blocks of 20 000 zones, greensink.trend_tiles.TREND_ZONE_BLOCK)"),
}
GATHER_BYTES_PER_ZONE_DRAW = GATHER_COSTS  # the gathers job_mem_mb costs from their zones (tests/test_slurm.py)


def zone_counts(levels: list[str], workdir: str | Path = ".") -> list[int] | None:
    """The number of zones of each level (results/zones/{level}.gpkg, read from the layer's header with
    pyogrio.read_info, not its features), or None before checkpoint prepare_zones has written them all."""
    import pyogrio

    paths = [Path(workdir) / ZONE_FILE.format(level=level) for level in levels]
    if not paths or not all(p.is_file() for p in paths):
        return None
    return [int(pyogrio.read_info(p)["features"]) for p in paths]


def gather_mem_mb(rule: str, counts: list[int], draws: int, attempt: int = 1, years: int = 1) -> int:
    """Memory to ask for, MB, for a gather of :data:`GATHER_COSTS` over zone layers of ``counts`` zones with
    ``draws`` bootstrap draws (and ``years`` years, for a gather whose draws are per year): (base + per zone and draw
    × the zones whose draws it holds at once × draws [× years] + per zone × the zones it holds) ×
    :data:`MEMORY_MARGIN` × attempt, the zones being the largest level's or every level's as the rule holds them,
    those with draws at most one zone block."""
    c = GATHER_COSTS[rule]
    zones = (max(counts) if c.over == "largest" else sum(counts)) if counts else 0
    held = min(zones, c.block, max(counts)) if c.block is not None and counts else zones
    per_draw = c.per_zone_draw * held * int(draws) * (max(int(years), 1) if c.per_year else 1)
    mib = GATHER_BASE_MIB + (per_draw + c.per_zone * zones) / 2**20
    return int(math.ceil(mib * MEMORY_MARGIN * max(int(attempt), 1)))


def job_mem_mb(rule: str, cfg: Mapping, wildcards: Mapping, threads: int = 1, attempt: int = 1,
               workdir: str | Path = ".") -> int:
    """A job's mem_mb (what common.smk's job_mem_mb asks for): :func:`mem_mb` of its :func:`cost_rule` entry on its
    :func:`job_mpx` (a tile's for a rule of :data:`TILE_STREAMED` in a tiled run), and for a gather of
    :data:`GATHER_COSTS` at least :func:`gather_mem_mb` of the run's zone layers (:func:`zone_counts`, known once
    they exist), draws (model.n_bootstrap) and years."""
    entry = cost_rule(rule, cfg)
    if entry in TILE_STREAMED.values():  # memory bounded by one tile
        wildcards = {**wildcards, "tile": ""}
    mem = mem_mb(entry, job_mpx(cfg, wildcards, workdir), threads, attempt)
    if entry in GATHER_COSTS:
        counts = zone_counts([z["level"] for z in cfg.get("zones") or []], workdir)
        if counts:
            draws = int((cfg.get("model") or {}).get("n_bootstrap", 200))
            mem = max(mem, gather_mem_mb(entry, counts, draws, attempt, years=len(cfg.get("years") or [])))
    return mem
