"""No data is never zero, tiers and pools (issue 10, items 4 and 5): hand-computed zone tables on a
4 × 4 grid of 10 m pixels (0.01 ha each), and a workflow run with no plots and no green-space types.

Grid: columns 0-3 from x = 0 m. G1 (C = 1 + 10 NDVI) covers columns 0-2 (x 0..30 m). NDVI is 0.6
in columns 0-1 and NaN (never observed clear) in columns 2-3. Parcels: P1 x 0..20 (G1, observed),
P2 x 20..30 (G1, never observed), P3 x 30..40 (no typed land). Block B1 = x 0..40.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import yaml
from shapely.geometry import box

from greensink.aggregate import pool_sums, zone_draw_sums, zone_table, zone_tiers
from greensink.carbon import fill_values, pixel_function, type_density, type_fill, typed_pixels
from greensink.coverage import coverage_matrix
from greensink.grid import Grid
from greensink.model import fallback_type_model
from greensink.report import zone_row
from greensink.tiers import VEG, annotate_models, default_table, table_pools
from greensink.types import resolve_overlaps, type_fractions

ROOT = Path(__file__).resolve().parents[1]
CRS = "EPSG:32651"
X0, Y0 = 500_000.0, 3_500_000.0
GRID = Grid.from_bounds((X0, Y0, X0 + 40, Y0 + 40), 10, CRS)
NAN = np.nan
G1 = {"form": "linear", "params": {"a": 1.0, "b": 10.0}, "bootstrap": [[1.0, 10.0], [2.0, 10.0], [0.0, 10.0]]}


def xbox(x0: float, x1: float):
    return box(X0 + x0, Y0, X0 + x1, Y0 + 40)


def ndvi(observed_cols: int = 2) -> np.ndarray:
    out = np.full((4, 4), NAN, dtype=np.float32)
    out[:, :observed_cols] = 0.6
    return out


def rasters(nd: np.ndarray) -> dict[str, np.ndarray]:
    finite = np.isfinite(nd)
    veg = np.where(finite, (nd >= 0.2).astype(np.float32), NAN).astype(np.float32)
    return {"ndvi": nd, "fvc": np.where(finite, 0.5, NAN).astype(np.float32), "vegetation": veg, "canopy": veg}


def zones():
    block = gpd.GeoDataFrame({"zone_id": ["B1"], "parent_id": ["D1"], "level": ["block"], "name": ["b"]},
                             geometry=[xbox(0, 40)], crs=CRS)
    parcel = gpd.GeoDataFrame({"zone_id": ["P1", "P2", "P3"], "parent_id": ["B1"] * 3, "level": ["parcel"] * 3,
                               "name": ["<seen>", "unseen", "bare"]},
                              geometry=[xbox(0, 20), xbox(20, 30), xbox(30, 40)], crs=CRS)
    return block, parcel


def run_tables(models: dict, gs_geoms: list, nd: np.ndarray, types=("G1",), **kw):
    types = list(types)
    raw = gpd.GeoDataFrame({"type": [t for t, _ in gs_geoms]}, geometry=[g for _, g in gs_geoms], crs=CRS)
    gs, _ = resolve_overlaps(raw, "type", types)
    fractions = type_fractions(gs, "type", types, GRID)
    r = rasters(nd)
    fill = type_fill(models, types, fractions, nd, seed=0)
    fn = pixel_function(models, types, fractions, nd, fill=fill_values(fill))
    levels = list(zones())
    matrices = [coverage_matrix(list(z.geometry.values), GRID.transform, GRID.shape) for z in levels]
    sums = zone_draw_sums(matrices, fn, typed_pixels(fractions), GRID.pixel_area_ha)
    density = type_density(models, types, fractions, nd)
    return [zone_table(z, m, GRID, r, density, types, s, gs, "type", [t for t in types if t == "G1"], fractions=fractions,
                       fill_t_ha={t: v["fill_t_ha"] for t, v in fill.items()}, **kw)
            for z, m, s in zip(levels, matrices, sums, strict=True)]


def test_never_observed_zone_is_nan_not_zero_and_a_zone_without_typed_land_is_zero():
    block, parcel = run_tables({"types": {"G1": G1}}, [("G1", xbox(0, 30))], ndvi(2))
    p1, p2, p3 = (parcel.iloc[i] for i in range(3))
    # P1: 8 px × (1 + 10·0.6 = 7 t C/ha) × 0.01 ha = 0.56 t, all observed
    assert p1["carbon_t"] == pytest.approx(0.56, rel=1e-6) and p1["carbon_t_filled"] == 0.0
    # P2: its G1 land (4 px) was never observed clear: NaN carbon, bounds, densities and per-type carbon
    for col in ("carbon_t", "carbon_t_lo", "carbon_t_hi", "carbon_t_ha", "co2e_t", "carbon_t_G1"):
        assert np.isnan(p2[col]), col
    assert p2["carbon_observed_pct"] == 0.0
    # ... but the fill it would get is still stated, so observed + filled nest: 4 px × 7 × 0.01 = 0.28 t
    assert (p2["carbon_t_observed"], p2["carbon_t_filled"]) == pytest.approx((0.0, 0.28), rel=1e-6)
    # P3: no typed land at all: legitimately 0 t, no tier
    assert p3["carbon_t"] == 0.0 and p3["carbon_tier"] == "" and np.isnan(p3["carbon_observed_pct"])
    # B1: 8 of 12 px of G1 observed = 66.7 % >= 50 %: reported, with P2's land filled at 7 t C/ha
    b = block.iloc[0]
    assert b["carbon_observed_pct"] == pytest.approx(200 / 3)
    assert (b["carbon_t"], b["carbon_t_filled"]) == pytest.approx((0.84, 0.28), rel=1e-6)
    # observed and filled tonnes nest from parcels to the block even where a parcel is NaN
    for col in ("carbon_t_observed", "carbon_t_filled"):
        assert parcel[col].sum() == pytest.approx(b[col], rel=1e-9)
    # the report shows "—" for the unobserved parcel, the number for the bare one
    cells = zone_row(parcel.iloc[1])["cells"]
    assert cells[6]["text"] == "—" and cells[7]["text"] == "—"
    assert zone_row(parcel.iloc[2])["cells"][6]["text"] == "0.00"


def test_below_min_observed_share_the_zone_is_nan():
    # the same scene with min_observed_pct 70: B1 has 66.7 % of its typed land observed -> NaN
    block, _ = run_tables({"types": {"G1": G1}}, [("G1", xbox(0, 30))], ndvi(2), min_observed_pct=70.0)
    assert np.isnan(block["carbon_t"].iloc[0]) and block["carbon_t_filled"].iloc[0] == pytest.approx(0.28)


def test_partly_observed_zone_filled_by_hand_with_the_type_mean_and_its_spread():
    # NDVI 0.2 in column 0, 0.8 in column 1 (observed), NaN in columns 2-3; G1 covers columns 0-2
    nd = ndvi(2)
    nd[:, 0] = 0.2
    nd[:, 1] = 0.8
    models = {"types": {"G1": G1}}
    block, parcel = run_tables(models, [("G1", xbox(0, 30))], nd)
    # G1 densities: 1 + 10·0.2 = 3 (4 px), 1 + 10·0.8 = 9 (4 px): mean 6 t C/ha of G1 land,
    # between-pixel sd sqrt((4·9 + 4·9) / 8) = 3
    fractions = np.zeros((1, 4, 4), dtype=np.float32)
    fractions[0, :, :3] = 1.0
    fill = type_fill(models, ["G1"], fractions, nd, seed=0)["G1"]
    assert (fill["fill_t_ha"], fill["spread_t_ha"]) == pytest.approx((6.0, 3.0))
    # fill draws: draw means (a = 1, 2, 0 -> 6, 7, 5) + 3 z_b, z_b from the documented generator
    import zlib
    z = np.random.default_rng([0, zlib.crc32(b"G1"), 7]).standard_normal(3)
    np.testing.assert_allclose(fill["draws"], np.maximum([6 + 3 * z[0], 7 + 3 * z[1], 5 + 3 * z[2]], 0))
    # B1: observed (4·3 + 4·9) × 0.01 = 0.48 t; filled 4 px × 6 × 0.01 = 0.24 t; carbon 0.72 t
    b = block.iloc[0]
    assert (b["carbon_t_observed"], b["carbon_t_filled"], b["carbon_t"]) == pytest.approx((0.48, 0.24, 0.72), rel=1e-6)
    # a constant 6 t C/ha would give the same 0.72 t: the fill does not undercount the unseen third
    assert b["carbon_t_ha"] == pytest.approx(0.72 / 0.16, rel=1e-6)
    # interval from the same draws (observed draws + fill draws, summed per draw), containing the estimate
    assert b["carbon_t_lo"] <= 0.72 <= b["carbon_t_hi"]


def test_constant_density_type_needs_no_ndvi():
    # XG at a table constant 10 t C/ha over columns 0-2: the unobserved column 2 still counts 10 t C/ha
    xg = fallback_type_model("XG", 10.0, 0.0, 0, "no plots", n_bootstrap=3)
    block, parcel = run_tables({"types": {"XG": xg}}, [("XG", xbox(0, 30))], ndvi(2), types=("XG",))
    # P2 (never observed): 4 px × 10 × 0.01 = 0.4 t, nothing filled, 100 % known
    assert parcel["carbon_t"].iloc[1] == pytest.approx(0.4) and parcel["carbon_t_filled"].iloc[1] == 0.0
    assert parcel["carbon_observed_pct"].iloc[1] == pytest.approx(100.0)
    assert block["carbon_t"].iloc[0] == pytest.approx(1.2)


def test_sliver_of_green_space_gets_its_density_not_a_flag():
    # G1 covers x 0..15.01 m; P2 (x 20..30) holds none of it and P1 (x 0..20) holds 15.01 m of it.
    # Parcel X = x 15..20 holds a 0.01 m sliver (0.4 m²) of G1 but half of pixel column 1, whose G1
    # fraction is 0.501: carbon spread over pixel fractions, 4 px × 0.5 × 0.501 × 7 × 0.01 = 0.07014 t.
    # Over the exact polygon area (0.4 m² = 4e-5 ha) that would be 1753.5 t C/ha; over the same pixel
    # fractions (4 × 0.5 × 0.501 × 0.01 = 0.01002 ha) it is 7 t C/ha, the density of the land.
    raw = gpd.GeoDataFrame({"type": ["G1"]}, geometry=[xbox(0, 15.01)], crs=CRS)
    gs, _ = resolve_overlaps(raw, "type", ["G1"])
    fractions = type_fractions(gs, "type", ["G1"], GRID)
    nd = np.full((4, 4), 0.6, dtype=np.float32)
    sliver = gpd.GeoDataFrame({"zone_id": ["X"], "parent_id": ["B1"], "level": ["parcel"], "name": ["x"]},
                              geometry=[xbox(15, 20)], crs=CRS)
    m = coverage_matrix(list(sliver.geometry.values), GRID.transform, GRID.shape)
    models = {"types": {"G1": G1}}
    [s] = zone_draw_sums([m], pixel_function(models, ["G1"], fractions, nd), typed_pixels(fractions), GRID.pixel_area_ha)
    t = zone_table(sliver, m, GRID, rasters(nd), type_density(models, ["G1"], fractions, nd), ["G1"], s, gs, "type", ["G1"],
                   fractions=fractions)
    assert t["carbon_t"].iloc[0] == pytest.approx(0.07014, rel=1e-5)
    assert t["green_space_area_ha"].iloc[0] == pytest.approx(4e-5, rel=1e-6)
    assert t["carbon_t_per_green_space_ha"].iloc[0] == pytest.approx(7.0, rel=1e-5)
    assert t["plausibility_flag"].iloc[0] == ""


def test_pools_by_hand_and_never_in_carbon_t():
    # type_ha (2 types × 3 zones): zone 0 G1 only, zone 1 both, zone 2 nothing
    type_ha = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 0.0]])
    # soil 60 t C/ha for G1, none for XG: zone 0 120 t, zone 1 NaN (XG present, no value), zone 2 0
    out = pool_sums(type_ha, np.array([60.0, NAN]))
    assert out[0] == pytest.approx(120.0) and np.isnan(out[1]) and out[2] == 0.0
    np.testing.assert_allclose(pool_sums(type_ha, np.array([60.0, 50.0])), [120.0, 210.0, 0.0])
    # from the table to the zone table: c_soil 60, c_dead 2 for G1 (config/coefficients.csv)
    table = pd.read_csv(ROOT / "config" / "coefficients.csv")
    assert table_pools(table, "G1") == {"c_soil": 60.0, "c_dead": 2.0}
    assert table_pools(default_table(), VEG) == {"c_soil": None, "c_dead": None}
    block, parcel = run_tables({"types": {"G1": G1}}, [("G1", xbox(0, 30))], ndvi(2),
                               pools={"G1": {"c_soil": 60.0, "c_dead": 2.0}}, tiers={"G1": 3})
    # P1: 0.08 ha of G1 -> soil 4.8 t, dead 0.16 t, beside (not in) its 0.56 t of vegetation carbon
    p1 = parcel.iloc[0]
    assert (p1["soil_carbon_t"], p1["dead_carbon_t"], p1["carbon_t"]) == pytest.approx((4.8, 0.16, 0.56), rel=1e-6)
    # soil needs no imagery: the never-observed P2 has 0.04 ha of G1 -> 2.4 t of soil carbon
    assert parcel["soil_carbon_t"].iloc[1] == pytest.approx(2.4, rel=1e-6)
    assert parcel["carbon_tier"].tolist() == ["T3", "T3", ""]


def test_zone_tiers_and_model_annotation():
    present = np.array([[True, True, False], [False, True, False]])
    assert zone_tiers(present, [3, 2]) == ["T3", "T2+T3", ""]
    models = {"types": {"G1": {"source": "plots"}, "XG": {"source": "coefficients"}}}
    table = pd.read_csv(ROOT / "config" / "coefficients.csv")
    annotate_models(models, table, default=False)
    assert (models["types"]["G1"]["tier"], models["types"]["XG"]["tier"], models["tiers"]) == (3, 2, [2, 3])
    assert models["types"]["XG"]["pools"] == {"c_soil": 50.0, "c_dead": 1.0}
    veg = {"types": {VEG: {"source": "coefficients", "form": "constant"}}}
    annotate_models(veg, default_table(), default=True, ndvi_min=0.2)
    assert veg["types"][VEG]["tier"] == 1 and veg["types"][VEG]["ndvi_min"] == 0.2 and veg["default_table"]


def test_pseudo_type_counts_only_vegetated_pixels():
    # one pseudo-type over all land at the default 7.8 t C/ha, gated at NDVI >= 0.2
    m = fallback_type_model(VEG, 7.8, 100.0, 0, "default", n_bootstrap=5)
    m["ndvi_min"] = 0.2
    fractions = np.ones((1, 1, 3), dtype=np.float32)
    nd = np.array([[0.5, 0.1, NAN]], dtype=np.float32)
    est, _ = pixel_function({"types": {VEG: m}}, [VEG], fractions, nd)(np.arange(3))
    # vegetated 7.8; bare 0 (measured: not vegetation); unobserved NaN (not 0)
    assert est[0] == pytest.approx(7.8) and est[1] == 0.0 and np.isnan(est[2])


@pytest.mark.workflow
@pytest.mark.slow
def test_workflow_without_plots_or_greenspace_gives_tier_1_carbon(tmp_path: Path):
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
    cfg["demo"].update({"extent_m": 1000, "blocks": [2, 2], "parcels_per_block": [2, 2], "scenes_per_year": 3})
    cfg["model"]["n_bootstrap"] = 20
    cfg["coefficients"] = str(ROOT / "config" / "coefficients.csv")
    cfg["targets"] = str(ROOT / "config" / "targets.yaml")
    cfg.pop("plots", None)
    cfg.pop("greenspace", None)
    cfg.pop("scenarios", None)  # the demo's plans need its green-space types
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(tmp_path / "config.yaml"), "--cores", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-6000:]
    years = sorted(cfg["years"])
    for year in years:
        models = json.loads((tmp_path / f"results/{year}/model/models.json").read_text())
        assert list(models["types"]) == [VEG] and models["tiers"] == [1] and models["default_table"]
        assert models["types"][VEG]["params"] == {"c": 7.8} and models["types"][VEG]["ndvi_min"] == cfg["vegetation"]["ndvi_vegetation"]
        city = gpd.read_file(tmp_path / f"results/{year}/zones/city.gpkg")
        parcels = gpd.read_file(tmp_path / f"results/{year}/zones/parcel.gpkg")
        # carbon = 7.8 t C/ha × vegetated area, within the default's ±100 %
        assert city["carbon_t"].iloc[0] > 0 and (city["carbon_tier"] == "T1").all() and (parcels["carbon_tier"] == "T1").all()
        assert city["carbon_t_lo"].iloc[0] <= city["carbon_t"].iloc[0] <= city["carbon_t_hi"].iloc[0]
        assert np.isnan(city["green_space_ratio_pct"].iloc[0]) and np.isnan(city["soil_carbon_t"].iloc[0])
        assert parcels["carbon_t"].sum() == pytest.approx(city["carbon_t"].iloc[0], rel=1e-3)
    prov = json.loads((tmp_path / "results/provenance.json").read_text())
    assert prov["carbon_tiers"][str(years[0])]["tiers"] == [1]
    html = (tmp_path / "results/report.html").read_text(encoding="utf-8")
    assert "tier 1: default density table" in html


def test_sink_is_nan_where_either_stock_is_nan():
    from greensink.change import change_table

    _, parcel = zones()
    t0 = pd.DataFrame({"zone_id": ["P1", "P2", "P3"], "carbon_t": [1.0, NAN, 0.0], "green_area_ha": [0.1, 0.0, 0.0],
                       "area_ha": [0.08, 0.04, 0.04]})
    t1 = t0.assign(carbon_t=[2.0, 0.5, 0.0])
    # pixel sums of the sink (from filled draws) exist for P2, but its 2023 stock is unknown
    est = np.array([1.0, 0.5, 0.0])
    out = change_table(parcel, t0, t1, 2023, 2024, (est, np.tile(est[:, None], (1, 3))))
    assert out["sink_t_yr"].iloc[0] == 1.0 and out["sink_t_yr"].iloc[2] == 0.0
    for col in ("sink_t_yr", "sink_t_yr_lo", "sink_t_yr_hi", "sink_t_ha_yr", "sink_co2e_t_yr"):
        assert np.isnan(out[col].iloc[1]), col
