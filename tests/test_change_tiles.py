"""Rule change per tile (issue 14 item 2): change_tile jobs on a grid's tiles, gathered by rule change, give the untiled
rule's outputs.

A hand-built two-year case on a 23 × 29 grid of 10 m pixels, written as GeoTIFFs, cut into uneven tiles of 10 px
(3 × 3 tiles; the last row 3 px high, the last column 9 px wide): three types with real models (a two-predictor curve
with its NDVI-only companion, a power curve, a constant), every error source on (the residual field paired between
the years, NDVI error, edges), a cloud in each year at another place (so each year needs its fill of unobserved
land, results/{year}/fill.json), a parcel under the first year's cloud (unobserved: its stock is unknown in that
year), and a lost block of carbon-sink space across a tile corner. The untiled reference is rule change's own
runner on the whole grid (:func:`greensink.change.run_change`, whose outputs on the demo are those of the code before
the split). Tiled: the sink and attribution mosaics are the untiled files byte for byte, the zone tables equal within
rtol 1e-9 (the same terms added in another order), the lost patches equal, and the patch across the tile corner is
one patch whose area is computed here by hand.

The small demo city tiled at 128 px run by Snakemake to the first pair's change, against the session's untiled
baseline run, is tests/test_tiles_workflow.py (one tiled run for the tiled stages and the change).
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from affine import Affine
from shapely.geometry import box

from greensink import io as gio
from greensink.carbon import type_fill, typed_pixels
from greensink.carbon.fill import models_digest, write_fill
from greensink.change import change_parts, run_change, run_change_gather, run_change_tile
from greensink.change.tables import DrawSummary
from greensink.change.tiles import compact_sums, gather_level, gather_lost
from greensink.coverage import coverage_matrix, tile_coverage_matrix
from greensink.errors import InputDataError
from greensink.grid import Grid
from greensink.uncertainty import paired_residual_field
from tables_compare import assert_tables_close
from test_change_one_pass import make_models as one_pass_models

TYPES = ["G1", "G2", "G3"]
ROWS, COLS = 23, 29
GRID = Grid(crs="EPSG:32651", transform=Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 3_500_230.0), width=COLS, height=ROWS)
SIZE_PX = 10
Y0, Y1 = 2023, 2025
LEVELS = ["city", "parcel"]
X0, YB = 500_000.0, 3_500_000.0  # the grid's west and south edges
LOST_ROWS, LOST_COLS = slice(8, 13), slice(18, 23)  # 5 × 5 px across the corner of tiles r000c001/r001c002
RING = (slice(6, 15), slice(16, 25))  # the block and two pixels around it
LOST_TYPED = 0.3  # the lost block's typed share in the second year: 0.7 of each pixel lost
CLOUD0 = (slice(12, 20), slice(0, 8))  # rows, cols
CLOUD1 = (slice(0, 6), slice(10, 27))
UNSEEN = box(X0 + 10.0, YB + 40.0, X0 + 60.0, YB + 90.0)  # a parcel inside the first year's cloud (rows 14-18)


def _residual(seed: int) -> dict:
    """A year's residual_field record of models.json: 80 plots (remeasured under the same ids in both years)."""
    rng = np.random.default_rng(seed)
    xy = np.random.default_rng(0).uniform(0, 290, (80, 2))
    rel = 0.2 * np.sin(xy[:, 0] / 60) + rng.normal(0, 0.1, 80)
    plots = [[f"p{i}", "G1", float(x), float(y), float(v), 0.001] for i, ((x, y), v) in enumerate(zip(xy, rel, strict=True))]
    return {"nugget": 0.01, "psill": 0.02, "range_m": 60.0, "n_plots": 80, "method": "test", "plots": plots,
            "measurement": {"year_correlation": 0.5, "var": 0.001}}


def make_models(seed: int) -> dict:
    """The one-pass test's three types (tests/test_change_one_pass.py, the same draws) with a residual field."""
    return {**one_pass_models(seed), "residual_field": _residual(seed)}


