"""The pieces of an incremental refresh, without Snakemake (tests/test_refresh.py runs them in the workflow):
the digest of a year's plot rows (rule model's rerun trigger), per-year plots files, and rule targets'
runner, which adds the target columns to the indicator tables."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from greensink import refresh, targets


def plots(rows) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame([{"plot_id": i, "year": y, "carbon_t_ha": c, "geometry": Point(x, 0)} for i, y, c, x in rows],
                            crs="EPSG:32650")


BASE = [("a", 2022, 10.0, 0), ("b", 2022, 20.0, 30), ("a", 2023, 11.0, 0), ("b", 2023, 21.0, 30)]


def digest(tmp_path, rows, year, name="plots.gpkg"):
    path = tmp_path / name
    plots(rows).to_file(path, layer="plots")
    return refresh.plot_rows_digest({"path": str(path), "year_column": "year"}, year)


def test_appending_another_year_or_reordering_keeps_a_years_digest(tmp_path):
    d22, d23 = digest(tmp_path, BASE, 2022), digest(tmp_path, BASE, 2023)
    assert d22 != d23
    appended = [*BASE[::-1], ("a", 2024, 12.0, 0), ("b", 2024, 22.0, 30)]  # new year appended, rows reordered
    assert digest(tmp_path, appended, 2022) == d22 and digest(tmp_path, appended, 2023) == d23


@pytest.mark.parametrize("change", ["value", "location", "removed", "added"])
def test_any_change_to_a_years_rows_changes_its_digest_only(tmp_path, change):
    d22, d23 = digest(tmp_path, BASE, 2022), digest(tmp_path, BASE, 2023)
    rows = list(BASE)
    if change == "value":
        rows[0] = ("a", 2022, 10.5, 0)
    elif change == "location":
        rows[0] = ("a", 2022, 10.0, 1)
    elif change == "removed":
        rows = rows[1:]
    else:
        rows.append(("c", 2022, 5.0, 60))
    assert digest(tmp_path, rows, 2022) != d22
    assert digest(tmp_path, rows, 2023) == d23


def test_plots_path_with_year_and_missing_file(tmp_path):
    cfg = {"path": str(tmp_path / "plots_{year}.gpkg"), "year_column": "year"}
    assert refresh.plots_by_year(cfg) and not refresh.plots_by_year({"path": "plots.gpkg"})
    assert refresh.plots_path(cfg, 2024) == str(tmp_path / "plots_2024.gpkg")
    with pytest.raises(ValueError, match="holds"):
        refresh.plots_path(cfg)
    assert refresh.plot_rows_digest(cfg, 2024) is None  # not there yet (preflight reports it)
    plots(BASE[:2]).to_file(tmp_path / "plots_2022.gpkg", layer="plots")
    assert refresh.plot_rows_digest(cfg, 2022) == digest(tmp_path, BASE, 2022)  # the same rows, the same digest
    assert refresh.plot_rows_digest(None, 2022) is None


def test_run_targets_adds_the_target_columns_to_the_indicator_tables(tmp_path):
    table = gpd.GeoDataFrame({"zone_id": ["W", "E", "N"], "name": ["West", "East", "North"], "green_coverage_pct": [42.0, 38.5, np.nan]},
                             geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1), box(2, 0, 3, 1)], crs="EPSG:32650")
    src, dst = tmp_path / "district.indicators.parquet", tmp_path / "district.gpkg"
    table.to_parquet(src)
    goals = tmp_path / "targets.yaml"
    goals.write_text('targets:\n  - {level: district, indicator: green_coverage_pct, op: ">=", value: 40}\n'
                     '  - {level: block, indicator: green_coverage_pct, op: ">=", value: 99}\n', encoding="utf-8")
    assert targets.run_targets([src], [dst], goals, ["district"]) == {"district": 1}
    out = pd.read_csv(dst.with_suffix(".csv"))
    assert dst.is_file() and dst.with_suffix(".parquet").is_file()
    assert out["target_green_coverage_pct"].tolist() == [40, 40, 40]
    np.testing.assert_allclose(out["target_green_coverage_pct_gap"], [2.0, -1.5, np.nan])  # value - target
    assert out["target_green_coverage_pct_met"].tolist()[:2] == [True, False]
    assert pd.isna(out["target_green_coverage_pct_met"].iloc[2])  # no data is neither met nor missed
    assert out["green_coverage_pct"].tolist()[:2] == [42.0, 38.5]


def test_ingest_record_names_band_files_relative_to_the_run_folder():
    """scenes.json holds no absolute path (issue 16): local files relative to the run folder, URLs and GDAL
    virtual paths as they are."""
    from greensink.ingest.run import relative_paths

    rec = relative_paths({"scenes": [
        {"red": "/srv/run/resources/b4.tif", "nir": "/srv/data/b8.tif", "quality": None,
         "resampling": [{"file": "/srv/run/scl.tif", "role": "quality"}]},
        {"red": "https://example.org/b4.tif", "nir": "/vsicurl/https://example.org/b8.tif", "quality": "rel/qa.tif"},
    ]}, "/srv/run")
    a, b = rec["scenes"]
    assert (a["red"], a["nir"], a["quality"], a["resampling"][0]["file"]) == (
        "resources/b4.tif", "../data/b8.tif", None, "scl.tif")
    assert (b["red"], b["nir"], b["quality"]) == (
        "https://example.org/b4.tif", "/vsicurl/https://example.org/b8.tif", "rel/qa.tif")
