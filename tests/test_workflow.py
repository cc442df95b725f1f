"""End to end: Snakemake runs the whole workflow on a small demo city in a temporary directory.

Checked against the demo's known truth (written by the generator, zone totals by exactextract):
city carbon within 10 % of the truth each year, nested sums within 0.1 %, every output of the
DESIGN.md contract present and well-formed, nothing rerun on a second call, identical zone
tables from two clean runs, a bad config stopped before any job.
"""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml

ROOT = Path(__file__).resolve().parents[1]
LEVELS = ["city", "district", "block", "parcel"]
# the demo config's years (any number; the demo ships three) and the pairs rule change makes of them
YEARS = sorted(yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))["years"])
PAIRS = list(zip(YEARS[:-1], YEARS[1:], strict=True)) + ([(YEARS[0], YEARS[-1])] if len(YEARS) >= 3 else [])
# the demo config's planning scenarios (the demo ships three: results/scenarios/{name}/)
SCENARIOS = [s["name"] for s in yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))["scenarios"]]
TYPES = ["G1", "G2", "G3", "XG", "EG"]
REQUIRED_ZONE_COLUMNS = [
    "zone_id", "parent_id", "level", "area_ha", "green_area_ha", "green_coverage_pct", "green_space_ratio_pct",
    "canopy_cover_pct", "ndvi_mean", "carbon_t", "carbon_t_lo", "carbon_t_hi", "carbon_t_ha", "co2e_t",
] + [f"carbon_t_{t}" for t in TYPES] + [
    "tree_shrub_share_pct", "park_area_per_capita_m2", "park_service_population_pct", "population",
]

pytestmark = pytest.mark.workflow


def small_config(workdir: Path, scenarios: bool = False) -> Path:
    """The demo config on a small city in ``workdir``; the demo's planning scenarios only with ``scenarios`` (the
    session's baseline run, tests/conftest.py, carries them: other runs made from this config skip their jobs)."""
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
    if not scenarios:
        cfg.pop("scenarios", None)
    cfg["demo"].update({"extent_m": 2000, "blocks": [4, 2], "parcels_per_block": [3, 3], "scenes_per_year": 4})
    cfg["model"]["n_bootstrap"] = 60
    cfg["coefficients"] = str(ROOT / "config" / "coefficients.csv")
    cfg["targets"] = str(ROOT / "config" / "targets.yaml")
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


@pytest.fixture(scope="module")
def run(baseline_run) -> Path:
    """The session's shared baseline run (tests/conftest.py): read only."""
    return baseline_run


def zone_table(run: Path, year: int, level: str) -> pd.DataFrame:
    return pd.read_csv(run / f"results/{year}/zones/{level}.csv", dtype={"zone_id": str, "parent_id": str})


def test_every_contract_output_exists(run):
    for year in YEARS:
        for name in ("ndvi", "fvc", "canopy", "carbon"):
            assert (run / f"results/{year}/{name}.tif").is_file()
        assert (run / f"results/{year}/model/models.json").is_file()
        for level in LEVELS:
            assert (run / f"results/{year}/zones/{level}.gpkg").is_file()
            assert (run / f"results/{year}/zones/{level}.csv").is_file()
            assert (run / f"results/{year}/zones/{level}.parquet").is_file()
    assert len(YEARS) >= 3  # the demo runs three years end to end (issue 12): consecutive pairs and the period
    for y0, y1 in PAIRS:
        assert (run / f"results/change/{y0}_{y1}/sink.tif").is_file()
        for level in LEVELS:
            assert (run / f"results/change/{y0}_{y1}/zones/{level}.gpkg").is_file()
    assert (run / "results/report.html").stat().st_size > 10_000
    assert (run / "results/provenance.json").is_file()
    # the demo's three planning scenarios (issue 13): each plan's carbon map and zone tables, the summary, and the
    # report's scenario comparison
    assert len(SCENARIOS) >= 3
    for name in SCENARIOS:
        assert (run / f"results/scenarios/{name}/carbon.tif").is_file()
        for level in LEVELS:
            assert (run / f"results/scenarios/{name}/zones/{level}.gpkg").is_file()
    assert (run / "results/scenarios/summary.csv").is_file()
    assert 'id="scenarios"' in (run / "results/report.html").read_text(encoding="utf-8")