def make_year(seed: int, cloud: tuple[slice, slice], lost: bool):
    """Fractions (3, rows, cols), the predictors ndvi and height, ndvi_se and the vegetation classes of one year."""
    rng = np.random.default_rng(seed)
    frac = rng.uniform(0, 1, (3, ROWS, COLS)) * (rng.uniform(size=(3, ROWS, COLS)) < 0.5)
    frac /= np.maximum(frac.sum(axis=0), 1.0)
    frac[:, 5:9, 3:11] = 0.0  # untyped land
    ndvi = rng.uniform(0.05, 0.9, (ROWS, COLS))
    ndvi[cloud] = np.nan
    height = rng.uniform(0.0, 20.0, (ROWS, COLS))
    height[rng.uniform(size=height.shape) < 0.3] = np.nan  # outside the CHM: G1's NDVI-only companion serves
    classes = rng.integers(0, 4, (ROWS, COLS)).astype(np.float32)
    classes[cloud] = np.nan
    classes[RING] = 3.0  # trees in both years around the lost block: no loss next to it
    if lost:  # vegetation cleared, typed land shrunk to LOST_TYPED: 1 - LOST_TYPED of each pixel lost
        classes[LOST_ROWS, LOST_COLS] = 0.0
        frac[:, LOST_ROWS, LOST_COLS] = 0.0
        frac[0, LOST_ROWS, LOST_COLS] = LOST_TYPED
    else:
        classes[LOST_ROWS, LOST_COLS] = 2.0
    return frac.astype(np.float32), {"ndvi": ndvi.astype(np.float32), "height": height.astype(np.float32),
                                     "ndvi_se": np.full((ROWS, COLS), 0.03, np.float32)}, classes


def zones() -> dict[str, gpd.GeoDataFrame]:
    city = [box(X0 + 25.0, YB, X0 + 270.0, YB + 205.0)]  # the left columns and the top rows uncovered
    parcels = [box(X0 + 25.0, YB, X0 + 95.0, YB + 120.0), box(X0 + 95.0, YB, X0 + 270.0, YB + 120.0),
               box(X0 + 33.0, YB + 120.0, X0 + 170.0, YB + 205.0), box(X0 + 170.0, YB + 120.0, X0 + 260.0, YB + 205.0),
               UNSEEN]
    out = {}
    for level, geoms, parent in (("city", city, None), ("parcel", parcels, "C1")):
        ids = [f"{level[0].upper()}{i + 1}" for i in range(len(geoms))]
        out[level] = gpd.GeoDataFrame({"zone_id": ids, "parent_id": [parent] * len(ids), "level": level,
                                       "name": ids}, geometry=geoms, crs=GRID.crs)
    return out


