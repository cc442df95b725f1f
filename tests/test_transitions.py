"""Land transitions (IPCC Approach 3, greensink.transitions) and green-space types given per year.

Unit tests on a hand-built 4 × 4 raster with areas and carbon counted by hand; the persistence-first
allocation of type fractions by hand and as a property; per-year green-space types on a small city of our own
(tests/own_city.py) through a dry run (the per-year types jobs) and a real run (a park converted G1 -> EG
between the years: its transition area is the park rectangle's area, computed with shapely); the demo's city
matrix against the city's area.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import scipy.sparse as sp
import yaml
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from shapely.geometry import box

from greensink import config as gconfig
from greensink import workflow
from greensink.transitions import (
    NO_DATA,
    class_weights,
    fraction_weights,
    transition_pairs,
    transitions,
    vegetation_names,
    with_none,
)

ROOT = Path(__file__).resolve().parents[1]
NAN = np.nan
PX_HA = 0.01  # a 10 m pixel

# vegetation class of each pixel (0 none, 1 grass, 2 shrub, 3 tree, NaN no data) and carbon density, t C/ha
C0 = np.array([[0, 0, 1, 1], [0, 1, 1, 2], [3, 3, 2, 2], [3, 3, NAN, 0]], dtype=np.float32)
C1 = np.array([[0, 1, 1, 1], [0, 1, 2, 2], [3, 0, 2, 3], [3, 3, 0, NAN]], dtype=np.float32)
K0 = np.array([[0, 0, 5, 5], [0, 5, 5, 20], [50, 50, 20, 20], [50, 50, NAN, 0]], dtype=np.float32)
K1 = np.array([[0, 4, 6, 6], [0, 5, 22, 21], [55, 1, 20, 48], [52, 49, 0, NAN]], dtype=np.float32)
# pixels (row, col) of each transition, counted by hand from C0 and C1
BY_HAND = {
    ("none", "none"): [(0, 0), (1, 0)], ("none", "grass"): [(0, 1)], ("grass", "grass"): [(0, 2), (0, 3), (1, 1)],
    ("grass", "shrub"): [(1, 2)], ("shrub", "shrub"): [(1, 3), (2, 2)], ("shrub", "tree"): [(2, 3)],
    ("tree", "tree"): [(2, 0), (3, 0), (3, 1)], ("tree", "none"): [(2, 1)], (NO_DATA, "none"): [(3, 2)],
    ("none", NO_DATA): [(3, 3)],
}
# carbon change of each transition, t C: Σ (K1 − K0) × 0.01 ha over its pixels, by hand
CARBON_BY_HAND = {
    ("none", "none"): 0.0, ("none", "grass"): 0.04, ("grass", "grass"): (1 + 1 + 0) * PX_HA,
    ("grass", "shrub"): 0.17, ("shrub", "shrub"): 0.01, ("shrub", "tree"): 0.28, ("tree", "tree"): (5 + 2 - 1) * PX_HA,
    ("tree", "none"): -0.49, (NO_DATA, "none"): NAN, ("none", NO_DATA): NAN,
}


def two_zones() -> sp.csr_matrix:
    """Zone W: columns 0-1 and half of column 2; zone E: the other half of column 2 and column 3 (4 × 4 grid)."""
    w, e = np.zeros((4, 4)), np.zeros((4, 4))
    w[:, :2], w[:, 2], e[:, 2], e[:, 3] = 1.0, 0.5, 0.5, 1.0
    return sp.csr_matrix(np.vstack([w.ravel(), e.ravel()]))


def run_small(k1: np.ndarray = K1):
    city = sp.csr_matrix(np.ones((1, 16)))
    return transitions([2020, 2021], {2020: C0, 2021: C1}, {2020: K0, 2021: k1},
                       {"city": city, "district": two_zones()}, {"city": ["C"], "district": ["W", "E"]}, PX_HA)


def test_transition_matrix_on_a_4x4_raster_by_hand():
    res = run_small()
    city = res.tables["city"].set_index(["from_class", "to_class"])
    assert sorted(city.index) == sorted(BY_HAND)
    for key, pixels in BY_HAND.items():
        assert city.loc[key, "area_ha"] == pytest.approx(len(pixels) * PX_HA, abs=1e-12), key
        expected = CARBON_BY_HAND[key]
        if np.isnan(expected):
            assert np.isnan(city.loc[key, "carbon_change_t"]), key  # unobserved in a year: no carbon change known
        else:
            assert city.loc[key, "carbon_change_t"] == pytest.approx(expected, abs=1e-6), key
    assert set(res.tables["city"][["y0", "y1", "kind"]].itertuples(index=False)) == {(2020, 2021, "vegetation")}
    # no data is its own class: the pixel unobserved in 2020 is not counted as "none" there
    m = res.matrices[(2020, 2021)]
    assert m.loc["none", "total"] == pytest.approx(4 * PX_HA) and m.loc[NO_DATA, "total"] == pytest.approx(PX_HA)


def test_matrix_rows_and_columns_sum_to_each_years_class_areas():
    m = run_small().matrices[(2020, 2021)]
    names = vegetation_names()
    for code, name in enumerate(names[:-1]):
        assert m.loc[name, "total"] == pytest.approx(np.sum(C0 == code) * PX_HA, abs=1e-12)  # row: the 2020 area
        assert m.loc["total", name] == pytest.approx(np.sum(C1 == code) * PX_HA, abs=1e-12)  # column: the 2021 area
    assert m.loc[NO_DATA, "total"] == pytest.approx(np.isnan(C0).sum() * PX_HA)
    assert m.loc["total", NO_DATA] == pytest.approx(np.isnan(C1).sum() * PX_HA)
    assert m.loc["total", "total"] == pytest.approx(16 * PX_HA)


def test_partial_pixels_of_zones_add_up_to_the_city():
    res = run_small()
    d = res.tables["district"]
    w = d[d["zone_id"] == "W"].set_index(["from_class", "to_class"])
    # (1, 2) grass -> shrub lies in column 2: half of it in W, 17 t C/ha × 0.005 ha
    assert w.loc[("grass", "shrub"), "area_ha"] == pytest.approx(0.5 * PX_HA)
    assert w.loc[("grass", "shrub"), "carbon_change_t"] == pytest.approx(0.085, abs=1e-6)
    assert w["area_ha"].sum() == pytest.approx((8 + 4 * 0.5) * PX_HA)  # W's area
    sums = d.groupby(["from_class", "to_class"])["area_ha"].sum()
    city = res.tables["city"].set_index(["from_class", "to_class"])["area_ha"]
    pd.testing.assert_series_equal(sums.sort_index(), city.sort_index(), check_names=False)


def test_carbon_unknown_on_part_of_a_transition_is_nan_not_a_partial_sum():
    k1 = K1.copy()
    k1[0, 0] = NAN  # (0, 0) none -> none, still classed, but its 2021 carbon is unknown
    city = run_small(k1).tables["city"].set_index(["from_class", "to_class"])
    assert city.loc[("none", "none"), "area_ha"] == pytest.approx(2 * PX_HA)
    assert city.loc[("none", "none"), "carbon_known_ha"] == pytest.approx(PX_HA)
    assert np.isnan(city.loc[("none", "none"), "carbon_change_t"])


def test_class_weights_refuse_codes_outside_the_classes():
    with pytest.raises(ValueError, match="class codes"):
        class_weights(np.array([0.0, 7.0]), np.array([0.0, 1.0]), 4)


def test_transition_pairs_add_the_period_from_three_years():
    assert transition_pairs([2024, 2023]) == [(2023, 2024)]
    assert transition_pairs([2021, 2023, 2022]) == [(2021, 2022), (2022, 2023), (2021, 2023)]
    assert transition_pairs([2020]) == []


def test_type_fractions_persistence_first_by_hand():
    # one pixel: 2020 G1 0.6, G2 0, untyped 0.4; 2021 G1 0.2, G2 0.5, untyped 0.3
    f0 = with_none(np.array([[0.6], [0.0]]))
    f1 = with_none(np.array([[0.2], [0.5]]))
    w = fraction_weights(f0, f1)[0]  # rows/cols: G1, G2, none, no data
    expected = np.array([[0.2, 0.4, 0.0, 0.0],   # of G1 0.2 stays, the 0.4 lost goes to G2 (the only gain)
                         [0.0, 0.0, 0.0, 0.0],
                         [0.0, 0.1, 0.3, 0.0],   # untyped 0.3 stays, 0.1 becomes G2
                         [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(w, expected, atol=1e-12)
    # a pixel with no data in 2020: all of it comes from "no data", into its 2021 shares
    w = fraction_weights(with_none(np.array([[NAN], [0.0]])), f1)[0]
    np.testing.assert_allclose(w[3, :3], [0.2, 0.5, 0.3])
    assert w[:3].sum() == 0


@given(arrays(np.float64, (2, 3, 20), elements=st.floats(0, 1)))
def test_type_weights_keep_both_years_shares(raw):
    # two years of 3 types over 20 pixels, scaled so the types of a pixel sum to at most 1
    f = raw / np.maximum(raw.sum(axis=1, keepdims=True), 1.0)
    a0, a1 = with_none(f[0]), with_none(f[1])
    w = fraction_weights(a0, a1)
    assert (w >= -1e-12).all()
    np.testing.assert_allclose(w.sum(axis=2)[:, :4], a0.T, atol=1e-9)  # rows: the first year's shares
    np.testing.assert_allclose(w.sum(axis=1)[:, :4], a1.T, atol=1e-9)  # columns: the second year's
    moved = w[:, :4, :4] * (1 - np.eye(4))
    np.testing.assert_allclose(moved.sum(axis=(1, 2)), 0.5 * np.abs(a0 - a1).sum(axis=0), atol=1e-9)  # minimum change


# ----------------------------------------------------------------------------- green-space types per year


def test_year_hook_paths_by_year():
    cfg = {"years": [2022, 2023], "greenspace": {"path": "/d/gs_{year}.gpkg", "type_column": "type"}}
    assert gconfig.greenspace_by_year(cfg)
    assert gconfig.greenspace_of_year(cfg, 2023)["path"] == "/d/gs_2023.gpkg"
    assert workflow.greenspace_inputs(cfg, 2022) == ["/d/gs_2022.gpkg"]
    assert workflow.greenspace_inputs(cfg) == ["/d/gs_2022.gpkg", "/d/gs_2023.gpkg"]  # provenance: every year's
    one = {"years": [2022, 2023], "greenspace": {"path": "/d/gs.gpkg"}}
    assert not gconfig.greenspace_by_year(one) and workflow.greenspace_inputs(one, 2022) == ["/d/gs.gpkg"]


def own_city_by_year(folder: Path, convert: bool = True) -> Path:
    """tests/own_city.py's city with green-space polygons per year: the second park is G1 in 2022 and EG in
    2023 (converted), the grass strip EG in both. Returns the config file."""
    import own_city

    own_city.write_city(folder / "mydata")
    for year in own_city.DATES:
        second = "EG" if (convert and year == 2023) else "G1"
        gpd.GeoDataFrame({"type": ["G1", second, "EG"]},
                         geometry=[box(*own_city.PARKS[0]), box(*own_city.PARKS[1]), box(*own_city.GRASS[0])],
                         crs=own_city.CRS).to_file(folder / "mydata" / f"greenspace_{year}.gpkg")
    cfg = {
        "years": sorted(own_city.DATES), "season": {"start": "05-01", "end": "09-30"}, "crs": own_city.CRS,
        "resolution": 30,
        "imagery": {"source": "local", "files": [{
            "red": f"{folder}/mydata/imagery/*_SR_B4.TIF", "nir": f"{folder}/mydata/imagery/*_SR_B5.TIF",
            "quality": f"{folder}/mydata/imagery/*_QA_PIXEL.TIF", "profile": "landsat-c2-l2"}]},
        "zones": [{"level": "district", "path": f"{folder}/mydata/zones.gpkg", "layer": "district", "id": "code",
                   "name": "label"},
                  {"level": "block", "path": f"{folder}/mydata/zones.gpkg", "layer": "block", "id": "code",
                   "parent": "district"}],
        "greenspace": {"path": f"{folder}/mydata/greenspace_{{year}}.gpkg", "type_column": "type",
                       "types": {"G1": "park", "EG": "regional"}, "park_types": ["G1"]},
        "model": {"n_bootstrap": 20},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=workdir)
    if proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def test_types_per_year_dry_run_lists_one_types_job_per_year(tmp_path):
    own_city_by_year(tmp_path)
    listed = snakemake(tmp_path, "-n").stdout
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", listed, flags=re.M))
    assert counts["types"] == "2" and counts["transitions"] == "1", listed
    for year in (2022, 2023):
        assert f"results/types/{year}/fractions.tif" in listed
        assert f"results/types/{year}/summary.json" in listed
    assert "results/types/fractions.tif" not in listed
    assert "results/change/trend/transitions/greenspace_matrix_2022_2023.csv" in listed


def test_preflight_names_the_year_whose_layer_is_missing_or_lacks_the_type_column(tmp_path):
    from greensink.errors import InputDataError
    from greensink.workflow import load_project

    cfg_file = own_city_by_year(tmp_path)
    (tmp_path / "mydata" / "greenspace_2023.gpkg").unlink()
    gpd.GeoDataFrame({"kind": ["G1"]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:32650").to_file(
        tmp_path / "mydata" / "greenspace_2022.gpkg")
    from greensink.preflight import check_inputs

    with pytest.raises(InputDataError) as err:
        check_inputs(load_project(cfg_file, base=tmp_path))
    text = str(err.value)
    assert "greenspace.path" in text and "greenspace_2023.gpkg does not exist" in text
    assert "greenspace_2022.gpkg has no column 'type'" in text  # the year that is there is still checked


@pytest.mark.slow
@pytest.mark.large  # a workflow run of its own (40 s): make test-large, run by .ci/run
def test_types_per_year_run_converts_the_park_by_its_exact_area(tmp_path):
    import own_city

    own_city_by_year(tmp_path)
    snakemake(tmp_path)
    res = tmp_path / "results"
    for year in (2022, 2023):
        with rasterio.open(res / f"types/{year}/fractions.tif") as src:
            assert sorted(src.descriptions) == ["EG", "G1"]
    tab = pd.read_csv(res / "change/trend/transitions/district.csv", dtype={"zone_id": str})
    types = tab[tab["kind"] == "greenspace_type"].groupby(["from_class", "to_class"])["area_ha"].sum()
    park = box(*own_city.PARKS[1]).intersection(box(*own_city.ZONE_BOX)).area / 10_000  # 32.71 ha, by shapely
    assert types[("G1", "EG")] == pytest.approx(park, rel=1e-6)
    changed = types[[a != b for a, b in types.index]]
    assert changed.drop(("G1", "EG")).sum() == pytest.approx(0.0, abs=1e-6)  # nothing else was converted
    m = pd.read_csv(res / "change/trend/transitions/greenspace_matrix_2022_2023.csv", index_col=0)
    assert m.loc["G1", "EG"] == pytest.approx(park, rel=1e-6)
    # the 2023 zone tables read the 2023 types: the converted park's land is EG there
    t22 = pd.read_csv(res / "2022/zones/district.csv")
    t23 = pd.read_csv(res / "2023/zones/district.csv")
    with rasterio.open(res / "change/trend/transitions/greenspace_types.tif") as src:
        assert list(src.descriptions) == ["2022", "2023"]
    assert t22["carbon_t_G1"].sum() > t23["carbon_t_G1"].sum()


def test_demo_city_matrix_totals_equal_the_city_area(baseline_run):
    res = baseline_run / "results"
    city = gpd.read_file(res / "zones/city.gpkg")
    area_ha = city.area.sum() / 10_000
    summary = yaml.safe_load((res / "change/trend/transitions/transitions.json").read_text(encoding="utf-8"))
    assert summary["pairs"]
    for y0, y1 in summary["pairs"]:
        m = pd.read_csv(res / f"change/trend/transitions/matrix_{y0}_{y1}.csv", index_col=0)
        assert m.loc["total", "total"] == pytest.approx(area_ha, rel=1e-6)
        inner = m.drop(index="total", columns="total")
        np.testing.assert_allclose(inner.sum(axis=1), m["total"].drop("total"), rtol=1e-9)
        # rows: each class's area in y0, as the pixels of the year's class raster inside the city say
        with rasterio.open(res / f"{y0}/vegetation_class.tif") as src:
            cls, px_ha = src.read(1), abs(src.transform.a * src.transform.e) / 10_000
        cov = np.load(res / "zones/city_coverage.npz", allow_pickle=False)
        matrix = sp.csr_matrix((cov["data"], cov["indices"], cov["indptr"]), shape=tuple(cov["shape"]))
        tree_ha = (matrix @ (cls.ravel() == 3)).sum() * px_ha
        assert m.loc["tree", "total"] == pytest.approx(tree_ha, rel=1e-9)
    for level in ("city", "parcel"):
        tab = pd.read_csv(res / f"change/trend/transitions/{level}.csv", dtype={"zone_id": str})
        assert {"zone_id", "level", "y0", "y1", "kind", "from_class", "to_class", "area_ha", "carbon_change_t"} <= set(tab)
    with rasterio.open(res / "change/trend/transitions/classes.tif") as src:
        assert list(src.descriptions) == [str(y) for y in sorted({y for p in summary["pairs"] for y in p})]