def test_rasters_follow_the_contract(run):
    sinks = [run / f"results/change/{y0}_{y1}/sink.tif" for y0, y1 in PAIRS]
    for path in [*(run / f"results/{YEARS[-1]}").glob("*.tif"), *sinks]:
        with rasterio.open(path) as src:
            assert src.dtypes[0] == "float32", path
            assert np.isnan(src.nodata), path
            assert src.crs.to_epsg() == 32651, path
            assert src.res == (10.0, 10.0), path
            assert src.profile.get("tiled"), path
    with rasterio.open(run / "results/2023/carbon.tif") as src:
        est, lo, hi = src.read()
    ok = np.isfinite(est)
    assert ok.mean() > 0.99
    assert np.all(lo[ok] <= est[ok] + 1e-4) and np.all(est[ok] <= hi[ok] + 1e-4)


@pytest.mark.parametrize("year", YEARS)
def test_city_carbon_within_10_percent_of_truth(run, year):
    est = zone_table(run, year, "city")["carbon_t"].sum()
    truth = pd.read_csv(run / f"resources/demo/truth/zones_{year}_city.csv")["carbon_t"].sum()
    assert abs(est / truth - 1) < 0.10, (est, truth)


@pytest.mark.parametrize("year", YEARS)
def test_district_carbon_close_to_truth(run, year):
    est = zone_table(run, year, "district").set_index("zone_id")["carbon_t"]
    truth = pd.read_csv(run / f"resources/demo/truth/zones_{year}_district.csv", dtype={"zone_id": str}).set_index("zone_id")["carbon_t"]
    rel = (est / truth.loc[est.index] - 1).abs()
    assert rel.max() < 0.15, rel


@pytest.mark.parametrize("year", YEARS)
def test_sums_nest_from_parcel_to_city(run, year):
    for child, parent in zip(LEVELS[1:][::-1], LEVELS[:-1][::-1], strict=True):
        c = zone_table(run, year, child)
        p = zone_table(run, year, parent).set_index("zone_id")
        for col in ("carbon_t", "area_ha", "green_area_ha", "carbon_t_G1"):
            sums = c.groupby("parent_id")[col].sum()
            np.testing.assert_allclose(sums.to_numpy(), p.loc[sums.index, col].to_numpy(), rtol=1e-3, err_msg=f"{child}->{parent} {col}")
        assert set(c["parent_id"]) == set(p.index)


def test_zone_tables_have_required_columns(run):
    for level in LEVELS:
        t = zone_table(run, 2023, level)
        missing = [c for c in REQUIRED_ZONE_COLUMNS if c not in t.columns]
        assert not missing, (level, missing)
        assert (t["level"] == level).all()
        assert (t["carbon_t_lo"] <= t["carbon_t"] + 1e-9).all() and (t["carbon_t"] <= t["carbon_t_hi"] + 1e-9).all()
        np.testing.assert_allclose(t["co2e_t"], t["carbon_t"] * 44 / 12)
        np.testing.assert_allclose(t[[f"carbon_t_{x}" for x in TYPES]].sum(axis=1), t["carbon_t"], rtol=1e-6)


# the calibration benchmark's mean city sink interval width, % of the city's stock: 18.96 % over 50
# realisations of this city size (benchmarks/README.md, 2026-12-04, commit ceb8fcf; sink coverage 0.94)
BENCH_CITY_SINK_WIDTH_PCT = 18.96
WIDTH_FACTOR = 3.0