def tile_matrix(whole, tile):
    """The whole grid's matrix's columns of the tile's pixels (local index r × width + c)."""
    rows, cols = np.mgrid[tile.rows, tile.cols]
    return whole.tocsc()[:, (rows * GRID.width + cols).reshape(-1)].tocsr()


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """The inputs on disk, the untiled run and the tiled one (every tile, then the gather)."""
    d = tmp_path_factory.mktemp("change_tiles")
    m0, m1 = make_models(1), make_models(2)
    f0, l0, c0 = make_year(3, CLOUD0, lost=False)
    f1, l1, c1 = make_year(4, CLOUD1, lost=True)
    f1[1, 20:, :] = 0.0  # G2 lost from the bottom rows in the second year
    inp = {"grid": str(gio.write_json(d / "grid.json", GRID.to_dict()))}
    for k, (m, f, layers, classes, year) in enumerate(((m0, f0, l0, c0, Y0), (m1, f1, l1, c1, Y1))):
        gio.write_json(d / f"models{k}.json", m)
        inp[f"models{k}"] = str(d / f"models{k}.json")
        inp[f"fractions{k}"] = str(gio.write_raster(d / f"fractions{k}.tif", f, GRID, band_names=TYPES))
        inp[f"predictors{k}"] = [str(gio.write_raster(d / f"ndvi{k}.tif", layers["ndvi"], GRID)),
                                 str(gio.write_raster(d / f"height{k}.tif", layers["height"], GRID))]
        inp[f"ndvi_se{k}"] = str(gio.write_raster(d / f"ndvi_se{k}.tif", layers["ndvi_se"], GRID))
        inp[f"classes{k}"] = str(gio.write_raster(d / f"classes{k}.tif", classes, GRID))
        # the year's fill as rule fill writes it: type_fill over the whole grid's rasters as read back
        fr = gio.read_raster(inp[f"fractions{k}"], bands=[1, 2, 3])
        preds = {"ndvi": gio.read_raster(inp[f"predictors{k}"][0]), "height": gio.read_raster(inp[f"predictors{k}"][1])}
        fill = type_fill(m, TYPES, fr, preds, seed=m["seed"])
        inp[f"fill{k}"] = str(write_fill(d / f"fill{k}.json", fill, year=year, seed=m["seed"],
                                         models_sha256=models_digest(m)))
    z = zones()
    wholes = []
    for level in LEVELS:
        path = d / f"{level}.gpkg"
        z[level].to_file(path, layer=level)
        wholes.append(coverage_matrix(list(z[level].geometry), GRID.transform, GRID.shape))
        gio.write_sparse(d / f"{level}_coverage.npz", wholes[-1])
    inp["zones"] = [str(d / f"{level}.gpkg") for level in LEVELS]
    inp["coverage"] = [str(d / f"{level}_coverage.npz") for level in LEVELS]
    # the years' indicator tables (rule aggregate): the unseen parcel has no stock in the first year
    for k in (0, 1):
        tables = []
        for level in LEVELS:
            t = gpd.GeoDataFrame({"zone_id": z[level]["zone_id"], "area_ha": z[level].area / 1e4,
                                  "carbon_t": 100.0 + 10.0 * np.arange(len(z[level])) + k,
                                  "green_area_ha": 0.5 + 0.1 * np.arange(len(z[level])) - 0.05 * k},
                                 geometry=z[level].geometry, crs=GRID.crs)
            if k == 0 and level == "parcel":
                t.loc[t["zone_id"] == "P5", "carbon_t"] = np.nan
            path = d / f"{level}_{k}.indicators.parquet"
            t.to_parquet(path)
            tables.append(str(path))
        inp[f"tables{k}"] = tables
    kw = {"y0": Y0, "y1": Y1, "levels": LEVELS, "types": TYPES, "predictors": ["ndvi", "height"], "typed_land": True,
          "uncertainty": {}, "seed": 42}

    def outputs(folder):
        (d / folder / "zones").mkdir(parents=True, exist_ok=True)
        return {"sink": str(d / folder / "sink.tif"), "attribution": str(d / folder / "attribution.tif"),
                "zones": [str(d / folder / "zones" / f"{level}.gpkg") for level in LEVELS],
                "lost_patches": str(d / folder / "lost_patches.gpkg"), "uncertainty": str(d / folder / "uncertainty.json")}

    untiled = outputs("untiled")
    run_change(inp, untiled, **kw)
    tiles = GRID.tiles(SIZE_PX)
    (d / "tiles").mkdir()
    tile_files = {"sink_tiles": [], "attribution_tiles": [], "parts": []}
    for t in tiles:
        cov = []
        for level in LEVELS:  # rule zone_coverage_tile's matrix of the tile (exact coverage on the tile's sub-grid)
            m = tile_coverage_matrix(list(z[level].geometry), GRID, t)
            cov.append(str(gio.write_sparse(d / "tiles" / f"{level}_coverage_{t.id}.npz", m)))
        out = {"sink": str(d / "tiles" / f"sink_{t.id}.tif"), "attribution": str(d / "tiles" / f"attribution_{t.id}.tif"),
               "parts": str(d / "tiles" / f"parts_{t.id}.npz")}
        run_change_tile({**inp, "coverage": cov}, out, tile_id=t.id, size_px=SIZE_PX, **kw)
        tile_files["sink_tiles"].append(out["sink"])
        tile_files["attribution_tiles"].append(out["attribution"])
        tile_files["parts"].append(out["parts"])
    tiled = outputs("tiled")
    gather = {k: v for k, v in inp.items() if k not in ("coverage",)} | tile_files
    run_change_gather(gather, tiled, size_px=SIZE_PX, y0=Y0, y1=Y1, levels=LEVELS, uncertainty={})
    blocked = outputs("blocked")
    run_change_gather(gather, blocked, size_px=SIZE_PX, y0=Y0, y1=Y1, levels=LEVELS, uncertainty={}, zone_block=2)
    return {"dir": d, "inp": inp, "untiled": untiled, "tiled": tiled, "blocked": blocked, "tiles": tiles,
            "wholes": wholes, "kw": kw, "parts": tile_files["parts"], "gather": gather}


