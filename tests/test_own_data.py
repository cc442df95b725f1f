"""Own data, first try: the README's commands on a city greensink did not generate, from a checkout
where the demo has already run.

The checkout is a copy of this working tree (its .venv linked in). The demo runs first, as `make demo`
runs it (smaller, through --config), so results/ at the root holds the demo's products. Then the user's
config (tests/own_city.py: Landsat-like files off the 30 m lattice in UTM 50N, zones in EPSG:4326, a
Web-Mercator land-cover raster with a class table, no population, no plots) goes through the README's
commands exactly as printed: `.venv/bin/greensink validate my.yaml`, `.venv/bin/greensink run my.yaml`,
and `.venv/bin/snakemake --cores 2 --configfile my.yaml` (nothing left to do: the same project folder).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio

import own_city
from checkout import copy_checkout, digest, sh
from conftest import shared_dir

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.workflow, pytest.mark.slow]

MY_CONFIG = """\
# my city: Landsat 8/9 Collection 2 L2, land-cover raster, no plots, no population
years: [2022, 2023]
season: {start: "05-01", end: "09-30"}
crs: EPSG:32650
resolution: 30
imagery:
  source: local
  files:
    - red: mydata/imagery/*_SR_B4.TIF
      nir: mydata/imagery/*_SR_B5.TIF
      quality: mydata/imagery/*_QA_PIXEL.TIF
      profile: landsat-c2-l2
zones:
  - {level: district, path: mydata/zones.gpkg, layer: district, id: code, name: label}
  - {level: block, path: mydata/zones.gpkg, layer: block, id: code, parent: district}
greenspace:
  raster: mydata/landcover.tif
  class_table: mydata/classes.csv
  types: {G1: park, EG: regional}
  park_types: [G1]
model:
  n_bootstrap: 40
"""


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """The checkout copy with the demo run and then the own-data project run, built once per session under a file lock
    (conftest.shared_dir): a module fixture alone is built once per pytest-xdist worker that gets one of these tests."""
    if not (ROOT / ".venv" / "bin" / "snakemake").exists():
        pytest.skip("needs the project's .venv (make install)")
    return shared_dir(tmp_path_factory, "own_data_checkout", _build_checkout)


def _build_checkout(root: Path) -> None:
    copy_checkout(root)
    # `make demo` (smaller): the demo's products are now in results/ at the root
    sh(root, ".venv/bin/snakemake", "--cores", "2", "--config",
       "demo={extent_m: 1000, blocks: [2, 2], parcels_per_block: [2, 2], scenes_per_year: 2}", "model={n_bootstrap: 20}")
    assert (root / "results" / "2023" / "zones" / "parcel.gpkg").exists()
    own_city.write_city(root / "mydata")
    (root / "my.yaml").write_text(MY_CONFIG, encoding="utf-8")
    # the user's run, as the README prints it: validate, run, and a second run that has nothing to do
    demo_before = {p: digest(p) for p in sorted((root / "results").rglob("*.gpkg"))}
    proc = sh(root, ".venv/bin/greensink", "validate", "my.yaml")
    assert "my.yaml: valid" in proc.stdout, proc.stdout + proc.stderr
    sh(root, ".venv/bin/greensink", "run", "my.yaml", "--cores", "2")
    again = sh(root, ".venv/bin/snakemake", "--cores", "2", "--configfile", "my.yaml")
    assert "Nothing to be done" in again.stdout + again.stderr
    assert {p: digest(p) for p in sorted((root / "results").rglob("*.gpkg"))} == demo_before  # demo untouched


@pytest.fixture(scope="module")
def project(checkout) -> Path:
    return checkout / "projects" / "my"


def test_products_are_in_the_projects_own_folder(project):
    for year in (2022, 2023):
        for name in ("ndvi", "fvc", "canopy", "carbon"):
            assert (project / f"results/{year}/{name}.tif").exists()
        for level in ("district", "block"):
            assert (project / f"results/{year}/zones/{level}.gpkg").exists()
    assert (project / "results/change/2022_2023/zones/block.gpkg").exists()
    assert (project / "results/report.html").exists()
    assert (project / "logs").is_dir() and (project / ".snakemake").is_dir()


def test_no_demo_input_was_read(project, checkout):
    record = json.loads((project / "results/provenance.json").read_text(encoding="utf-8"))
    read = {(project / item["path"]).resolve() for item in record["inputs"]}
    defaults = {(checkout / "config" / name).resolve() for name in ("coefficients.csv", "targets.yaml")}  # greensink's own
    assert read and all(p.is_relative_to(checkout / "mydata") or p in defaults for p in read), sorted(read)
    assert len([p for p in read if p.suffix == ".TIF"]) == 12  # 4 scenes × red, NIR, QA_PIXEL
    assert "population" not in record["config"] and "plots" not in record["config"]
    for log in (project / "logs").rglob("*.log"):
        assert "resources/demo" not in log.read_text(encoding="utf-8", errors="replace"), log
    assert not (project / "resources" / "demo").exists()


def test_the_grid_is_the_imagerys_lattice_and_ndvi_is_not_resampled(project):
    with rasterio.open(project / "results/2023/ndvi.tif") as src:
        t, ndvi = src.transform, src.read(1)
    assert t.a == 30 and t.e == -30
    assert (t.c - own_city.X0) % 30 == 0 and (t.f - own_city.Y1) % 30 == 0  # corners at 15 m mod 30
    col0, row0 = int(round((t.c - own_city.X0) / 30)), int(round((own_city.Y1 - t.f) / 30))
    truth = own_city.expected_ndvi()[row0:row0 + ndvi.shape[0], col0:col0 + ndvi.shape[1]]
    seen = np.isfinite(ndvi)
    assert seen.mean() > 0.95
    np.testing.assert_allclose(ndvi[seen], truth[seen], atol=1e-5)  # pixel for pixel, no sub-pixel shift


def test_carbon_comes_from_the_coefficient_table_and_says_so(project):
    coef = pd.read_csv(ROOT / "config" / "coefficients.csv").set_index("type")
    density = {t: coef.loc[t, "c_above"] + coef.loc[t, "c_below"] for t in ("G1", "EG")}
    for year in (2022, 2023):
        district = pd.read_csv(project / f"results/{year}/zones/district.csv", dtype={"zone_id": str})
        block = pd.read_csv(project / f"results/{year}/zones/block.csv", dtype={"zone_id": str})
        tiers = set(district["carbon_tier"].astype(str))
        assert tiers == {"T2"}, tiers  # no plots: the coefficient table (tier 2) for every typed zone
        # typed land from the land-cover raster × the table's density, against the rectangles' exact area
        for t, rects in (("G1", own_city.PARKS), ("EG", own_city.GRASS)):
            expected = own_city.typed_area_ha(rects) * density[t]
            assert district[f"carbon_t_{t}"].sum() == pytest.approx(expected, rel=0.03), t
        assert block["carbon_t"].sum() == pytest.approx(district["carbon_t"].sum(), rel=1e-6)  # sums nest
        assert np.isnan(district["population"]).all() if "population" in district else True
    report = (project / "results/report.html").read_text(encoding="utf-8")
    assert "East &lt;东区&gt;" in report and "<东区>" not in report  # zone names from the data are escaped


def test_open_results_gives_the_run_to_a_notebook(project):
    import greensink

    with greensink.open_results(project) as run:
        assert run.years == [2022, 2023] and run.levels == ["district", "block"]
        assert run.rasters.rio.crs.to_epsg() == 32650
        with rasterio.open(project / "results/2023/carbon.tif") as src:
            upper = src.read(3)
            assert run.rasters.x.values[0] == pytest.approx(src.transform.c + 15)  # pixel centres
        np.testing.assert_array_equal(run.rasters["carbon_t_ha_hi"].sel(year=2023).values, upper)
        district = run.zones("district")
        assert sorted(district["year"].unique()) == [2022, 2023] and len(district) == 4
        csv = pd.read_csv(project / "results/2022/zones/district.csv", dtype={"zone_id": str})
        got = district[district["year"] == 2022].set_index("zone_id")["carbon_t"]
        np.testing.assert_allclose(got.loc[csv["zone_id"]].to_numpy(), csv["carbon_t"].to_numpy())
        sink = run.sink("block")
        assert set(zip(sink["y0"], sink["y1"], strict=True)) == {(2022, 2023)} and len(sink) == 6
        with pytest.raises(Exception, match="no zone level 'parcel'"):
            run.zones("parcel")


def test_open_results_names_a_folder_that_is_not_a_run(tmp_path):
    import greensink

    with pytest.raises(Exception, match="not a greensink run"):
        greensink.open_results(tmp_path)
