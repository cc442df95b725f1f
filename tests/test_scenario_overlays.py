"""Rule scenario_zones does the park-service overlay once per scenario and the people per zone once per level
(issue 14 item 3), as rule aggregate does since 813fa28: :func:`greensink.scenario.tables.scenario_tables` builds
:func:`greensink.indicators.service_overlay` of the plan's own parks once for every level (a plan may add a park or
build on one, so the baseline year's overlay is not reused) and hands the level's people to both the zone table and
the coverage columns. The columns must be the per-level code's numbers bit for bit (the reference copied verbatim in
tests/test_aggregate_overlays.py), on a hand-built city of two levels with hand-computed values, and on the session's
baseline run's three plans."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from greensink import aggregate, indicators, io
from greensink.coverage import coverage_matrix
from greensink.overlay import population_in_zones
from greensink.scenario import tables as scenario_tables_module
from greensink.scenario.burn import burn, scenario_models
from greensink.scenario.tables import Setting, scenario_tables
from test_aggregate_overlays import Counter, reference_park_service_columns
from test_scenarios import CRS, GRID, TH, hand_models, landscape, layers_of, plan

RULES = [{"min_area_m2": 100.0, "radius_m": 5.0}]
PARK_COLUMNS = ("park_service_population_pct", "park_service_residential_pct")


def two_levels() -> tuple[list[str], list[gpd.GeoDataFrame]]:
    city = gpd.GeoDataFrame({"zone_id": ["C"], "parent_id": [""], "level": ["city"], "name": ["c"]},
                            geometry=[box(0, 0, 40, 40)], crs=CRS)
    blocks = gpd.GeoDataFrame({"zone_id": ["A", "B"], "parent_id": ["C", "C"], "level": ["block", "block"],
                               "name": ["a", "b"]}, geometry=[box(0, 0, 20, 40), box(20, 0, 40, 40)], crs=CRS)
    return ["city", "block"], [city, blocks]


def run_plan(typed_land: bool = True):
    """The baseline's G1 park is x 0-20 (800 m²); the plan adds a G1 park on x 20-35, y 20-40 (300 m²). With a 5 m
    radius for parks of 100 m² or more, the baseline serves x < 25 only and the plan every point of y 20-40."""
    base = landscape()
    models = hand_models(["G1", "G2", "XG"])
    sc = plan({"kind": "greenspace", "path": "x", "type": "G1", "state": {"density_t_ha": 30}})
    scen = burn(base, sc, layers_of(box(20, 20, 35, 40)), GRID, TH)
    levels, zones = two_levels()
    people = gpd.GeoDataFrame({"people": [80.0]}, geometry=[box(0, 20, 40, 40)], crs=CRS)  # 0.1 per m²
    homes = gpd.GeoDataFrame(geometry=[box(25, 20, 35, 40)], crs=CRS)  # inside the new park: served by the plan only
    setting = Setting(levels=levels, zones=zones,
                      matrices=[coverage_matrix(list(z.geometry.values), GRID.transform, GRID.shape) for z in zones],
                      grid=GRID, park_types=["G1"], park_service=RULES, population=people, population_column="people",
                      residential=homes, typed_land=typed_land)
    baseline = {level: pd.DataFrame({"zone_id": z["zone_id"], "carbon_t": [1.6] if level == "city" else [1.6, 0.0]})
                for level, z in zip(levels, zones, strict=True)}
    tables, _ = scenario_tables(sc, base, models, scen, scenario_models(models, sc), np.full((4, 4), 0.02, np.float32),
                                baseline, [], setting)
    return tables, scen, base, setting


def test_scenario_overlay_once_per_plan_people_once_per_level_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    served = Counter(indicators.service_area)
    people_here = Counter(scenario_tables_module.population_in_zones)
    monkeypatch.setattr(indicators, "service_area", served)
    monkeypatch.setattr(scenario_tables_module, "population_in_zones", people_here)
    aggregate_people = Counter(aggregate.population_in_zones)
    for module in (aggregate.run, aggregate.table):  # the finish step and the zone table call it
        monkeypatch.setattr(module, "population_in_zones", aggregate_people)
    monkeypatch.setattr(indicators, "population_in_zones", Counter(indicators.population_in_zones))
    tables, scen, base, setting = run_plan()
    assert served.calls == 1  # once for the plan, not once per level
    assert people_here.calls == 2  # once per level ...
    assert aggregate_people.calls == 0  # ... shared by the zone table
    assert indicators.population_in_zones.calls == 0  # ... and the coverage columns
    monkeypatch.undo()

    city, block = tables["city"].iloc[0], tables["block"].set_index("zone_id")
    # by hand: the plan serves the whole population strip (y 20-40) and the homes (x 25-35)
    assert city["park_service_population_pct"] == pytest.approx(100.0, rel=1e-12)
    assert block.loc["A", "park_service_population_pct"] == pytest.approx(100.0, rel=1e-12)
    assert block.loc["B", "park_service_population_pct"] == pytest.approx(100.0, rel=1e-12)
    assert city["park_service_residential_pct"] == pytest.approx(100.0, rel=1e-12)
    assert np.isnan(block.loc["A", "park_service_residential_pct"])  # no homes in A: no value, not 0
    assert block.loc["B", "park_service_residential_pct"] == pytest.approx(100.0, rel=1e-12)
    assert city["population"] == pytest.approx(80.0) and block["population"].tolist() == pytest.approx([40.0, 40.0])

    codes = scen.greenspace["type"].astype(str).to_numpy()
    plan_parks = scen.greenspace.geometry.values[codes == "G1"]
    for level, z in zip(setting.levels, setting.zones, strict=True):
        ref = reference_park_service_columns(z, plan_parks, RULES, setting.population, "people", setting.residential)
        for name in PARK_COLUMNS:  # the per-level code's numbers, bit for bit
            np.testing.assert_array_equal(tables[level][name].to_numpy(dtype=float), ref[name])
        np.testing.assert_array_equal(tables[level]["population"].to_numpy(dtype=float),
                                      population_in_zones(z.geometry.values, setting.population, "people"))
        # the baseline year's parks give other numbers (B: 5 of 20 m wide served, its homes not at all): the
        # plan's own overlay is the one used, the baseline's could not be reused
        old = reference_park_service_columns(z, base.greenspace.geometry.values, RULES, setting.population, "people",
                                             setting.residential)
        if level == "block":
            assert old["park_service_population_pct"][1] == pytest.approx(25.0, rel=1e-12)
            assert old["park_service_residential_pct"][1] == 0.0


def test_scenario_without_typed_land_has_no_park_service_values(monkeypatch: pytest.MonkeyPatch) -> None:
    served = Counter(indicators.service_area)
    monkeypatch.setattr(indicators, "service_area", served)
    tables, *_ = run_plan(typed_land=False)
    assert served.calls == 0  # no parks known: nothing to overlay
    for table in tables.values():
        for name in PARK_COLUMNS:
            assert table[name].isna().all()


@pytest.mark.slow
@pytest.mark.large  # every plan run again on the baseline run: make test-large
def test_baseline_run_scenario_columns_equal_the_per_level_code(baseline_run, tmp_path):
    """The baseline run's three plans through run_scenario_zones (with the records, as the workflow runs it, and
    residential land added here: every other parcel, since the demo has none): the park-service and population
    columns equal the per-level code on each plan's own greenspace, bit for bit, and every other column equals the
    tables the workflow wrote."""
    from greensink.config import validate
    from greensink.scenario.run import run_scenario_zones

    run = baseline_run
    cfg = validate(json.loads(json.dumps(__import__("yaml").safe_load((run / "config.yaml").read_text(encoding="utf-8")))))
    levels = [z["level"] for z in cfg["zones"]]
    year = cfg["scenarios"][0].get("baseline_year", cfg["years"][-1])
    res = run / "results"
    gs = cfg["greenspace"]
    pop_cfg = cfg["population"]
    pop_path = _resolve(run, pop_cfg["path"])
    grid_crs = json.loads((res / "zones/grid.json").read_text())["crs"]
    pop = io.read_vector(pop_path).to_crs(grid_crs)
    parcels = io.read_vector(res / f"zones/{levels[-1]}.gpkg")
    homes_path = tmp_path / "residential.gpkg"
    parcels.iloc[::2][["geometry"]].to_file(homes_path)
    homes = io.read_vector(homes_path).to_crs(grid_crs)
    checked = 0
    for sc in cfg["scenarios"]:
        name = sc["name"]
        base_keys = {"ndvi": "ndvi.tif", "fvc": "fvc.tif", "canopy": "canopy.tif", "height": "height.tif",
                     "vegetation": "vegetation.tif", "classes": "vegetation_class.tif"}
        baseline = {k: res / f"{year}/{v}" for k, v in base_keys.items()}
        baseline.update(fractions=res / "types/fractions.tif", greenspace=res / "types/greenspace.gpkg")
        layers = {k: res / f"scenarios/{name}/{k}.tif"
                  for k in ("ndvi", "fvc", "canopy", "height", "vegetation", "tree_shrub", "fractions", "changes")}
        layers["greenspace"] = res / f"scenarios/{name}/greenspace.gpkg"
        d = tmp_path / name
        tables, _ = run_scenario_zones(
            [res / f"zones/{lv}.gpkg" for lv in levels], [res / f"zones/{lv}_coverage.npz" for lv in levels],
            res / "zones/grid.json", baseline, res / f"{year}/ndvi_se.tif", res / f"{year}/model/models.json",
            [res / f"{year}/zones/{lv}.gpkg" for lv in levels], layers, res / f"scenarios/{name}/models.json",
            _resolve(run, cfg["targets"]), [d / f"{lv}.gpkg" for lv in levels], d / "totals.csv", scenario=sc,
            years=[year], levels=levels, types=list(gs["types"]), greenspace=gs,
            park_service=cfg["indicators"]["park_service"], interval_pct=cfg["carbon"]["interval_pct"],
            min_observed_pct=cfg["carbon"]["min_observed_pct"], uncertainty=cfg.get("uncertainty", {}), seed=cfg["seed"],
            population=pop_path, population_config=pop_cfg, residential=homes_path,
            baseline_draws=[res / f"{year}/zones/{lv}.draws.npz" for lv in levels])
        plan_gs = io.read_vector(layers["greenspace"]).to_crs(grid_crs)
        parks = plan_gs.geometry.values[plan_gs[gs["type_column"]].astype(str).isin(gs["park_types"]).to_numpy()]
        for lv in levels:
            zones = io.read_vector(res / f"zones/{lv}.gpkg")
            ref = reference_park_service_columns(zones, parks, cfg["indicators"]["park_service"], pop, pop_cfg["column"],
                                                 homes)
            for col in PARK_COLUMNS:
                np.testing.assert_array_equal(tables[lv][col].to_numpy(dtype=float), ref[col])
                checked += int(np.isfinite(ref[col]).sum())
            np.testing.assert_array_equal(tables[lv]["population"].to_numpy(dtype=float),
                                          population_in_zones(zones.geometry.values, pop, pop_cfg["column"]))
            # the workflow ran without residential land: its residential coverage is NaN, the rest the same
            wrote = io.read_vector(res / f"scenarios/{name}/zones/{lv}.gpkg")
            assert wrote["park_service_residential_pct"].isna().all()
            same = [c for c in wrote.columns if c not in ("geometry", "park_service_residential_pct")]
            ours = io.read_vector(d / f"{lv}.gpkg")
            pd.testing.assert_frame_equal(pd.DataFrame(ours[same]), pd.DataFrame(wrote[same]), check_exact=True)
    assert checked > 0  # some zone has a value to compare


def _resolve(run: Path, path) -> Path:
    p = Path(str(path))
    return p if p.is_absolute() else run / p