def test_tiles_are_uneven_and_need_fill(case):
    assert [t.shape for t in case["tiles"]] == [(10, 10), (10, 10), (10, 9)] * 2 + [(3, 10), (3, 10), (3, 9)]
    # each year has unobserved typed land (its cloud), so the fill is read, not skipped
    for k, cloud in ((0, CLOUD0), (1, CLOUD1)):
        frac = gio.read_raster(case["inp"][f"fractions{k}"], bands=[1, 2, 3])
        assert frac[(slice(None), *cloud)].sum() > 5


def test_mosaics_are_the_untiled_rasters_byte_for_byte(case):
    for name in ("sink", "attribution"):
        a, b = case["untiled"][name], case["tiled"][name]
        x, y = gio.read_raster(a), gio.read_raster(b)
        np.testing.assert_array_equal(y, x, err_msg=name)  # value for value, NaN where NaN
        assert open(a, "rb").read() == open(b, "rb").read(), name
    sink = gio.read_raster(case["untiled"]["sink"])
    # the comparison is not empty: sinks mapped, NaN under either year's cloud where typed
    assert np.isfinite(sink[0]).sum() > 300 and np.isnan(sink[0][CLOUD0]).any() and np.isnan(sink[0][CLOUD1]).any()


def test_zone_tables_equal_within_rounding(case):
    worst = 0.0
    for k, level in enumerate(LEVELS):
        a = gpd.read_file(case["untiled"]["zones"][k])
        worst = max(worst, assert_tables_close(a, gpd.read_file(case["tiled"]["zones"][k]), level))
        # zone blocks of 2 parcels (P1-P2, P3-P4, P5: three blocks) give the one-block tables bit for bit
        blocked = gpd.read_file(case["blocked"]["zones"][k])
        assert assert_tables_close(gpd.read_file(case["tiled"]["zones"][k]), blocked, level, rtol=0, atol=0) == 0.0
    assert worst < 1e-12  # measured: the same terms in another order differ in the last bits only
    parcel = gpd.read_file(case["tiled"]["zones"][1]).set_index("zone_id")
    # the parcels the tiles cut have a sink: the sums are not empty
    assert parcel.loc[["P1", "P2", "P3", "P4"], "sink_t_yr"].notna().all()
    assert (parcel.loc[["P1", "P2", "P3", "P4"], "sink_t_yr"] != 0).all()


def test_a_zone_unobserved_in_one_year_stays_unknown(case):
    # P5 lies under the first year's cloud: no stock that year, its imagery-typed land not observed in both years:
    # every sink column empty, never 0 (tiled and untiled alike), while its area is known
    for which in ("untiled", "tiled"):
        t = gpd.read_file(case[which]["zones"][1]).set_index("zone_id")
        row = t.loc["P5"]
        for col in ("sink_t_yr", "sink_t_yr_lo", "sink_t_yr_hi", "stock_change_t", "sink_observed_t_yr"):
            assert np.isnan(row[col]), (which, col)
        # only its constant-density land (G3: no imagery needed) counts as observed in both years
        assert 0.0 < row["observed_both_pct"] < 50.0, which
        assert row["area_ha"] == pytest.approx(0.25)  # 50 m × 50 m


