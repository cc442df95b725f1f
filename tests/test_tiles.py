"""End to end: a tiled run (tiles.size_px) gives the same products as the untiled one.

The small demo city of tests/test_workflow.py (2 km, a 202 × 202 pixel grid) runs twice up to
NDVI: untiled (the session's shared baseline run, tests/conftest.py), and in tiles of 96 px (3 × 3
tiles, the last row and column 10 px wide). The grid is only known once checkpoint prepare_zones
has run; from then on the dry run lists one composite_tile job per year and tile, and the mosaicked
composite and the NDVI made from it are byte-identical to the untiled run's.
"""

from __future__ import annotations

import re

import pytest
import rasterio
import yaml

from greensink.grid import Grid
from test_workflow import YEARS, small_config, snakemake

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

SIZE_PX = 96
TARGETS = [f"results/{year}/ndvi.tif" for year in YEARS]


def tiled_config(workdir, size_px=SIZE_PX):
    path = small_config(workdir)
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    cfg["tiles"] = {"size_px": size_px}
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def job_counts(dry_run_output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> number of jobs."""
    table = dry_run_output.split("Job stats:", 1)[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, baseline_run):
    untiled = baseline_run  # the session's shared untiled run of the same config (tests/conftest.py)
    tiled = tmp_path_factory.mktemp("tiled")
    tiled_config(tiled)
    before = snakemake(tiled, "-n")  # the grid is not made yet: the tiles are not known
    snakemake(tiled, "--", "results/zones/grid.json")
    dry = snakemake(tiled, "-n", "--", *TARGETS)
    snakemake(tiled, "--", *TARGETS)
    return untiled, tiled, before.stdout + before.stderr, dry.stdout + dry.stderr


def test_dry_run_lists_one_composite_tile_job_per_year_and_tile(runs):
    _, tiled, before, dry = runs
    assert "checkpoint prepare_zones" in before and "DAG of jobs will be updated after completion" in before
    assert "rule composite:" not in before
    grid = Grid.read(tiled / "results/zones/grid.json")
    assert grid.shape == (202, 202)
    tiles = grid.tiles(SIZE_PX)
    assert len(tiles) == 9
    counts = job_counts(dry)
    assert counts["composite_tile"] == len(YEARS) * len(tiles) and counts["mosaic"] == len(YEARS)
    assert "composite" not in counts
    for t in tiles:
        assert f"results/{YEARS[0]}/tiles/composite_{t.id}.tif" in dry


def test_tiled_ndvi_and_composite_equal_the_untiled_run(runs):
    untiled, tiled, _, _ = runs
    for year in YEARS:
        for name in ("composite", "ndvi"):
            a = (untiled / f"results/{year}/{name}.tif").read_bytes()
            b = (tiled / f"results/{year}/{name}.tif").read_bytes()
            assert a == b, f"{name}.tif of {year} differs between the tiled and the untiled run"
        assert not (untiled / f"results/{year}/tiles").exists()


def test_tile_files_are_cogs_of_their_window(runs):
    _, tiled, _, _ = runs
    grid = Grid.read(tiled / "results/zones/grid.json")
    year = YEARS[0]
    names = sorted(p.name for p in (tiled / f"results/{year}/tiles").iterdir() if p.name.startswith("composite_"))
    assert names == sorted(f"composite_{t.id}.tif" for t in grid.tiles(SIZE_PX))  # vegetation tiles beside them
    with rasterio.open(tiled / f"results/{year}/composite.tif") as whole:
        for t in grid.tiles(SIZE_PX):
            with rasterio.open(tiled / f"results/{year}/tiles/composite_{t.id}.tif") as src:
                assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
                assert (src.height, src.width) == t.shape
                assert src.transform == grid.subgrid(t).transform
                window = rasterio.windows.Window(t.col_off, t.row_off, t.width, t.height)
                assert src.read().tobytes() == whole.read(window=window).tobytes()
    edge = grid.tile("r002c002", SIZE_PX)
    assert edge.shape == (10, 10)
    assert (tiled / f"logs/composite/{year}/{edge.id}.log").is_file()
    assert (tiled / f"logs/mosaic/{year}.log").is_file()


def test_tiled_rerun_does_nothing_and_lints_clean(runs):
    _, tiled, _, _ = runs
    proc = snakemake(tiled, "-n", "--", *TARGETS)
    assert "Nothing to be done" in proc.stdout + proc.stderr
    lint = snakemake(tiled, "--lint", check=False)
    assert lint.returncode == 0, (lint.stdout + lint.stderr)[-3000:]