@pytest.mark.parametrize(("y0", "y1"), PAIRS)
def test_sink_matches_stock_difference_and_truth(run, y0, y1):
    ch = pd.read_csv(run / f"results/change/{y0}_{y1}/zones/city.csv")
    s0 = zone_table(run, y0, "city")["carbon_t"].sum()
    s1 = zone_table(run, y1, "city")["carbon_t"].sum()
    # a yearly sink: the stock difference over the pair's years (2 for the period pair of three years)
    np.testing.assert_allclose(ch["sink_t_yr"].sum() * (y1 - y0), s1 - s0, rtol=1e-4)
    t0 = pd.read_csv(run / f"resources/demo/truth/zones_{y0}_city.csv")["carbon_t"].sum()
    t1 = pd.read_csv(run / f"resources/demo/truth/zones_{y1}_city.csv")["carbon_t"].sum()
    lo, est, hi = ch[["sink_t_yr_lo", "sink_t_yr", "sink_t_yr_hi"]].iloc[0] * (y1 - y0)  # t C over the pair
    assert lo < est < hi
    # the sink is a small difference of two large stocks (here ~0.3 % of the stock, growth nearly
    # cancelled by one cleared parcel): the true sink must lie inside the 90 % interval
    assert lo <= t1 - t0 <= hi, (lo, t1 - t0, hi)
    # and its width is what the calibration benchmark found the 90 % interval needs on this city size:
    # BENCH_CITY_SINK_WIDTH_PCT of the stock on average (benchmarks/README.md, calibration.py). One
    # city's width varies with its plots and with whether a type's model changes between the years
    # (a type fitted in one year and taken from the coefficient table in the other puts the table's
    # error into the sink), so it must lie within a factor WIDTH_FACTOR of that mean either way. This
    # city measured 24.4 % (−299 to +349 t C/yr around +18, truth +18 t): the cleared XG polygon's
    # remeasured plots leave the residual uncorrelated between the years (ρ 0.03), so the residual
    # field is 97 % of the sink's variance. The old bound (< 5 % of the stock, measured 4.1 %) held
    # for the curve-only interval, which covered the city sink 0.78 of the time.
    width_pct = 100 * (hi - lo) / s1
    assert BENCH_CITY_SINK_WIDTH_PCT / WIDTH_FACTOR < width_pct < BENCH_CITY_SINK_WIDTH_PCT * WIDTH_FACTOR, width_pct