def test_lost_patch_across_tiles_is_one_patch(case):
    a = gpd.read_file(case["untiled"]["lost_patches"])
    b = gpd.read_file(case["tiled"]["lost_patches"])
    assert len(a) == len(b) > 1
    pd.testing.assert_frame_equal(pd.DataFrame(b.drop(columns="geometry")), pd.DataFrame(a.drop(columns="geometry")),
                                  check_exact=False, rtol=1e-12)
    assert b.geometry.equals(a.geometry)
    # the 5 × 5 block across the corner of four tiles (rows 8-12 cross row 10, columns 18-22 cross column 20):
    # the parcel boundary at y = 120 m (between rows 10 and 11) splits it into two patches by zone: P4 (rows 8-10,
    # 15 px, across both the tile row and the tile column edge) and P2 (rows 11-12, 10 px, across the column edge)
    x0, y_top = X0 + 180.0, YB + 230.0 - 80.0
    block = box(x0, y_top - 50.0, x0 + 50.0, y_top)
    inside = b[b.geometry.within(block.buffer(1e-6))]
    assert sorted(inside["parcel_id"]) == ["P2", "P4"]
    assert sorted(inside["pixels"]) == [10, 15]
    assert inside["area_ha"].sum() == pytest.approx(25 * (1 - LOST_TYPED) * 0.01)
    assert inside.union_all().equals_exact(block, 1e-6) or inside.union_all().symmetric_difference(block).area < 1e-6
    for _, patch in inside.iterrows():  # each crosses a tile edge (column 20) and is still one polygon
        assert patch.geometry.geom_type == "Polygon"
        minx, _, maxx, _ = patch.geometry.bounds
        assert minx < X0 + 200.0 < maxx
    p4 = inside.set_index("parcel_id").geometry["P4"]
    assert p4.bounds[1] < YB + 130.0 < p4.bounds[3]  # P4's patch also crosses the tile row edge (row 10)


def test_uncertainty_json_equal(case):
    a = json.loads(open(case["untiled"]["uncertainty"], encoding="utf-8").read())
    b = json.loads(open(case["tiled"]["uncertainty"], encoding="utf-8").read())
    assert a == b and a["residual_field"] is not None
    # the paired field of both years' plots, as greensink.uncertainty gives it
    m0, m1 = make_models(1), make_models(2)
    assert a["residual_field"]["nugget"] == pytest.approx(paired_residual_field(m0, m1, {}).nugget)


def _gather(case, level, **kw):
    n_zones = [1, 5]
    ident = {"format": 1, "size_px": SIZE_PX, "years": [Y0, Y1], "levels": LEVELS, "n_zones": n_zones}
    sources = gio.read_arrays(case["parts"][0])[1]["sources"]
    return gather_level(case["parts"], case["tiles"], LEVELS, n_zones, level, ident, interval_pct=90.0,
                        sources=sources, **kw)


def test_tile_parts_keep_only_the_zones_they_touch(case):
    arrays, meta = gio.read_arrays(case["parts"][0])
    assert meta["tile"] == "r000c000" and meta["levels"] == LEVELS and meta["n_zones"] == [1, 5]
    # tile r000c000 (rows 0-9, columns 0-9: y 230-130 m, x 0-100 m) touches the city and parcel P3 (x 33-170, y
    # 120-205) only; P1, P2 lie below y = 120, P4 east of x = 170, P5 below y = 90
    assert arrays["L0.rows"].tolist() == [0]
    assert arrays["L1.rows"].tolist() == [2]
    # every tile's partial sums add up to the whole grid's terms (check the typed area by hand: Σ coverage × typed)
    f0 = gio.read_raster(case["inp"]["fractions0"], bands=[1, 2, 3]).reshape(3, -1)
    f1 = gio.read_raster(case["inp"]["fractions1"], bands=[1, 2, 3]).reshape(3, -1)
    typed = np.maximum(np.minimum(f0.astype(float).sum(axis=0), 1), np.minimum(f1.astype(float).sum(axis=0), 1))
    for k, level in enumerate(LEVELS):
        want = np.asarray(case["wholes"][k] @ typed).ravel() * GRID.pixel_area_ha
        np.testing.assert_allclose(_gather(case, level)["typed_ha"], want, rtol=1e-12)


