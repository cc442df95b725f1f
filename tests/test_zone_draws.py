"""A year's zone draws written once by rule aggregate (greensink.aggregate.ZoneDraws) and read by the scenario rules.

The scenario's difference from the baseline computed from the record (scenario sums − the record's, corrected
on the pixels the changes touch) is checked against the direct computation, which draws the baseline over
every pixel again (scenario_tables without a record): on a hand-built city with curves, the residual, NDVI
and edge noise, unobserved land with and without a fill, zones cutting pixels, a construction that removes
typed pixels, a planting on open land and a growth stage; and on the session's baseline run (its three plans),
with the record that rule aggregate wrote."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from affine import Affine

from greensink import io
from greensink.aggregate import ZoneDraws, content_sha256, run_aggregate, zone_draw_sums
from greensink.carbon import typed_pixels
from greensink.coverage import coverage_matrix
from greensink.errors import InputDataError
from greensink.grid import Grid
from greensink.model import fallback_record
from greensink.scenario import scenarios
from greensink.scenario.burn import Landscape, Thresholds, burn, scenario_models
from greensink.scenario.tables import Setting, paired_functions, scenario_tables, touched_pixels

CRS = "EPSG:32651"
N = 8  # 8 x 8 pixels of 10 m: x 0..80, y 0..80
GRID = Grid(crs=CRS, transform=Affine(10.0, 0.0, 0.0, 0.0, -10.0, 80.0), width=N, height=N)
TH = Thresholds(ndvi_vegetation=0.2, ndvi_shrub=0.35, ndvi_tree=0.5, ndvi_soil=0.05, ndvi_full=0.85)
YEAR = 2024
UNCERTAINTY = {"residual": {"enabled": True}, "ndvi": {"enabled": True}, "edges": {"enabled": True, "position_sd_m": 2.0}}
REL = 1e-9  # summation order differs: equal to this share of the zone's stock scale


def city() -> tuple[Landscape, dict]:
    """G1 (an NDVI curve fitted to plots, with the residual field) on columns 0-3, NDVI 0.3-0.8 varying by pixel, one
    pixel unobserved (filled with G1's mean); G2 (a table density) on rows 6-7 of columns 4-7; XG (a curve) on one
    pixel never observed, so it has no fill and stays NaN; bare land elsewhere. 40 draws."""
    rng = np.random.default_rng(5)
    ndvi = np.full((N, N), 0.1, np.float32)
    frac = np.zeros((3, N, N), np.float32)
    frac[0, :, :4] = 1.0
    frac[0, :, 3] = 0.6  # a green-space edge through column 3
    ndvi[:, :4] = rng.uniform(0.3, 0.8, (N, 4)).astype(np.float32)
    ndvi[2, 1] = np.nan  # G1 unobserved: filled
    frac[1, 6:, 4:] = 1.0
    frac[2, 1, 6] = 1.0
    ndvi[1, 6] = np.nan  # XG's only pixel, never observed: no fill, its zones' carbon unknown
    rasters = {"ndvi": ndvi, "fvc": np.clip((ndvi - 0.05) / 0.8, 0, 1).astype(np.float32),
               "canopy": (ndvi >= 0.5).astype(np.float32), "height": np.full((N, N), np.nan, np.float32),
               "vegetation": (ndvi >= 0.2).astype(np.float32), "tree_shrub": (ndvi >= 0.35).astype(np.float32)}
    gs = gpd.GeoDataFrame({"type": ["G1", "G2", "XG"]}, crs=CRS,
                          geometry=[shapely.box(0, 0, 36, 80), shapely.box(40, 0, 80, 20), shapely.box(60, 60, 70, 70)])
    g1 = fallback_record("G1", 0, 25, 10, "test", n_bootstrap=40, seed=1, density_model=("linear", 2.0, 40.0)).to_json()
    g1["source"] = "plots"
    models = {"seed": 0, "types": {
        "G1": g1,
        "G2": fallback_record("G2", 18.0, 30, 0, "test", n_bootstrap=40, seed=1).to_json(),
        "XG": fallback_record("XG", 0, 20, 0, "test", n_bootstrap=40, seed=1, density_model=("linear", 1.0, 30.0)).to_json()},
        "residual_field": {"nugget": 0.01, "psill": 0.02, "range_m": 25.0, "n_plots": 10, "method": "test"}}
    return Landscape(rasters=rasters, fractions=frac, types=["G1", "G2", "XG"], greenspace=gs, type_column="type"), models


def setting() -> Setting:
    """Two levels: halves (x 0..45 and 45..80: the boundary cuts column 4) and four blocks cutting pixels."""
    halves = gpd.GeoDataFrame({"zone_id": ["W", "E"], "parent_id": ["", ""], "level": "district", "name": ["w", "e"]},
                              geometry=[shapely.box(0, 0, 45, 80), shapely.box(45, 0, 80, 80)], crs=CRS)
    blocks = gpd.GeoDataFrame({"zone_id": ["b1", "b2", "b3", "b4"], "parent_id": ["W", "E", "W", "E"], "level": "block",
                               "name": list("abcd")}, crs=CRS,
                              geometry=[shapely.box(0, 43, 45, 80), shapely.box(45, 43, 80, 80), shapely.box(0, 0, 45, 43),
                                        shapely.box(45, 0, 80, 43)])
    layers = [halves, blocks]
    matrices = [coverage_matrix(list(z.geometry.values), GRID.transform, GRID.shape) for z in layers]
    return Setting(levels=["district", "block"], zones=layers, matrices=matrices, grid=GRID, park_types=["G1"],
                   park_service=[{"min_area_m2": 5000, "radius_m": 500}], uncertainty=UNCERTAINTY, seed=11)


def plan(*changes, growth=None):
    cfg = {"years": [YEAR], "scenarios": [{"name": "p", "changes": list(changes), **({"growth": growth} if growth else {})}]}
    return scenarios(cfg)[0]


CONSTRUCTION = {"kind": "construction", "path": "x"}  # over G1 (rows 5-7, columns 0-1)
PARK = {"kind": "greenspace", "path": "x", "type": "G1", "state": {"ndvi": 0.7}}  # bare land and the XG pixel to G1
PLANTING = {"kind": "planting", "path": "x", "canopy_share_pct": 30, "type": "XG"}  # trees on open land
XG_PIXEL = 1 * N + 6  # flat index of the XG pixel (row 1, column 6)
LAYERS = {"construction": shapely.box(0, 0, 20, 25),
          "park": shapely.union_all([shapely.box(42, 25, 67, 48), shapely.box(60, 60, 70, 70)]),
          "planting": shapely.box(72, 30, 80, 55)}


def tables_of(sc, layers, records=None):
    base, models = city()
    scen = burn(base, sc, [np.array([g], dtype=object) for g in layers], GRID, TH)
    baseline = {lv: pd.DataFrame({"zone_id": z["zone_id"], "carbon_t": 1.0}) for lv, z in zip(("district", "block"),
                                                                                           setting().zones, strict=True)}
    se = np.full((N, N), 0.03, np.float32)
    return scenario_tables(sc, base, models, scen, scenario_models(models, sc), se, baseline, [], setting(),
                           baseline_draws=records), (base, models, scen, se)


def record_of(base, models, scen, sc, se, year=YEAR, identity=None):
    """The baseline's record as rule aggregate makes it: the filled baseline function summed over its typed pixels."""
    st = setting()
    fn_b, _, _ = paired_functions(base, models, scen, scenario_models(models, sc), year, se, st)
    sums = zone_draw_sums(st.matrices, fn_b, typed_pixels(base.fractions), GRID.pixel_area_ha)
    ident = identity or ZoneDraws.identity(seed=st.seed, year=year, n_draws=40, uncertainty=UNCERTAINTY,
                                           models_sha256=content_sha256(models))
    return [ZoneDraws.from_sums(lv, z["zone_id"].to_numpy(), s, ident) for lv, z, s in zip(st.levels, st.zones, sums,
                                                                                          strict=True)]


DIFF_COLUMNS = ("difference_t", "difference_t_lo", "difference_t_hi")


def assert_same_tables(new, old, scale):
    """Every column equal (NaN where NaN); the difference columns to REL of the zone's stock ``scale``."""
    for level in old[0]:
        a, b = new[0][level], old[0][level]
        assert list(a.columns) == list(b.columns)
        for col in a.columns:
            if col == "geometry":
                continue
            x, y = a[col].to_numpy(), b[col].to_numpy()
            if x.dtype.kind in "fc" or y.dtype.kind in "fc":
                x, y = x.astype(float), y.astype(float)
                assert np.array_equal(np.isnan(x), np.isnan(y)), (level, col)
                tol = REL * scale[level] if col.startswith(DIFF_COLUMNS) or col.startswith("carbon_t_") else 0.0
                assert np.allclose(x, y, rtol=0, atol=tol, equal_nan=True), (level, col, x, y)
            else:
                assert x.tolist() == y.tolist(), (level, col)
    pd.testing.assert_frame_equal(new[1], old[1], rtol=REL, check_exact=False)


def test_differences_from_the_record_equal_drawing_the_baseline_again():
    sc = plan(CONSTRUCTION, PARK, PLANTING, growth={"years_to_maturity": {"G1": 20, "XG": 10}, "at_year": 5})
    layers = [LAYERS["construction"], LAYERS["park"], LAYERS["planting"]]
    old, (base, models, scen, se) = tables_of(sc, layers)
    records = record_of(base, models, scen, sc, se)
    new, _ = tables_of(sc, layers, records)
    # the scale of a zone's sums: its baseline stock from the record (t C)
    scale = {r.level: np.abs(r.estimate).max() for r in records}
    assert min(scale.values()) > 1.0
    assert_same_tables(new, old, scale)
    block = old[0]["block"].set_index("zone_id")
    # what the case exercises: b3 loses land, b4 gains a park on bare land; the XG pixel (no fill) is NaN in the
    # baseline and a park in the plan, where the difference function gives 0 (NaN) but the sums s and nothing
    assert block.loc["b3", "difference_t"] < -1.0 and block.loc["b4", "difference_t"] > 0.5
    fn_b, fn_s, _ = paired_functions(base, models, scen, scenario_models(models, sc), YEAR, se, setting())
    px = np.array([XG_PIXEL])
    assert np.isnan(fn_b(px)[0]).all() and np.isfinite(fn_s(px)[1]).all() and fn_s(px)[0][0] > 1.0
    assert np.isfinite(block.loc["b4", "difference_t_year5"]) and "difference_t_planting" in block.columns
    # construction empties typed pixels (baseline only) and the planting types open land (scenario only)
    act_b, act_s = typed_pixels(base.fractions), typed_pixels(scen.fractions)
    assert np.setdiff1d(act_b, act_s).size and np.setdiff1d(act_s, act_b).size
    # the baseline drawn again only where the changes touch: a fraction of the typed pixels
    assert 0 < touched_pixels(scen, np.union1d(act_b, act_s)).size < act_b.size


def test_a_zone_no_change_touches_differs_by_exactly_zero():
    sc = plan(PARK)
    park = [shapely.box(52, 25, 67, 40)]  # columns 5-6, rows 4-5: inside block b4 and district E only
    old, (base, models, scen, se) = tables_of(sc, park)
    new, _ = tables_of(sc, park, record_of(base, models, scen, sc, se))
    block = new[0]["block"].set_index("zone_id")
    assert np.isnan(block.loc["b2", "difference_t"])  # the XG pixel (no fill): unknown in both
    assert (block.loc[["b1", "b3"], ["difference_t", "difference_t_lo", "difference_t_hi"]] == 0).all().all()
    assert (new[0]["district"].set_index("zone_id").loc["W", ["difference_t", "difference_t_lo"]] == 0).all()
    assert block.loc["b4", "difference_t"] == pytest.approx(old[0]["block"].set_index("zone_id").loc["b4", "difference_t"],
                                                            rel=1e-12)
    none, _ = tables_of(plan(), [], record_of(base, models, burn(base, plan(), [], GRID, TH), plan(), se))
    for level in ("district", "block"):  # no change: 0 in every zone whose carbon is known (E and b2 hold the XG pixel)
        d = none[0][level].set_index("zone_id")[["difference_t", "difference_t_lo", "difference_t_hi"]]
        assert d.isna().any(axis=1).index[d.isna().any(axis=1)].tolist() == ({"district": ["E"], "block": ["b2"]}[level])
        assert (d.dropna() == 0).all().all()


def test_the_record_round_trips_and_is_refused_when_it_is_not_this_run(tmp_path):
    sc = plan(PARK)
    base, models = city()
    scen = burn(base, sc, [np.array([LAYERS["park"]], dtype=object)], GRID, TH)
    se = np.full((N, N), 0.03, np.float32)
    records = record_of(base, models, scen, sc, se)
    path = tmp_path / "block.draws.npz"
    records[1].write(path)
    back = ZoneDraws.read(path)
    assert back.draws.dtype == np.float64 and back.draws.shape == (4, 40)
    assert np.array_equal(back.draws, records[1].draws) and np.array_equal(back.estimate, records[1].estimate)
    assert back.zone_ids.tolist() == ["b1", "b2", "b3", "b4"] and back.path == str(path)
    # another seed, another year, other uncertainty settings, other models, another zone list: refused by name
    cases = [(dict(seed=12), "seed must be 12 for this run. Got 11"), (dict(year=2025), "year must be 2025 for this run. Got 2024"),
             (dict(uncertainty={**UNCERTAINTY, "edges": {"enabled": False}}), "uncertainty_sha256 must be"),
             (dict(models={**models, "seed": 3}), "models_sha256 must be")]
    for change, text in cases:
        kw = {"seed": 11, "year": YEAR, "uncertainty": UNCERTAINTY, "models": models, **change}
        ident = ZoneDraws.identity(seed=kw["seed"], year=kw["year"], n_draws=40, uncertainty=kw["uncertainty"],
                                   models_sha256=content_sha256(kw["models"]))
        with pytest.raises(InputDataError, match=text) as err:
            back.check(level="block", zone_ids=["b1", "b2", "b3", "b4"], identity=ident)
        assert str(path) in str(err.value) and "rule aggregate" in str(err.value)
    ident = ZoneDraws.identity(seed=11, year=YEAR, n_draws=40, uncertainty=UNCERTAINTY, models_sha256=content_sha256(models))
    back.check(level="block", zone_ids=["b1", "b2", "b3", "b4"], identity=ident)  # this run's: accepted
    # defaults written out or left out are the same settings
    assert ZoneDraws.identity(seed=1, year=1, n_draws=1, uncertainty={}, models_sha256="")["uncertainty_sha256"] == \
        ZoneDraws.identity(seed=1, year=1, n_draws=1, uncertainty={"curve": True}, models_sha256="")["uncertainty_sha256"]
    with pytest.raises(InputDataError, match="zone_ids must be the 4 zones"):
        back.check(level="block", zone_ids=["b1", "b2", "b4", "b3"], identity=ident)
    with pytest.raises(InputDataError, match="level must be 'district' for this run. Got 'block'"):
        back.check(level="district", zone_ids=["b1", "b2", "b3", "b4"], identity=ident)
    # scenario_tables checks the records before using them: a record of another year is refused
    other = record_of(base, models, scen, sc, se, identity={**ident, "year": 2023})
    with pytest.raises(InputDataError, match="year must be 2024 for this run. Got 2023"):
        tables_of(sc, [LAYERS["park"]], other)
    # a file that is not a record
    bad = tmp_path / "bad.draws.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InputDataError, match="bad.draws.npz"):
        ZoneDraws.read(bad)
    io.write_arrays(bad, {"zone_ids": np.array(["a"])}, {"format": 1})
    with pytest.raises(InputDataError, match="lacks draws_t, estimate_t"):
        ZoneDraws.read(bad)


@pytest.mark.slow
@pytest.mark.large  # every plan drawn twice on the baseline run (minutes): make test-large
def test_baseline_run_scenarios_from_the_record_equal_drawing_the_baseline_again(baseline_run, tmp_path):
    """The baseline run's three plans, recomputed by run_scenario_zones with and without the records rule
    aggregate wrote (results/2025/zones/{level}.draws.npz): every output equal, differences to REL of the stock;
    and the files the workflow wrote are those of the record path."""
    from greensink.scenario.run import run_scenario_zones

    run = baseline_run
    cfg = json.loads(json.dumps(__import__("yaml").safe_load((run / "config.yaml").read_text(encoding="utf-8"))))
    from greensink.config import validate

    cfg = validate(cfg)
    levels = [z["level"] for z in cfg["zones"]]
    year = cfg["scenarios"][0].get("baseline_year", cfg["years"][-1])
    res = run / "results"
    for level in levels:  # the record matches the year's zone table
        rec = ZoneDraws.read(res / f"{year}/zones/{level}.draws.npz")
        table = io.read_vector(res / f"{year}/zones/{level}.gpkg")
        assert rec.zone_ids.tolist() == table["zone_id"].astype(str).tolist()
        known = table["carbon_t"].notna().to_numpy()
        assert np.allclose(rec.estimate[known], table["carbon_t"].to_numpy()[known], rtol=1e-6)  # float32 densities
    for sc in cfg["scenarios"]:
        name = sc["name"]
        base_keys = {"ndvi": "ndvi.tif", "fvc": "fvc.tif", "canopy": "canopy.tif", "height": "height.tif",
                     "vegetation": "vegetation.tif", "classes": "vegetation_class.tif"}
        baseline = {k: res / f"{year}/{v}" for k, v in base_keys.items()}
        baseline.update(fractions=res / "types/fractions.tif", greenspace=res / "types/greenspace.gpkg")
        s_keys = ("ndvi", "fvc", "canopy", "height", "vegetation", "tree_shrub", "fractions", "changes")
        layers = {k: res / f"scenarios/{name}/{k}.tif" for k in s_keys}
        layers["greenspace"] = res / f"scenarios/{name}/greenspace.gpkg"
        out = {}
        for label, draws in (("old", None), ("new", [res / f"{year}/zones/{lv}.draws.npz" for lv in levels])):
            d = tmp_path / name / label
            out[label] = run_scenario_zones(
                [res / f"zones/{lv}.gpkg" for lv in levels], [res / f"zones/{lv}_coverage.npz" for lv in levels],
                res / "zones/grid.json", baseline, res / f"{year}/ndvi_se.tif", res / f"{year}/model/models.json",
                [res / f"{year}/zones/{lv}.gpkg" for lv in levels], layers, res / f"scenarios/{name}/models.json",
                run / cfg["targets"] if not str(cfg["targets"]).startswith("/") else cfg["targets"],
                [d / f"{lv}.gpkg" for lv in levels], d / "totals.csv", scenario=sc, years=[year], levels=levels,
                types=list(cfg["greenspace"]["types"]) if cfg.get("greenspace") else ["VEG"],
                greenspace=cfg.get("greenspace"), park_service=cfg["indicators"]["park_service"],
                interval_pct=cfg["carbon"]["interval_pct"], min_observed_pct=cfg["carbon"]["min_observed_pct"],
                uncertainty=cfg.get("uncertainty", {}), seed=cfg["seed"], baseline_draws=draws)
        scale = {lv: float(np.nanmax(np.abs(io.read_vector(res / f"{year}/zones/{lv}.gpkg")["carbon_t"]))) for lv in levels}
        assert_same_tables(out["new"], out["old"], scale)
        # the workflow's own tables (written from the record) are the same numbers
        for lv in levels:
            wrote = io.read_vector(res / f"scenarios/{name}/zones/{lv}.gpkg")
            diff = out["old"][0][lv]["difference_t"].to_numpy(dtype=float)
            assert np.allclose(wrote["difference_t"].to_numpy(dtype=float), diff, rtol=0, atol=REL * scale[lv],
                               equal_nan=True)


def test_rule_aggregate_writes_each_levels_record_with_the_tables_numbers(tmp_path):
    """run_aggregate on test_runners' hand-built files (hand-computed carbon there): the record of each level holds
    the zone table's carbon as its estimate, in the table's zone order, with the run's identity."""
    from test_runners import NO_NOISE, aggregate_inputs

    inp = aggregate_inputs(tmp_path)
    tables = [tmp_path / "out" / "city.parquet", tmp_path / "out" / "block.parquet"]
    draws = [tmp_path / "out" / "city.draws.npz", tmp_path / "out" / "block.draws.npz"]
    gs = {"type_column": "type", "park_types": ["G1"], "types": {"G1": "park"}}
    out = run_aggregate(inp["zones"], inp["coverage"], inp["grid"], inp["rasters"], inp["fractions"], inp["greenspace"],
                        inp["models_json"], inp["predictors"], None, tables, year=2024, levels=["city", "block"],
                        types=["G1"], greenspace_config=gs, seed=1, min_observed_pct=40.0, uncertainty=NO_NOISE,
                        population=inp["population"], population_config={"column": "people"}, draws_out=draws)
    models = io.read_json(inp["models_json"])
    n = np.asarray(models["types"]["G1"]["bootstrap"]).shape[0]
    ident = ZoneDraws.identity(seed=1, year=2024, n_draws=n, uncertainty=NO_NOISE, models_sha256=content_sha256(models))
    for level, path in zip(("city", "block"), draws, strict=True):
        rec = ZoneDraws.read(path)
        rec.check(level=level, zone_ids=out[level]["zone_id"].to_numpy(), identity=ident)
        # every zone's estimate is its carbon_t, to float32 rounding (the table sums the float32 type densities)
        assert rec.estimate == pytest.approx(out[level]["carbon_t"].to_numpy(), rel=1e-6)
        assert rec.draws.shape == (len(out[level]), n)
    block = ZoneDraws.read(draws[1])
    # B: (15 + 0 + 40 + 17.5) t C/ha x 0.01 ha = 0.725 t (test_runners)
    assert block.zone_ids.tolist() == ["A", "B"] and block.estimate[1] == pytest.approx(0.725, rel=1e-6)
    assert np.allclose(block.draws[1], 0.725, rtol=1e-6)  # no noise, identical table draws (test_runners)


def test_write_arrays_is_byte_stable_and_numpy_reads_it(tmp_path):
    arrays = {"zone_ids": np.array(["a", "b"]), "draws_t": np.arange(6, dtype=np.float64).reshape(2, 3) / 7}
    one, two = tmp_path / "1.npz", tmp_path / "2.npz"
    io.write_arrays(one, arrays, {"k": 1})
    io.write_arrays(two, arrays, {"k": 1})
    assert one.read_bytes() == two.read_bytes()
    import zipfile  # the members' time is fixed, not the clock's (which would change the bytes of a rerun)

    assert {i.date_time for i in zipfile.ZipFile(one).infolist()} == {(1980, 1, 1, 0, 0, 0)}
    with np.load(one, allow_pickle=False) as data:
        assert np.array_equal(data["draws_t"], arrays["draws_t"]) and data["draws_t"].dtype == np.float64
    back, meta = io.read_arrays(one)
    assert meta == {"k": 1} and back["zone_ids"].tolist() == ["a", "b"]
    with pytest.raises(ValueError, match="header's name"):
        io.write_arrays(one, {"__meta__": np.zeros(1)}, {})
