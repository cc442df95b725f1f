"""Rule trend per tile when a tile touches zones but holds no typed land (found by tests/test_own_data_tiles.py: the
own city in 80-px tiles, whose last column of tiles is 1 px of built-up land inside a district): the tile's parts had
one draw column (zone_draw_sums' zeros when no pixel is drawn) where the other tiles have n_draws, and rule trend's
gather refused them ("draws_0 has (1,) values per zone, another tile (40,)").

The hand-built case of tests/test_trend_tiles.py with every type share set to 0 in the last tile (rows 20-22, columns
20-28: zones touch it) in every year: the gather runs, and its tables equal rule trend's untiled runner on the same
rasters within rtol 1e-12.
"""

from __future__ import annotations

import numpy as np
import pytest

from greensink import io as gio
from greensink.coverage import tile_coverage_matrix
from greensink.trend import run_trend
from greensink.trend_tiles import run_trend_gather, run_trend_tile
from tables_compare import assert_tables_close
from test_change_tiles import GRID, LEVELS, SIZE_PX, TYPES
from test_trend_tiles import PREDICTORS, YEARS, case  # noqa: F401 (case: the fixture)

pytestmark = [pytest.mark.slow, pytest.mark.large]  # about 30 s: the case's three runs and two more


def test_a_tile_without_typed_land_gathers(case, tmp_path):  # noqa: F811
    inp, z = case["inp"], case["z"]
    tiles = GRID.tiles(SIZE_PX)
    last = tiles[-1]
    window = np.s_[:, last.row_off:last.row_off + last.height, last.col_off:last.col_off + last.width]
    fractions = []
    for k, path in enumerate(inp["fractions"]):
        frac = gio.read_raster(path, bands=list(range(1, len(TYPES) + 1)))
        frac[window] = np.where(np.isnan(frac[window]), np.nan, 0.0)
        fractions.append(str(gio.write_raster(tmp_path / f"fractions{k}.tif", frac, GRID, band_names=TYPES)))
    kw = {"levels": LEVELS, "seed": 42, "uncertainty": {}, "interval_pct": 90.0}
    out = {}
    for name in ("untiled", "tiled"):
        (tmp_path / name / "zones").mkdir(parents=True)
        out[name] = (str(tmp_path / name / "trend.tif"), [str(tmp_path / name / "zones" / f"{lv}.gpkg") for lv in LEVELS],
                     str(tmp_path / name / "trend.json"))
    coverage = [str(gio.write_sparse(tmp_path / f"{lv}_coverage.npz", w)) for lv, w in zip(LEVELS, case["wholes"],
                                                                                          strict=True)]
    run_trend(YEARS, case["zone_paths"], coverage, case["grid"], fractions, inp["predictors"], inp["ndvi_se"],
              inp["models"], inp["tables"], *out["untiled"], predictor_names=PREDICTORS, types=TYPES,
              fills=inp["fills"], **kw)
    rasters, parts = [], []
    for t in tiles:
        cov = [tile_coverage_matrix(list(z[lv].geometry), GRID, t) for lv in LEVELS]
        if t is last:
            assert all(m.nnz > 0 for m in cov)  # the zones touch the untyped tile
        paths = [str(gio.write_sparse(tmp_path / f"{lv}_coverage_{t.id}.npz", m)) for lv, m in zip(LEVELS, cov,
                                                                                                  strict=True)]
        rasters.append(str(tmp_path / f"trend_{t.id}.tif"))
        parts.append(str(tmp_path / f"parts_{t.id}.npz"))
        meta = run_trend_tile(YEARS, paths, case["grid"], fractions, inp["predictors"], inp["ndvi_se"], inp["models"],
                              inp["fills"], rasters[-1], parts[-1], tile_id=t.id, size_px=SIZE_PX,
                              predictor_names=PREDICTORS, types=TYPES, **kw)
    assert meta["pixels"]["pixels"] == 0  # the last tile: no typed pixel
    arrays, _ = gio.read_arrays(parts[-1], "trend parts")
    n_draws = meta["n_draws"]
    assert n_draws > 1 and arrays["L0.draws_0"].shape[1] == n_draws and not arrays["L0.draws_0"].any()
    run_trend_gather(YEARS, case["zone_paths"], case["grid"], rasters, parts, inp["models"], inp["tables"],
                     *out["tiled"], size_px=SIZE_PX, **kw)
    for a, b in zip(out["untiled"][1], out["tiled"][1], strict=True):
        assert_tables_close(gio.read_vector(a), gio.read_vector(b), a, rtol=1e-12)