def test_gather_in_zone_blocks_gives_the_level_bit_for_bit(case):
    # the parcel level (5 zones) in blocks of 1, 2 and 3 zones against one block: the (Z,) sums and the draw
    # summaries (interval, U %, variance shares) are the same bits; the summaries are the untiled draws' own
    whole = _gather(case, "parcel", zone_block=100)
    for block in (1, 2, 3):
        got = _gather(case, "parcel", zone_block=block)
        assert got.keys() == whole.keys()
        for name, v in whole.items():
            if isinstance(v, DrawSummary):
                for field in ("lo", "hi", "u_pct"):
                    a, b = getattr(v, field), getattr(got[name], field)
                    assert (a is None and b is None) or a.tobytes() == b.tobytes(), (block, name, field)
                assert v.shares.keys() == got[name].shares.keys() and len(v.shares) >= (3 if name == "sink_draws" else 0)
                for src in v.shares:
                    assert v.shares[src].tobytes() == got[name].shares[src].tobytes(), (block, name, src)
            else:
                assert v.tobytes() == got[name].tobytes(), (block, name)
    # against the untiled pass's own draws of the same parcels (change_parts over the whole grid)
    matrices = [gio.read_sparse(p) for p in case["inp"]["coverage"]]
    parts = change_parts(case["inp"], GRID, None, matrices, **{k: v for k, v in case["kw"].items() if k != "levels"})
    s = parts.sums[1]
    lo, hi = np.quantile(s["sink_draws"], [0.05, 0.95], axis=1)
    np.testing.assert_allclose(whole["sink_draws"].lo, lo, rtol=1e-12)
    np.testing.assert_allclose(whole["sink_draws"].hi, hi, rtol=1e-12)
    np.testing.assert_allclose(whole["sink"], s["sink"], rtol=1e-12)


def test_draw_summary_of_a_hand_made_case():
    from greensink.change.tables import join_summaries, summarize_draws

    # two zones × 5 draws, two sources: quantiles by linear interpolation (numpy's default), U % = half the
    # 2.5-97.5 % range over |estimate|, shares = Var_k / Σ Var × 100 (population variances)
    draws = np.array([[1.0, 2.0, 3.0, 4.0, 5.0], [10.0, 10.0, 10.0, 10.0, 10.0]])
    parts = {"a": np.array([[0.0, 0.0, 1.0, 1.0, 0.0], [3.0, 3.0, 3.0, 3.0, 3.0]]),
             "b": np.array([[0.0, 2.0, 0.0, 2.0, 2.0], [7.0, 7.0, 7.0, 7.0, 7.0]])}
    whole = summarize_draws(np.array([3.0, 10.0]), draws, 90.0, parts)
    # zone 1: q05 = 1 + 0.05 × 4 × 1 = 1.2, q95 = 4.8; q2.5 = 1.1, q97.5 = 4.9 -> U = (4.9 - 1.1)/2/3 × 100
    np.testing.assert_allclose(whole.lo, [1.2, 10.0]) and np.testing.assert_allclose(whole.hi, [4.8, 10.0])
    np.testing.assert_allclose(whole.u_pct, [1.9 / 3 * 100, 0.0])
    # Var a = 0.24, Var b = 0.96: 20 % and 80 %; zone 2 varies in no source: NaN, not 0
    np.testing.assert_allclose(whole.shares["a"], [20.0, np.nan]) and np.testing.assert_allclose(whole.shares["b"], [80.0, np.nan])
    blocks = join_summaries([summarize_draws(np.array([e]), draws[i:i + 1], 90.0, {k: v[i:i + 1] for k, v in parts.items()})
                             for i, e in enumerate((3.0, 10.0))])
    for field in ("lo", "hi", "u_pct"):
        assert getattr(blocks, field).tobytes() == getattr(whole, field).tobytes()
    assert all(blocks.shares[k].tobytes() == whole.shares[k].tobytes() for k in parts)