def test_second_run_does_nothing(run):
    proc = snakemake(run, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_lint_reports_no_errors(run):
    proc = snakemake(run, "--lint", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]


@pytest.mark.slow
@pytest.mark.large  # a second clean workflow run (44 s): make test-large, run by .ci/run
def test_two_clean_runs_give_identical_zone_tables(run, tmp_path):
    other = tmp_path / "again"
    other.mkdir()
    shutil.copy(run / "config.yaml", other / "config.yaml")
    last = YEARS[-1]
    # only what is compared (and what it needs): the scenarios, report, trend and zoning jobs are not rerun
    snakemake(other, *[f"results/{year}/zones/{level}.{ext}" for year in YEARS for level in LEVELS for ext in ("csv", "gpkg")],
              f"results/{last}/carbon.tif")
    for year in YEARS:
        for level in LEVELS:
            for ext in ("csv", "gpkg"):
                a = run / f"results/{year}/zones/{level}.{ext}"
                b = other / f"results/{year}/zones/{level}.{ext}"
                assert filecmp.cmp(a, b, shallow=False), f"{a.name} of {year} differs between two clean runs"
    with rasterio.open(run / f"results/{last}/carbon.tif") as a, rasterio.open(other / f"results/{last}/carbon.tif") as b:
        np.testing.assert_array_equal(a.read(), b.read())


def test_bad_config_stops_before_any_job(tmp_path):
    path = small_config(tmp_path)
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    cfg["resolution"] = -5
    cfg["imagery"]["sourse"] = "demo"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    proc = snakemake(tmp_path, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "resolution" in out and "-5" in out, out[-2000:]
    assert "sourse" in out, out[-2000:]
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()


def test_geoparquet_and_geopackage_agree_and_targets_are_on_the_rows(run):
    import geopandas as gpd

    gpkg = gpd.read_file(run / "results/2023/zones/district.gpkg")
    parquet = gpd.read_parquet(run / "results/2023/zones/district.parquet")
    assert gpkg.crs == parquet.crs
    np.testing.assert_allclose(gpkg["carbon_t"], parquet["carbon_t"])
    assert parquet.geometry.area.sum() == pytest.approx(gpkg.geometry.area.sum())
    # config/targets.yaml sets district targets: every row has value, target, met and gap
    for col in ("target_green_coverage_pct", "target_green_coverage_pct_met", "target_green_coverage_pct_gap"):
        assert col in parquet.columns
    np.testing.assert_allclose(parquet["target_green_coverage_pct_gap"], parquet["green_coverage_pct"] - 40)


QGIS_CHECK = r"""
import json, os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from qgis.core import QgsApplication, QgsRasterLayer, QgsVectorLayer, QgsPointXY
app = QgsApplication([], False)
app.initQgis()
root = sys.argv[1]
out = {}
r = QgsRasterLayer(root + "/results/2023/carbon.tif", "carbon")
ok_style = r.loadDefaultStyle()[1]
ext = r.extent().center()
value, found = r.dataProvider().sample(QgsPointXY(ext.x(), ext.y()), 1)
out["raster"] = [r.isValid(), r.crs().authid(), r.bandCount(), ok_style, r.renderer().type(), found]
v = QgsVectorLayer(root + "/results/2023/zones/district.gpkg", "district", "ogr")
ok_style = v.loadDefaultStyle()[1]
out["vector"] = [v.isValid(), v.featureCount(), v.crs().authid(), ok_style, v.renderer().type(), v.renderer().classAttribute()]
s = QgsVectorLayer(root + "/results/change/2023_2024/zones/block.gpkg", "block", "ogr")
out["change"] = [s.isValid(), s.loadDefaultStyle()[1], s.renderer().classAttribute()]
print(json.dumps(out), flush=True)
os._exit(0)  # QGIS 3.22 may crash while tearing down; the answer is already out
"""


def _system_python_with_qgis() -> str | None:
    for exe in ("/usr/bin/python3", shutil.which("python3")):
        if exe and Path(exe).exists():
            probe = subprocess.run([exe, "-c", "import qgis.core"], capture_output=True, timeout=60)
            if probe.returncode == 0:
                return exe
    return None


def test_outputs_open_styled_in_qgis(run):
    exe = _system_python_with_qgis()
    if exe is None:
        pytest.skip("QGIS Python bindings not installed (Debian: apt-get install python3-qgis); .ci/run installs them")
    proc = subprocess.run([exe, "-c", QGIS_CHECK, str(run)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "partially supported" not in proc.stderr, proc.stderr[-2000:]  # GeoPackage version QGIS 3.22 reads
    import json

    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["raster"] == [True, "EPSG:32651", 3, True, "singlebandpseudocolor", True]
    assert out["vector"] == [True, 4, "EPSG:32651", True, "graduatedSymbol", "carbon_t_ha"]
    assert out["change"] == [True, True, "sink_t_ha_yr"]


QGIS_PROJECT_CHECK = r"""
import json, os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from qgis.core import QgsApplication, QgsLayerTreeLayer, QgsProject
app = QgsApplication([], False)
app.initQgis()
messages, warnings = [], []
QgsApplication.messageLog().messageReceived.connect(lambda msg, tag, level: messages.append([tag, int(level), msg]))
project = QgsProject.instance()
project.oldProjectVersionWarning.connect(lambda v: warnings.append("saved by an older QGIS " + v))
project.readVersionMismatchOccurred.connect(lambda v: warnings.append("version mismatch " + v))
ok = project.read(sys.argv[1])
def tree(node):
    if isinstance(node, QgsLayerTreeLayer):
        return {"layer": node.layerId(), "resolved": node.layer() is not None, "shown": node.isVisible()}
    return {"group": node.name(), "children": [tree(c) for c in node.children()]}
layers = {}
for lid, layer in project.mapLayers().items():
    r = layer.renderer()
    d = {"valid": layer.isValid(), "name": layer.name(), "source": layer.source(), "crs": layer.crs().authid(),
         "renderer": r.type(), "error_free": layer.error().isEmpty()}
    if d["renderer"] == "graduatedSymbol":
        d["attr"] = r.classAttribute()
        d["classes"] = len(r.ranges())
        idx = layer.fields().indexOf(r.classAttribute())
        values = [f.attributes()[idx] for f in layer.getFeatures()]
        d["features"] = len(values)
        d["sum"] = sum(float(v) for v in values if v is not None and v == v)
    elif d["renderer"] == "paletted":
        d["band"] = r.band()
        d["classes"] = len(r.classes())
    else:
        d["max"] = r.classificationMax()
        d["stops"] = len(r.shader().rasterShaderFunction().colorRampItemList())
    layers[lid] = d
out = {"ok": ok, "error": project.error(), "crs": project.crs().authid(), "warnings": warnings, "messages": messages,
       "tree": tree(project.layerTreeRoot()), "layers": layers}
print(json.dumps(out, ensure_ascii=False), flush=True)
os._exit(0)  # QGIS 3.22 may crash while tearing down; the answer is already out
"""


def _qgis_layer_count() -> int:
    """Layers of the demo run's project: per year 4 rasters, a zone table per level and the zoning (2 rasters, 3
    tables per level); per change pair its sink, lost patches, attribution and a sink table per level; the trend
    raster, the transitions' classes and a trend table per level; per scenario its carbon map and a zone table
    per level."""
    return (len(YEARS) * (4 + len(LEVELS) + 2 + 3 * len(LEVELS)) + len(PAIRS) * (3 + len(LEVELS))
            + 2 + len(LEVELS) + len(SCENARIOS) * (1 + len(LEVELS)))


def _qgs_layers(qgs: Path) -> list:
    import xml.etree.ElementTree as ET

    return ET.fromstring(qgs.read_text(encoding="utf-8").split("\n", 1)[1]).findall("projectlayers/maplayer")


def test_qgis_project_refers_to_the_runs_files_relative_to_itself(run):
    """results/greensink.qgs, read with the standard library: every layer's file exists beside the project,
    the CRS is the run's, and the embedded styles are the .qml files rule qgis_styles wrote."""
    import xml.etree.ElementTree as ET

    qgs = run / "results/greensink.qgs"
    root = ET.fromstring(qgs.read_text(encoding="utf-8").split("\n", 1)[1])
    assert root.findtext("projectCrs/spatialrefsys/authid") == "EPSG:32651"
    maplayers = _qgs_layers(qgs)
    assert len(maplayers) == _qgis_layer_count()
    for ml in maplayers:
        source = ml.findtext("datasource").split("|")[0]
        assert source.startswith("./") and (qgs.parent / source).is_file(), source
        qml = ET.parse(qgs.parent / (source[2:].rsplit(".", 1)[0] + ".qml")).getroot()
        if ml.get("type") == "raster" and qml.find("pipe/rasterrenderer").get("type") == "paletted":
            assert ([e.get("value") for e in ml.findall("pipe/rasterrenderer/colorPalette/paletteEntry")]
                    == [e.get("value") for e in qml.findall("pipe/rasterrenderer/colorPalette/paletteEntry")]), source
        elif ml.get("type") == "raster":
            tag = "pipe/rasterrenderer/rastershader/colorrampshader"
            assert ml.find(tag).get("maximumValue") == qml.find(tag).get("maximumValue"), source
        else:
            assert ([r.get("upper") for r in ml.findall("renderer-v2/ranges/range")]
                    == [r.get("upper") for r in qml.findall("renderer-v2/ranges/range")]), source
    # each plan of the config by its label, its zone layers named for the difference from its baseline year
    names = {ml.findtext("id"): (ml.findtext("layername"), ml.findtext("datasource")) for ml in maplayers}
    cfg = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    for plan in cfg.get("scenarios") or []:
        base = plan.get("baseline_year", YEARS[-1])
        name, source = names[f"greensink_scenario_zones_{plan['name']}_{LEVELS[1]}"]
        assert name == f"城区 district {plan['label']} 与{base}年之差 difference from {base} (t C)"
        assert source == f"./scenarios/{plan['name']}/zones/{LEVELS[1]}.gpkg|layername={LEVELS[1]}"
        assert names[f"greensink_scenario_carbon_{plan['name']}"] == (
            f"碳密度 carbon density {plan['label']} (t C/ha)", f"./scenarios/{plan['name']}/carbon.tif")


def test_qgis_project_opens_in_qgis_after_the_folder_is_moved(run, tmp_path):
    """The project opens in real QGIS from a moved copy of results/: every layer valid and read from the copy,
    no message or warning while reading, the tree as built, each style applied, each zone layer the right file."""
    exe = _system_python_with_qgis()
    if exe is None:
        pytest.skip("QGIS Python bindings not installed (Debian: apt-get install python3-qgis); .ci/run installs them")
    moved = tmp_path / "archive" / "results"
    shutil.copytree(run / "results", moved)
    proc = subprocess.run([exe, "-c", QGIS_PROJECT_CHECK, str(moved / "greensink.qgs")], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    noise = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("QStandardPaths:")]
    assert not [line for line in noise if "warn" in line.lower() or "error" in line.lower()], proc.stderr[-3000:]
    import json

    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["ok"] and out["error"] == "" and out["crs"] == "EPSG:32651"
    assert out["warnings"] == [] and out["messages"] == []  # e.g. "1 unavailable layers found", "older QGIS"
    layers = out["layers"]
    n_layers = _qgis_layer_count()
    assert len(layers) == n_layers
    for lid, layer in layers.items():
        assert layer["valid"] and layer["error_free"] and layer["crs"] == "EPSG:32651", (lid, layer)
        assert layer["source"].startswith(str(moved) + "/"), (lid, layer["source"])  # the copy, not the run
    # tree: scenarios, trend, change pairs, then years newest first; zone levels coarsest on top; only the newest
    # carbon shown
    groups = out["tree"]["children"]
    assert [g["group"] for g in groups] == (
        (["情景 scenarios"] if SCENARIOS else []) + [f"趋势 trend {YEARS[0]}–{YEARS[-1]}"]
        + [f"碳汇变化 change {y0}–{y1}" for y0, y1 in sorted(PAIRS, reverse=True)]
        + [f"{y} 年 year {y}" for y in reversed(YEARS)])

    def flat(node):
        return [leaf for c in node.get("children", []) for leaf in flat(c)] if "group" in node else [node]

    leaves = flat(out["tree"])
    assert len(leaves) == n_layers and all(n["resolved"] for n in leaves)
    assert [n["layer"] for n in leaves if n["shown"]] == [f"greensink_carbon_{YEARS[-1]}"]
    assert [n["layer"] for n in groups[-1]["children"][0]["children"]] == [
        f"greensink_zones_{YEARS[0]}_{level}" for level in LEVELS]
    # styles applied: the carbon ramp's top is the .qml's (not QGIS's own min/max of the data), 5 stops
    qml_max = {}
    for ml in _qgs_layers(run / "results/greensink.qgs"):
        shader = ml.find("pipe/rasterrenderer/rastershader/colorrampshader")
        if shader is not None:
            qml_max[ml.findtext("id")] = float(shader.get("maximumValue"))
    for year in YEARS:
        carbon = layers[f"greensink_carbon_{year}"]
        assert carbon["renderer"] == "singlebandpseudocolor" and carbon["stops"] == 5
        assert carbon["max"] == pytest.approx(qml_max[f"greensink_carbon_{year}"], rel=1e-5)
        assert layers[f"greensink_ndvi_{year}"]["max"] == 1.0
    for y0, y1 in PAIRS:
        sink = f"greensink_sink_{y0}_{y1}"
        assert layers[sink]["max"] == pytest.approx(qml_max[sink], rel=1e-5)
    # each zone layer is its own year's table: QGIS's sum of the styled column equals the CSV twin's
    for year in YEARS:
        for level in LEVELS:
            layer = layers[f"greensink_zones_{year}_{level}"]
            table = zone_table(run, year, level)
            assert (layer["renderer"], layer["attr"], layer["classes"]) == ("graduatedSymbol", "carbon_t_ha", 5)
            assert layer["features"] == len(table)
            assert layer["sum"] == pytest.approx(table["carbon_t_ha"].sum(), rel=1e-9)
    for (y0, y1), level in [(pair, level) for pair in PAIRS for level in LEVELS]:
        layer = layers[f"greensink_sink_{y0}_{y1}_{level}"]
        table = pd.read_csv(run / f"results/change/{y0}_{y1}/zones/{level}.csv")
        assert (layer["attr"], layer["features"]) == ("sink_t_ha_yr", len(table))
        assert layer["sum"] == pytest.approx(table["sink_t_ha_yr"].sum(), rel=1e-9)
    # the trend, attribution, lost patches, transitions and zoning layers: styled, each its own file's rows
    assert layers["greensink_trend_raster"]["renderer"] == "singlebandpseudocolor"
    assert layers["greensink_trend_raster"]["max"] == pytest.approx(qml_max["greensink_trend_raster"], rel=1e-5)
    assert (layers["greensink_transition_classes"]["renderer"], layers["greensink_transition_classes"]["band"],
            layers["greensink_transition_classes"]["classes"]) == ("paletted", len(YEARS), 4)
    for level in LEVELS:
        trend = layers[f"greensink_trend_{level}"]
        table = pd.read_csv(run / f"results/change/trend/zones/{level}.csv")
        assert (trend["attr"], trend["features"]) == ("trend_t_ha_yr", len(table))
        assert trend["sum"] == pytest.approx(table["trend_t_ha_yr"].sum(), rel=1e-9)
    for y0, y1 in PAIRS:
        assert (layers[f"greensink_attribution_{y0}_{y1}"]["renderer"],
                layers[f"greensink_attribution_{y0}_{y1}"]["classes"]) == ("paletted", 5)
        lost = layers[f"greensink_lost_{y0}_{y1}"]
        table = pd.read_csv(run / f"results/change/{y0}_{y1}/lost_patches.csv")
        assert (lost["attr"], lost["features"]) == ("carbon_lost_t", len(table))
        assert lost["sum"] == pytest.approx(table["carbon_lost_t"].sum(), rel=1e-9)
    for year in YEARS:
        assert layers[f"greensink_importance_{year}"]["renderer"] == "paletted"
        assert layers[f"greensink_potential_{year}"]["renderer"] == "paletted"
        for product, column in (("importance", "share_pct_extremely_important"), ("potential", "potential_pct"),
                                ("canopy_gap", "canopy_cover_pct")):
            layer = layers[f"greensink_zoning_{year}_{product}_{LEVELS[1]}"]
            table = pd.read_csv(run / f"results/{year}/zoning/{product}_{LEVELS[1]}.csv")
            assert (layer["attr"], layer["features"]) == (column, len(table))
            assert layer["sum"] == pytest.approx(table[column].sum(), rel=1e-9)
    # the scenarios: one subgroup per plan in config order; each zone layer is its plan's own table, styled on the
    # difference from the baseline (diverging, symmetric about 0), its carbon map on the baseline year's ramp
    import xml.etree.ElementTree as ET

    if SCENARIOS:
        assert [len(g["children"]) for g in groups[0]["children"]] == [2] * len(SCENARIOS)
        assert [g["children"][1]["layer"] for g in groups[0]["children"]] == [
            f"greensink_scenario_carbon_{name}" for name in SCENARIOS]
    for name in SCENARIOS:
        carbon = layers[f"greensink_scenario_carbon_{name}"]
        assert carbon["renderer"] == "singlebandpseudocolor" and carbon["stops"] == 5
        assert carbon["max"] == pytest.approx(layers[f"greensink_carbon_{YEARS[-1]}"]["max"], rel=1e-6)
        for level in LEVELS:
            layer = layers[f"greensink_scenario_zones_{name}_{level}"]
            table = pd.read_csv(run / f"results/scenarios/{name}/zones/{level}.csv")
            assert (layer["renderer"], layer["attr"], layer["classes"]) == ("graduatedSymbol", "difference_t", 5)
            assert layer["features"] == len(table)
            assert layer["sum"] == pytest.approx(table["difference_t"].sum(), rel=1e-9, abs=1e-9)
            assert layer["sum"] != 0 or name not in ("new_park", "construction")  # the plans change their zones
            qml = ET.parse(run / f"results/scenarios/{name}/zones/{level}.qml").getroot()
            uppers = [float(r.get("upper")) for r in qml.findall("renderer-v2/ranges/range")][:-1]
            assert uppers[0] == pytest.approx(-uppers[-1]) and uppers[1] == pytest.approx(-uppers[2])  # about 0
            # the scale: the largest |difference| of the level over every plan (3/5 of it is the top inner edge)
            top = max(pd.read_csv(run / f"results/scenarios/{s}/zones/{level}.csv")["difference_t"].abs().max()
                      for s in SCENARIOS)
            assert uppers[-1] == pytest.approx(0.6 * (top if top > 0 else 1.0), rel=1e-5)


# Issue 4's criterion, on the fine-cell truth (issue 11): each type's fitted curve recovers the relation
# between the truth's carbon and NDVI *at the pixels the pipeline sees*. The demo's hidden curves
# (greensink.demo.CURVES) hold per 2 m cell; a 10 m pixel mixes paths, grass and crowns, so its carbon is
# not the hidden curve of its NDVI (for the convex G1/G2 curves it lies above; on this run the hidden curve
# is 4-12 % below the pixel truth at the low end of G1/G2 and 58 % below at XG's, NDVI 0.17). The
# reference is therefore measured from the truth files, independently of the pipeline: the mean truth
# density of the type's pure pixels (fraction >= 0.99) in NDVI bins of 0.04 (>= 20 pixels) over the plots'
# NDVI range (x_range), against the fitted prediction at the bin's mean truth NDVI. Measured on this run:
# within 10 % for every type and year but XG (G1 +9.4 % at NDVI 0.40, G2 +7.6 %, G3 -8.1 %, EG -3.0 %).
# The hidden form is not asserted any more: at pixel scale there is no "true form" (the pixel relation
# is a mixture of cell curves), so which form CV picks is not a recovery criterion.
CURVE_TOLERANCE = 0.10
CURVE_KNOWN_MISSES = {
    ("XG", 2023): "power is +17.6 % above the pixel truth at NDVI 0.17 (truth 2.2 t C/ha) and +10.6 % at "
                  "0.21, within 5 % from NDVI 0.25 up: at the low end XG pixels are mostly paving with a few "
                  "crowns, a mixture no single curve of pixel NDVI follows",
    ("XG", 2024): "plots lie in the parcel cleared in 2024 (truth carbon ~0), and 2024 refits 2023's power "
                  "form to them: on this run -42 % to +50 % off the pixel truth (+81 % at NDVI 0.15, where "
                  "the truth is 0.5 t C/ha)",
    # the third demo year (issue 12): 2025 refits 2023's forms to 2025's plots (model.selection first_year)
    ("XG", 2025): "the parcel cleared in 2024 stays cleared, and 2025 refits 2023's power form to plots there as "
                  "2024 does: +76 % off the pixel truth at NDVI 0.15 (truth 0.46 t C/ha), within 8 % at 0.35-0.45",
    ("G1", 2025): "2023's exponential form refitted to 2025's plots is +10.7 % above the pixel truth at the low end "
                  "(NDVI 0.43, truth 13.45 t C/ha), within 7.5 % from NDVI 0.45 up",
    ("G2", 2025): "2023's exponential form refitted to 2025's plots runs 5.6-11.2 % above the pixel truth, worst "
                  "at NDVI 0.50 (truth 11.67 t C/ha): the form chosen two growth years earlier bends too little",
}


def pixel_truth_bins(run: Path, code: str, year: int, lo: float, hi: float) -> list[tuple[float, float, int]]:
    """(mean truth NDVI, mean truth density t C/ha, pixels) per 0.04-NDVI bin of the type's pure pixels."""
    from greensink.demo import TYPES as DEMO_TYPES

    truth = run / "resources/demo/truth"
    with rasterio.open(truth / "fractions.tif") as src:
        frac = src.read(1 + DEMO_TYPES.index(code)).astype(np.float64)
    with rasterio.open(truth / f"ndvi_{year}.tif") as src:
        ndvi = src.read(1).astype(np.float64)
    with rasterio.open(truth / f"carbon_{year}.tif") as src:
        carbon = src.read(1).astype(np.float64)
    pure = frac >= 0.99
    out = []
    edges = np.arange(lo, hi + 1e-9, 0.04)
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        sel = pure & (ndvi >= a) & (ndvi < b)
        if sel.sum() >= 20:
            out.append((float(ndvi[sel].mean()), float(carbon[sel].mean()), int(sel.sum())))
    return out


@pytest.mark.parametrize("year", YEARS)
@pytest.mark.parametrize("code", TYPES)
def test_fitted_curves_recover_the_pixel_truth(run, request, code, year):
    import json

    from greensink.model import predict_type

    if (code, year) in CURVE_KNOWN_MISSES:
        request.applymarker(pytest.mark.xfail(reason=CURVE_KNOWN_MISSES[code, year]))  # strict (pyproject)
    models = json.loads((run / f"results/{year}/model/models.json").read_text(encoding="utf-8"))
    tm = models["types"][code]
    if tm["source"] != "plots":
        pytest.skip(f"{code} {year} uses the coefficient table, not plots")
    lo, hi = tm["x_range"]
    bins = pixel_truth_bins(run, code, year, lo, hi)
    assert len(bins) >= 3, (code, year, bins)
    x = np.array([b[0] for b in bins])
    truth = np.array([b[1] for b in bins])
    dev = predict_type(models, code, x) / truth - 1
    worst = int(np.argmax(np.abs(dev)))
    assert np.all(np.abs(dev) <= CURVE_TOLERANCE), (
        f"{code} {year}: {tm['form']} is {dev[worst]:+.1%} off the pixel truth at NDVI {x[worst]:.3f} "
        f"(truth {truth[worst]:.2f} t C/ha; range {lo:.3f}-{hi:.3f})")


def test_rivals_are_listed_in_the_first_year_only(run):
    """The chosen model's rivals (forms within one standard error) are listed in the first year, never
    the chosen form itself; later years keep the first year's choice and list no rivals of their own."""
    import json

    first, *later = YEARS
    models = json.loads((run / f"results/{first}/model/models.json").read_text(encoding="utf-8"))
    for code in TYPES:
        tm = models["types"][code]
        if tm["source"] != "plots":
            continue
        assert isinstance(tm["rivals"], list), code
        rival_forms = [r["form"] for r in tm["rivals"]]
        assert tm["form"] not in rival_forms, code  # the chosen form on the same predictors is not its own rival
    for year in later:
        types = json.loads((run / f"results/{year}/model/models.json").read_text(encoding="utf-8"))["types"]
        assert all("rivals" not in tm for tm in types.values() if tm["source"] == "plots")
