"""A scenario's zone tables from per-tile partial sums (tiles.size_px): rule scenario_zones_tile per tile and the
gathering rule scenario_zones give the untiled rule's tables and totals.

The case is test_aggregate_tiles' (a 23 × 30 grid of 10 m pixels, five types, residual field, NDVI and edge errors
on, 200 draws; tiles of 8 px: 3 × 4 tiles, the last row 7 px high and the last column 6 px wide; a parcel across the
corner of four tiles at row 8, column 8; a parcel never observed clear). The plan, burned by
:func:`greensink.scenario.burn.burn` as rule scenario_inputs does, has three changes: a park (LIN, NDVI 0.8) across
the same tile corner, construction across the tile column boundary at column 16 (in district E, outside every
parcel), and a planned density (TAB at
30 t C/ha) inside the never-observed parcel; growth to maturity in 20 years gives two stages (planting and year 10).
The baseline's zone tables and draws come from the untiled rule aggregate (greensink.aggregate.run_aggregate).

Independent checks: the changed area of each parcel is the area of the change polygons inside it (shapely, not
pixels); zones no change touches differ by exactly 0 in the tiled run too; the tiled tables equal the untiled
runner's (greensink.scenario.run.run_scenario_zones) within rtol 1e-12 (sums in another order), and its differences
those of the untiled runner drawing the baseline again at every pixel (no record: no correction sums).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from greensink import io
from greensink.aggregate import run_aggregate
from greensink.errors import InputDataError
from greensink.scenario import scenarios
from greensink.scenario.burn import Thresholds, burn
from greensink.scenario.files import BASELINE_KEYS, SCENARIO_KEYS, read_landscape, write_burned
from greensink.scenario.run import run_scenario_zones
from greensink.scenario.tiles import run_scenario_zones_gather, run_scenario_zones_tile
from test_aggregate_tiles import GRID, SEED, SIZE_PX, UNC, YEAR, case, px_box, write_case  # noqa: F401 (fixture)
from test_carbon_tabulated import TYPES

TH = Thresholds(ndvi_vegetation=0.2, ndvi_shrub=0.35, ndvi_tree=0.5, ndvi_soil=0.05, ndvi_full=0.85)
CHANGES = [  # (config entry, polygon)
    ({"kind": "greenspace", "path": "park.gpkg", "type": "LIN", "state": {"ndvi": 0.8}}, px_box(6.5, 5.5, 11.3, 10.2)),
    ({"kind": "construction", "path": "built.gpkg"}, px_box(14.5, 12.0, 18.25, 14.5)),
    ({"kind": "greenspace", "path": "dense.gpkg", "type": "TAB", "state": {"density_t_ha": 30.0}},
     px_box(26, 18, 29, 21)),
]
ENTRY = {"name": "plan", "changes": [c for c, _ in CHANGES], "growth": {"years_to_maturity": {"LIN": 20},
                                                                         "at_year": 10}}
GS_CFG = {"type_column": "type", "park_types": ["LIN"], "types": {t: t for t in TYPES}}
PARK_SERVICE = [{"min_area_m2": 500, "radius_m": 50}]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, case):  # noqa: F811 (the fixture imported above)
    tmp = tmp_path_factory.mktemp("scenario_tiles")
    f = write_case(tmp, case)
    levels = f["levels"]
    d = tmp / "in"
    baseline = {**f["files"], "fractions": f["fractions"], "greenspace": f["greenspace"],
                "height": io.write_raster(d / "height.tif", np.full((1, *GRID.shape), np.nan, np.float32), GRID,
                                          band_names=["height"])}
    # the baseline's zone tables and draws, as rule aggregate writes them (untiled)
    tables = [d / f"{lv}.indicators.parquet" for lv in levels]
    draws = [d / f"{lv}.draws.npz" for lv in levels]
    run_aggregate(f["zones"], f["coverage"], f["grid"], f["files"], f["fractions"], f["greenspace"], f["models"],
                  {"ndvi": f["files"]["ndvi"]}, f["se"], tables, year=YEAR, levels=levels, types=TYPES, seed=SEED,
                  uncertainty=UNC, greenspace_config=GS_CFG, min_observed_pct=50.0, draws_out=draws,
                  fill_json=f["fill"], park_service=PARK_SERVICE)
    # the plan burned into the baseline's layers, written as rule scenario_inputs writes them
    (plan,) = scenarios({"years": [YEAR], "scenarios": [ENTRY]})
    base = read_landscape({k: baseline[k] for k in BASELINE_KEYS}, TYPES, "type")
    burned = burn(base, plan, [np.array([g], dtype=object) for _, g in CHANGES], GRID, TH)
    s = tmp / "scenario"
    layers = {k: s / f"{k}.{'gpkg' if k == 'greenspace' else 'tif'}" for k in SCENARIO_KEYS}
    s.mkdir()
    write_burned(layers, burned, GRID)
    from greensink.scenario.burn import scenario_models
    s_models = io.write_json(s / "models.json", scenario_models(io.read_json(f["models"]), plan))
    kw = {"scenario": ENTRY, "years": [YEAR], "levels": levels, "types": TYPES, "seed": SEED, "uncertainty": UNC}
    finish = {"greenspace": GS_CFG, "park_service": PARK_SERVICE, "interval_pct": 90.0, "min_observed_pct": 50.0}
    out = {name: ([tmp / name / f"{lv}.gpkg" for lv in levels], tmp / name / "totals.csv") for name in ("whole", "tiled")}
    whole = run_scenario_zones(f["zones"], f["coverage"], f["grid"], baseline, f["se"], f["models"], tables, layers,
                               s_models, tmp / "no_targets.yaml", *out["whole"], baseline_draws=draws, fill=f["fill"],
                               **kw, **finish)
    # the direct differences: the baseline drawn again at every pixel (no record), independent of the corrections
    direct = run_scenario_zones(f["zones"], f["coverage"], f["grid"], baseline, f["se"], f["models"], tables, layers,
                                s_models, tmp / "no_targets.yaml", [tmp / "direct" / f"{lv}.gpkg" for lv in levels],
                                tmp / "direct" / "totals.csv", fill=f["fill"], **kw, **finish)
    raster_keys = [k for k in SCENARIO_KEYS if k != "greenspace"]
    tile_sums = []
    for t in GRID.tiles(SIZE_PX):
        tile_sums.append(s / "tiles" / f"zones_{t.id}.npz")
        run_scenario_zones_tile(f["tile_cov"][t.id], f["grid"], {k: baseline[k] for k in BASELINE_KEYS if k != "greenspace"},
                                f["se"], f["models"], f["fill"], {k: layers[k] for k in raster_keys}, s_models,
                                tile_sums[-1], tile_id=t.id, size_px=SIZE_PX, **kw)
    tiled = run_scenario_zones_gather(f["zones"], tile_sums, f["grid"], f["models"], f["fill"], tables, draws,
                                      layers["greenspace"], s_models, tmp / "no_targets.yaml", *out["tiled"],
                                      size_px=SIZE_PX, **kw, **finish, zone_block=2)
    return {"f": f, "whole": whole, "direct": direct, "tiled": tiled, "out": out, "tile_sums": tile_sums, "tables": tables,
            "draws": draws, "layers": layers, "s_models": s_models, "kw": kw, "finish": finish, "burned": burned}


def test_the_tiles_are_uneven_and_a_change_and_a_parcel_cross_a_tile_corner():
    tiles = GRID.tiles(SIZE_PX)
    assert [t.shape for t in tiles[-4:]] == [(7, 8), (7, 8), (7, 8), (7, 6)]
    corner = shapely.Point(GRID.transform @ (8, 8))  # the corner of tiles r000c000, r000c001, r001c000, r001c001
    assert CHANGES[0][1].contains(corner) and px_box(6, 5, 10.3, 10.5).contains(corner)


def test_tiled_scenario_tables_equal_the_untiled_rules(runs):
    (w_tables, w_totals), (t_tables, t_totals) = runs["whole"], runs["tiled"]
    worst = 0.0
    for level, a in w_tables.items():
        b = t_tables[level]
        assert list(b.columns) == list(a.columns) and b["zone_id"].tolist() == a["zone_id"].tolist(), level
        scale = float(np.nanmax(np.abs(a["carbon_t"].to_numpy(dtype=float))))
        for col in a.columns:
            if col == "geometry" or not pd.api.types.is_numeric_dtype(a[col]):
                assert b[col].tolist() == a[col].tolist(), (level, col)
                continue
            x, y = a[col].to_numpy(dtype=float), b[col].to_numpy(dtype=float)
            np.testing.assert_array_equal(np.isnan(y), np.isnan(x), err_msg=f"{level} {col}")  # NaN where NaN
            # differences near 0 are sums of terms of the zone's stock, an indicator's change a difference of two
            # indicators: their rounding is relative to the stock, the indicator
            ref = scale if col.startswith("difference_t") else (
                float(np.nanmax(np.abs(a[col[:-7]].to_numpy(dtype=float)), initial=0.0)) if col.endswith("_change") else 0.0)
            np.testing.assert_allclose(y, x, rtol=1e-12, atol=1e-12 * ref, err_msg=f"{level} {col}")
            ok = np.isfinite(x) & (np.abs(x) > 1e-9)
            worst = max(worst, float(np.max(np.abs(y[ok] / x[ok] - 1), initial=0.0)))
    print(f"tiled vs untiled scenario tables: largest relative difference {worst:.1e}")
    pd.testing.assert_frame_equal(t_totals, w_totals, check_exact=False, rtol=1e-12, atol=1e-12 * w_totals["carbon_t"].abs().max())
    # the comparison is not empty: the plan changes carbon with an interval, in both growth stages
    parcel = w_tables["parcel"].set_index("zone_id")
    district = w_tables["district"].set_index("zone_id")
    assert parcel.loc["corner", "difference_t"] > 0 and district.loc["E", "difference_t"] != 0
    assert parcel.loc["corner", "difference_t_hi"] > parcel.loc["corner", "difference_t_lo"]
    assert 0 < parcel.loc["corner", "difference_t_planting"] < parcel.loc["corner", "difference_t_year10"]
    assert parcel.loc["unseen", "carbon_t_TAB"] > 0 and "carbon_t_TAB_plan3" not in parcel.columns


def test_tiled_differences_equal_the_baseline_drawn_again_at_every_pixel(runs):
    # the untiled rule without the baseline's record draws both states at every pixel and sums their difference
    for level, a in runs["direct"][0].items():
        b = runs["tiled"][0][level]
        scale = float(np.nanmax(np.abs(a["carbon_t"].to_numpy(dtype=float))))
        for col in [c for c in a.columns if c.startswith("difference_t")]:
            np.testing.assert_allclose(b[col].to_numpy(dtype=float), a[col].to_numpy(dtype=float), rtol=1e-12,
                                       atol=1e-12 * scale, err_msg=f"{level} {col}")


def test_changed_area_is_the_pixels_zone_share_times_changed_share_and_untouched_zones_differ_by_zero(runs):
    # by hand with shapely, pixel by pixel: Σ (zone ∩ pixel) / pixel × (changes ∩ pixel) / pixel × pixel area (the
    # changes do not overlap, so a pixel's changed share is the area of their union in it)
    t_tables = runs["tiled"][0]
    union = shapely.union_all([g for _, g in CHANGES])
    pixels = np.array([px_box(c, r, c + 1, r + 1) for r in range(GRID.height) for c in range(GRID.width)])
    changed = shapely.area(shapely.intersection(pixels, union)) / 100.0
    for level, table in t_tables.items():
        zones = np.asarray(table.geometry.values, dtype=object)
        share = shapely.area(shapely.intersection(zones[:, None], pixels[None])) / 100.0
        want = share @ changed * GRID.pixel_area_ha
        np.testing.assert_allclose(table["changed_area_ha"].to_numpy(), want, rtol=1e-6, atol=1e-9, err_msg=level)
    assert t_tables["city"]["changed_area_ha"].iloc[0] == pytest.approx(shapely.area(union) / 1e4, rel=1e-6)
    parcel = t_tables["parcel"].set_index("zone_id")
    assert parcel.loc["edges", "changed_area_ha"] == 0  # no change reaches it: it differs by exactly 0 in every draw
    for col in ("difference_t", "difference_t_lo", "difference_t_hi", "difference_t_planting", "difference_t_year10"):
        assert parcel.loc["edges", col] == 0.0, col


def test_each_tile_writes_only_its_zones_and_the_gather_refuses_wrong_files(runs, tmp_path):
    from greensink.zone_sums import read_tile_sums

    f, levels = runs["f"], runs["f"]["levels"]
    n_zones = [1, 2, 4]
    second = read_tile_sums(runs["tile_sums"][1], levels, n_zones)
    assert second["parcel"].rows.tolist() == [0, 2]  # the corner and edges parcels touch tile r000c001
    assert second["parcel"].values["diff_zone_tiles"].tolist() == [1.0, 0.0]  # only the corner holds a change there
    last = read_tile_sums(runs["tile_sums"][-1], levels, n_zones)
    assert last["parcel"].rows.tolist() == [1]  # the never-observed parcel only
    args = (f["zones"], runs["tile_sums"], f["grid"], f["models"], f["fill"], runs["tables"], runs["draws"],
            runs["layers"]["greenspace"], runs["s_models"], tmp_path / "no_targets.yaml",
            [tmp_path / f"{lv}.gpkg" for lv in levels], tmp_path / "totals.csv")
    swapped = [args[1][1], args[1][0], *args[1][2:]]
    with pytest.raises(InputDataError, match=r"zones_r000c001\.npz: tile must be 'r000c000'.*scenario_zones_tile"):
        run_scenario_zones_gather(args[0], swapped, *args[2:], size_px=SIZE_PX, **runs["kw"], **runs["finish"])
    with pytest.raises(InputDataError, match=r"has 12 tiles; got 11 scenario zone tile sums"):
        run_scenario_zones_gather(args[0], args[1][:-1], *args[2:], size_px=SIZE_PX, **runs["kw"], **runs["finish"])
    other = {**runs["kw"], "scenario": {**runs["kw"]["scenario"], "name": "other"}}
    with pytest.raises(InputDataError, match=r"scenario must be 'other'"):
        run_scenario_zones_gather(*args, size_px=SIZE_PX, **other, **runs["finish"])


def test_the_gather_logs_its_progress_as_the_scenario_gather(runs, tmp_path, caplog):
    f, levels = runs["f"], runs["f"]["levels"]
    caplog.set_level("INFO", logger="greensink")
    run_scenario_zones_gather(f["zones"], runs["tile_sums"], f["grid"], f["models"], f["fill"], runs["tables"],
                              runs["draws"], runs["layers"]["greenspace"], runs["s_models"], tmp_path / "no_targets.yaml",
                              [tmp_path / f"{lv}.gpkg" for lv in levels], tmp_path / "totals.csv", size_px=SIZE_PX,
                              **runs["kw"], **runs["finish"])
    n = len(GRID.tiles(SIZE_PX))
    lines = [r.getMessage() for r in caplog.records]
    for lv in levels:
        assert f"scenario zones gather {lv}: {n}/{n} (100 %)" in lines
    assert not any(line.startswith("aggregate gather") for line in lines)


def test_a_source_constant_up_to_rounding_does_not_vary():
    # a planned density's zone sum is one number in every draw; summed over tiles in another order its draws may
    # differ in the last bits, which must not make it 100 % of a variance that is 0
    from greensink.uncertainty import variance_shares

    rng = np.random.default_rng(0)
    const = np.full((2, 200), 312.626671)
    noisy = const + np.spacing(const) * rng.integers(-2, 3, const.shape)  # a few ulps: rounding
    real = const * (1 + 1e-6 * rng.standard_normal(const.shape))  # a real spread, however small
    assert np.var(noisy, axis=1).max() > 0  # numpy sees a variance...
    shares = variance_shares({"table": noisy, "curve": np.zeros((2, 200))})
    assert np.isnan(shares["table"]).all() and np.isnan(shares["curve"]).all()  # ...that is none: NaN, as exact
    shares = variance_shares({"table": noisy, "curve": real})
    np.testing.assert_array_equal(shares["curve"], [100.0, 100.0])
    np.testing.assert_array_equal(shares["table"], [0.0, 0.0])


@pytest.mark.parametrize(("rule", "mpx", "peak_mib", "cpu_s"), [
    ("scenario_zones", 1.0, 1137, 20),            # workflow_scale.py, 10 km demo (whole grid)
    ("scenario_zones", 4.0, 2110, 81),            # 20 km demo
    ("scenario_zones_tile", 512**2 / 1e6, 706, 9.5),  # tile_scenario_zones.py, 512-px tile of 1024², 1024 parcels
    # 1024-px tile of 2048², 4096 parcels: 1079-1635 MiB before the corrections were drawn in row-bounded chunks,
    # 764-771 MiB (largest tile), CPU median 17.1 s after (benchmarks/README.md "Where the tile's peak went")
    ("scenario_zones_tile", 1024**2 / 1e6, 771, 24),
    ("scenario_zones_gather", 2048**2 / 1e6, 380, 1.0),  # the gather of those 4 tiles (4357 zones × 200 draws)
    ("scenario_zones_gather", 1.0, 312, 1.3),     # the gather of those 4 tiles (1090 zones × 200 draws)
])
def test_scenario_zones_jobs_ask_for_their_measured_peak(rule, mpx, peak_mib, cpu_s):
    from greensink import resources

    tiled, untiled = {"tiles": {"size_px": 512}}, {"tiles": {"size_px": None}}
    assert resources.cost_rule("scenario_zones", tiled) == "scenario_zones_gather"  # a tiled run's rule gathers
    assert resources.cost_rule("scenario_zones", untiled) == "scenario_zones"
    assert peak_mib <= resources.mem_mb(rule, mpx) <= 2 * peak_mib + 1000
    assert resources.runtime_min(rule, mpx) * 60 >= 2 * cpu_s


def test_row_chunks_bound_the_rows_and_the_pixels():
    from greensink.scenario.tables import row_chunks

    # by hand, width 10: pixels on rows 0, 0, 1, 3, 3, 3, 7, 9 (flat index // 10); at most 2 rows and 2 pixels a chunk:
    # [0, 5] (row 0, 2 px) | [12] (row 1; row 3 is 2 rows below 1) | [30, 31] | [35] | [71] | [99]
    idx = np.array([0, 5, 12, 30, 31, 35, 71, 99])
    got = [c.tolist() for c in row_chunks(idx, 10, chunk_pixels=2, max_rows=2)]
    assert got == [[0, 5], [12], [30, 31], [35], [71], [99]]
    # rows 0-1 in one chunk when 3 pixels fit: [0, 5, 12]
    assert [c.tolist() for c in row_chunks(idx, 10, 3, 2)][0] == [0, 5, 12]
    assert list(row_chunks(np.array([], dtype=np.int64), 10, 4, 1)) == []
    with pytest.raises(ValueError, match="at least 1"):
        list(row_chunks(idx, 10, 4, 0))


def test_corrections_in_row_bounded_chunks_equal_one_chunk(runs):
    """The touched pixels drawn in chunks of at most 2 grid rows (what a tile job does, so that a chunk's noise
    streams span 2 rows, not the tile's height) give the corrections of one chunk over them all within 1e-12:
    the draws are the same numbers (keyed by pixel), only their sum runs in another order."""
    from greensink.carbon import read_fill, typed_pixels
    from greensink.scenario.files import read_burned
    from greensink.scenario.tables import (
        Setting,
        difference_corrections,
        paired_functions,
        scenario_noise,
        touched_pixels,
    )

    f, kw = runs["f"], runs["kw"]
    (plan,) = scenarios({"years": [YEAR], "scenarios": [ENTRY]})
    baseline = {**f["files"], "fractions": f["fractions"], "greenspace": f["greenspace"],
                "height": runs["layers"]["height"]}
    base = read_landscape({k: baseline[k] for k in BASELINE_KEYS}, TYPES, "type")
    scen = read_burned({k: runs["layers"][k] for k in SCENARIO_KEYS}, plan.types(TYPES), "type")
    base_models, scen_models = io.read_json(f["models"]), io.read_json(runs["s_models"])
    matrices = [io.read_sparse(m) for m in f["coverage"]]
    setting = Setting(levels=kw["levels"], zones=[], matrices=matrices, grid=GRID, uncertainty=UNC, seed=SEED)
    noise = scenario_noise(base_models, TYPES, YEAR, setting)
    fill = read_fill(f["fill"], models=base_models, year=YEAR)
    fn_b, fn_s, _ = paired_functions(base, base_models, scen, scen_models, YEAR, io.read_raster(f["se"]), setting,
                                     fill=fill, noise=noise, sources=False)
    active_b, active_s = typed_pixels(base.fractions), typed_pixels(scen.fractions)
    touched = touched_pixels(scen, np.union1d(active_b, active_s))
    spans = []

    def recorded(idx):  # the real pixel function, recording the grid rows each chunk spans
        spans.append(int(idx.max() // GRID.width - idx.min() // GRID.width) + 1)
        return fn_b(idx)

    one = difference_corrections(matrices, fn_b, fn_s, active_b, active_s, touched, {}, noise.n_draws, 16_384)
    rowed = difference_corrections(matrices, recorded, fn_s, active_b, active_s, touched, {}, noise.n_draws, 16_384,
                                   width=GRID.width, max_rows=2)
    rows_touched = np.unique(touched // GRID.width)
    assert rows_touched.max() - rows_touched.min() >= 8  # the touched pixels span many rows...
    assert max(spans) <= 2 and len(spans) >= 4  # ...and each chunk at most 2 of them
    for a, b in zip(one, rowed, strict=True):
        np.testing.assert_array_equal(a["rows"], b["rows"])
        for name in ("corr_px", "corr_draws_px"):
            scale = float(np.abs(a[name]).max())
            assert scale > 0
            np.testing.assert_allclose(b[name], a[name], rtol=1e-12, atol=1e-12 * scale)