def test_the_gather_refuses_parts_of_another_layout_or_zone_count(case, tmp_path):
    (tmp_path / "zones").mkdir()
    out = {"sink": str(tmp_path / "sink.tif"), "attribution": str(tmp_path / "attribution.tif"),
           "zones": [str(tmp_path / "zones" / f"{lv}.gpkg") for lv in LEVELS],
           "lost_patches": str(tmp_path / "lost.gpkg"), "uncertainty": str(tmp_path / "u.json")}
    arrays, meta = gio.read_arrays(case["parts"][4])
    old = {k.replace("L0.", "city.").replace("L1.", "parcel."): v for k, v in arrays.items()}
    old_meta = {k: v for k, v in meta.items() if k not in ("format", "n_zones")}
    parts = list(case["parts"])
    parts[4] = str(gio.write_arrays(tmp_path / f"parts_{case['tiles'][4].id}.npz", old, old_meta))
    with pytest.raises(InputDataError, match=r"parts_r001c001.npz: format must be 1 for this run. Got None.*delete "
                                             r"results/change/2023_2025/tiles"):
        run_change_gather({**case["gather"], "parts": parts}, out, size_px=SIZE_PX, y0=Y0, y1=Y1, levels=LEVELS)
    parts[4] = str(gio.write_arrays(tmp_path / f"parts_{case['tiles'][4].id}.npz", arrays, {**meta, "n_zones": [1, 6]}))
    with pytest.raises(InputDataError, match=r"n_zones must be \[1, 5\] for this run. Got \[1, 6\]"):
        run_change_gather({**case["gather"], "parts": parts}, out, size_px=SIZE_PX, y0=Y0, y1=Y1, levels=LEVELS)


def test_gather_lost_orders_pixels_of_all_tiles():
    # two tiles' lost pixels, interleaved in the whole grid's order: gathered ascending, keys moved with them
    a = {"lost.index": np.array([3, 40]), "lost.lost": np.array([0.1, 0.2]), "lost.stock0": np.array([1.0, 2.0]),
         "lost.stock1": np.array([0.5, 1.0]), "lost.keys": np.array([[0, 1]])}
    b = {"lost.index": np.array([7]), "lost.lost": np.array([0.3]), "lost.stock0": np.array([3.0]),
         "lost.stock1": np.array([1.5]), "lost.keys": np.array([[2]])}
    got = gather_lost([a, b], 1)
    assert got["index"].tolist() == [3, 7, 40] and got["lost"].tolist() == [0.1, 0.3, 0.2]
    assert got["keys"].tolist() == [[0, 2, 1]]
    with pytest.raises(InputDataError, match="two tiles"):
        gather_lost([a, a], 1)


def test_compact_sums_leave_out_untouched_zones_and_empty_draws():
    import scipy.sparse as sp

    m = sp.csr_matrix(np.array([[0.0, 0.0], [0.5, 1.0], [0.0, 0.0]]))
    arrays = compact_sums([{"sink": np.array([0.0, 2.5, 0.0]), "sink_draws": np.zeros((3, 1)),
                            "both_draws": np.array([[0.0, 0.0], [1.0, -1.0], [0.0, 0.0]])}], [m], ["parcel"])
    assert arrays["L0.rows"].tolist() == [1] and arrays["L0.sink"].tolist() == [2.5]
    # a tile without typed pixels draws nothing (one column of 0s): left out, so any draws can be added to it
    assert "L0.sink_draws" not in arrays and arrays["L0.both_draws"].tolist() == [[1.0, -1.0]]


def test_a_tile_needs_the_years_fill(case):
    t = case["tiles"][4]
    inp = {k: v for k, v in case["inp"].items() if k not in ("fill0", "fill1")}
    with pytest.raises(ValueError, match="fill"):
        change_parts(inp, GRID, t, [tile_matrix(w, t) for w in case["wholes"]], **{
            k: v for k, v in case["kw"].items() if k != "levels"})


def test_untiled_with_fill_json_equals_its_own_fill(case, tmp_path):
    # the whole-grid run reading fill.json gives, bit for bit, what it gives computing the fill itself
    inp = {k: v for k, v in case["inp"].items() if k not in ("fill0", "fill1")}
    kw = {k: v for k, v in case["kw"].items() if k != "levels"}
    matrices = [gio.read_sparse(p) for p in inp["coverage"]]
    own = change_parts(inp, GRID, None, matrices, **kw)
    read = change_parts(case["inp"], GRID, None, matrices, **kw)
    assert own.sink.tobytes() == read.sink.tobytes()
    for a, b in zip(own.sums, read.sums, strict=True):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k].tobytes() == b[k].tobytes(), k
    assert typed_pixels(gio.read_raster(inp["fractions0"], bands=[1, 2, 3])).size > 0


@pytest.mark.slow
@pytest.mark.large  # 10-50 s (two 2048² COGs of 5 bands, twice): make test-large
def test_whole_grid_rasters_are_the_mosaics_bytes_on_a_large_grid(tmp_path):
    # 2048² px (overviews at 2 and 4): written straight by the COG driver, sink.tif's coarser overview got other
    # values than the mosaic's; rule change writes through the mosaic's writer, so the files are the same bytes
    from greensink.change.run import write_change_rasters
    from greensink.tiling import mosaic_files

    n = 2048
    grid = Grid(crs="EPSG:32651", transform=Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 3_520_480.0), width=n, height=n)
    rng = np.random.default_rng(7)
    sink = rng.normal(size=(3, n, n)).astype(np.float32)
    sink[:, rng.uniform(size=(n, n)) < 0.3] = np.nan
    att = np.stack([rng.integers(0, 5, (n, n)).astype(np.float32), sink[0]])
    whole = {"sink": tmp_path / "sink.tif", "attribution": tmp_path / "attribution.tif"}
    write_change_rasters(whole, sink, att, grid, Y0, Y1, "zstd")
    tiles = grid.tiles(1024)
    files = {"sink": [], "attribution": []}
    for t in tiles:
        out = {k: tmp_path / f"{k}_{t.id}.tif" for k in files}
        write_change_rasters(out, sink[:, t.rows, t.cols], att[:, t.rows, t.cols], grid.subgrid(t), Y0, Y1, "zstd")
        for k in files:
            files[k].append(out[k])
    mosaic = {k: tmp_path / f"mosaic_{k}.tif" for k in files}
    mosaic_files(files, mosaic, grid, 1024)
    for k in files:
        assert mosaic[k].read_bytes() == whole[k].read_bytes(), k


def test_resources_cover_the_measured_change_peaks():
    # benchmarks/README.md, tile_memory.py (VmHWM of each job's process): a tiled run's rule change is the gather
    from greensink import resources

    assert resources.cost_rule("change", {"tiles": {"size_px": 512}}) == "change_gather"
    assert resources.cost_rule("change", {"tiles": {"size_px": None}}) == "change"
    for rule, mpx, peak in (("change_tile", 512**2 / 1e6, 519), ("change_gather", 1024**2 / 1e6, 385),
                            ("change_gather", 2048**2 / 1e6, 664)):
        assert peak <= resources.mem_mb(rule, mpx) < resources.mem_mb("change", mpx), rule
    assert resources.mem_mb("change", 2048**2 / 1e6) >= 1463  # the whole-grid rule's measured peak there
