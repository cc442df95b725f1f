"""One config used as given, one project folder per config, and the preflight of every input.

Unit level: the config the workflow sees (greensink.workflow.load_project / project_setup), the project
folder and its guard, and greensink.preflight on small files written here. The workflow level (a user's
config run from a checkout where the demo has run) is in test_own_data.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import yaml
from affine import Affine
from shapely.geometry import Point, box

from greensink import config as gs_config
from greensink import workflow as gs_workflow
from greensink.cli import main as cli_main
from greensink.errors import ConfigError, InputDataError
from greensink.preflight import check_inputs

ROOT = Path(__file__).resolve().parents[1]
CRS = "EPSG:32650"
X0, Y1 = 400_015.0, 3_500_015.0  # pixel corners at 15 m mod 30, like USGS Landsat files


def write_yaml(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def scene(path: Path, values: np.ndarray, crs: str | None = CRS) -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=values.shape[1], height=values.shape[0], count=1,
                       dtype=values.dtype.name, crs=crs, transform=Affine(30, 0, X0, 0, -30, Y1), nodata=0) as dst:
        dst.write(values, 1)
    return path


@pytest.fixture
def own(tmp_path) -> dict:
    """A small project: 4×4 Landsat-like scenes (2 dates), zones in EPSG:4326, typed polygons, plots."""
    d = tmp_path / "data"
    d.mkdir()
    for date in ("20230615", "20230815"):
        scene(d / f"LC08_L2SP_118038_{date}_20230701_02_T1_SR_B4.TIF", np.full((4, 4), 9000, np.uint16))
        scene(d / f"LC08_L2SP_118038_{date}_20230701_02_T1_SR_B5.TIF", np.full((4, 4), 20000, np.uint16))
    zones = gpd.GeoDataFrame({"code": ["A", "B"]}, geometry=[box(X0, Y1 - 120, X0 + 60, Y1), box(X0 + 60, Y1 - 120, X0 + 120, Y1)],
                             crs=CRS).to_crs("EPSG:4326")
    zones.to_file(d / "zones.gpkg", layer="block")
    gpd.GeoDataFrame({"type": ["G1"]}, geometry=[box(X0, Y1 - 60, X0 + 60, Y1)], crs=CRS).to_file(d / "gs.gpkg")
    gpd.GeoDataFrame({"plot_id": ["p1"], "carbon_t_ha": [10.0], "type": ["G1"], "year": [2023]},
                     geometry=[Point(X0 + 30, Y1 - 30)], crs=CRS).to_file(d / "plots.gpkg")
    cfg = {
        "years": [2023], "crs": CRS, "resolution": 30,
        "imagery": {"source": "local", "files": [{"red": "data/*_SR_B4.TIF", "nir": "data/*_SR_B5.TIF",
                                                  "profile": "landsat-c2-l2"}]},
        "zones": [{"level": "block", "path": "data/zones.gpkg", "id": "code"}],
        "greenspace": {"path": "data/gs.gpkg", "type_column": "type"},
        "plots": {"path": "data/plots.gpkg"},
    }
    return {"root": tmp_path, "cfg": cfg, "path": write_yaml(tmp_path / "my.yaml", cfg)}


# --- one config, as given ---------------------------------------------------------------------------------


def test_user_config_is_not_merged_with_the_demo(own):
    cfg = gs_workflow.load_project(own["path"], base=own["root"])
    demo = gs_config.load(gs_workflow.DEMO_CONFIG)
    assert "population" in demo  # the demo has population ...
    assert "population" not in cfg  # ... and a config that leaves it out has none
    assert cfg["years"] == [2023] and cfg["imagery"]["source"] == "local"
    assert cfg["model"]["n_bootstrap"] == 200  # the schema default, not something inherited


def test_null_switches_off_an_optional_section(own):
    doc = dict(own["cfg"], population=None, residential=None)
    cfg = gs_workflow.load_project(write_yaml(own["root"] / "nulls.yaml", doc), base=own["root"])
    assert "population" not in cfg and "residential" not in cfg
    cfg = gs_workflow.load_project(own["path"], overrides={"plots": None}, base=own["root"])
    assert "plots" not in cfg


def test_input_paths_resolve_against_the_run_folder_and_defaults_against_the_checkout(own):
    cfg = gs_workflow.load_project(own["path"], base=own["root"])
    assert cfg["zones"][0]["path"] == str(own["root"] / "data" / "zones.gpkg")
    assert cfg["imagery"]["files"][0]["red"] == str(own["root"] / "data" / "*_SR_B4.TIF")
    # left at its default: greensink's own table, the package's copy (config/coefficients.csv links to it)
    assert cfg["coefficients"] == str(ROOT / "src" / "greensink" / "data" / "coefficients.csv")
    assert Path(cfg["coefficients"]).samefile(ROOT / "config" / "coefficients.csv")
    given = dict(own["cfg"], coefficients="tables/mine.csv")
    cfg = gs_workflow.load_project(write_yaml(own["root"] / "c.yaml", given), base=own["root"])
    assert cfg["coefficients"] == str(own["root"] / "tables" / "mine.csv")  # given: relative to the run folder


def test_demo_outputs_stay_relative_to_the_project_folder(tmp_path):
    cfg = gs_workflow.load_project(None, base=tmp_path)
    assert cfg["zones"][0]["path"] == "resources/demo/zones/city.gpkg"  # written by the demo rule, in workdir
    assert cfg["workdir"] == str(tmp_path.resolve())  # the demo config runs in the folder it starts in


def test_project_folder_defaults(own, tmp_path):
    assert gs_workflow.load_project(own["path"], base=own["root"])["workdir"] == str(own["root"] / "projects" / "my")
    doc = dict(own["cfg"], workdir="elsewhere/p1")
    cfg = gs_workflow.load_project(write_yaml(own["root"] / "w.yaml", doc), base=own["root"])
    assert cfg["workdir"] == str(own["root"] / "elsewhere" / "p1")


def test_a_project_folder_refuses_a_second_config(tmp_path):
    a, b = write_yaml(tmp_path / "a.yaml", {}), write_yaml(tmp_path / "b.yaml", {})
    folder = tmp_path / "proj"
    gs_workflow.check_project(folder, a)
    gs_workflow.check_project(folder, a)  # the same config again: fine
    assert json.loads((folder / gs_workflow.PROJECT_MARKER).read_text())["config"] == str(a.resolve())
    with pytest.raises(ConfigError) as err:
        gs_workflow.check_project(folder, b)
    text = str(err.value)
    assert str(a.resolve()) in text and str(b.resolve()) in text and "workdir" in text


# --- preflight --------------------------------------------------------------------------------------------


def test_preflight_passes_a_good_project(own):
    cfg = gs_workflow.load_project(own["path"], base=own["root"])
    assert check_inputs(cfg) == []


def test_preflight_lists_every_problem_at_once(own):
    root = own["root"]
    d = root / "data"
    gpd.GeoDataFrame({"plot_id": ["p1", "p2", "p3"], "carbon_t_ha": ["n/a", 5.0, 7.0], "type": ["G1", "ZZ", "G1"],
                      "year": [2023, 2023, 2023]},
                     geometry=[Point(X0 + 30, Y1 - 30), Point(X0 + 40, Y1 - 40), Point(X0 + 90_000, Y1)],
                     crs=CRS).to_file(d / "plots_bad.gpkg")
    gpd.GeoDataFrame({"people": [10]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:4326").to_file(d / "pop.gpkg")
    doc = dict(own["cfg"])
    doc["zones"] = [{"level": "block", "path": "data/zones.gpkg", "id": "zone_code", "name": "label"},
                    {"level": "parcel", "path": "data/parcels.gpkg", "id": "pid"}]
    doc["imagery"] = {"source": "local", "files": [{"red": "data/*_B4.TIF", "nir": "data/nothing/*_B5.TIF",
                                                    "profile": "landsat-c2-l2"}]}
    doc["plots"] = {"path": "data/plots_bad.gpkg"}
    doc["population"] = {"path": "data/pop.gpkg", "column": "population"}
    cfg = gs_workflow.load_project(write_yaml(root / "bad.yaml", doc), base=root)
    with pytest.raises(InputDataError) as err:
        check_inputs(cfg)
    text = str(err.value)
    expected = [
        "zones[1].path: file " + str(d / "parcels.gpkg") + " does not exist",
        "zones[0].id names column 'zone_code'", "zones[0].name names column 'label'",
        "imagery.files[0].nir: '" + str(d / "nothing" / "*_B5.TIF") + "' matches no file",
        "row 1: carbon_t_ha must be a number >= 0 (t C/ha). Got 'n/a'",
        "type code(s) ['ZZ']",
        "1 plot(s) lie outside the zones", "['p3']",
        "population.column 'population' is not a column",
        "do not overlap the zones",
    ]
    for piece in expected:
        assert piece in text, f"missing {piece!r} in:\n{text}"
    assert text.startswith("9 problem(s) with the inputs")  # zones[0].id and .name are two; p3 is named in its line


def test_preflight_names_years_without_scenes_and_scenes_elsewhere(own):
    root = own["root"]
    doc = dict(own["cfg"], years=[2022, 2023])
    far = gpd.GeoDataFrame({"code": ["F"]}, geometry=[box(X0 + 50_000, Y1, X0 + 51_000, Y1 + 1000)], crs=CRS)
    far.to_file(root / "data" / "far.gpkg", layer="block")
    doc["zones"] = [{"level": "block", "path": "data/far.gpkg", "id": "code"}]
    doc["plots"] = None
    cfg = gs_workflow.load_project(write_yaml(root / "years.yaml", doc), base=root)
    with pytest.raises(InputDataError) as err:
        check_inputs(cfg)
    text = str(err.value)
    assert "years: 2022 has no scene in its season (04-01 to 10-31); the scenes found are dated 2023-06-15, 2023-08-15" in text
    assert "none of the 2 scene(s) of 2023 overlaps the zones" in text


def test_preflight_warns_about_plots_outside_the_years(own):
    d = own["root"] / "data"
    gpd.GeoDataFrame({"plot_id": ["p1", "p2", "p3"], "carbon_t_ha": [1.0, 2.0, 3.0], "type": ["G1"] * 3,
                      "year": [2023, 2019, 2019]}, geometry=[Point(X0 + 30, Y1 - 30)] * 3, crs=CRS).to_file(d / "plots.gpkg")
    warnings = check_inputs(gs_workflow.load_project(own["path"], base=own["root"]))
    assert len(warnings) == 1 and "2 plot(s) dated [2019]" in warnings[0] and "outside years [2023]" in warnings[0]


def test_preflight_class_table_must_cover_the_raster(own):
    root = own["root"]
    classes = np.array([[10, 10, 30, 0], [10, 50, 30, 0], [77, 50, 30, 0], [10, 10, 30, 0]], np.uint8)
    scene(root / "data" / "lc.tif", classes)
    (root / "data" / "classes.csv").write_text("class,type\n10,G1\n30,EG\n50,ignore\n", encoding="utf-8")
    doc = dict(own["cfg"], greenspace={"raster": "data/lc.tif", "class_table": "data/classes.csv"}, plots=None)
    cfg = gs_workflow.load_project(write_yaml(root / "lc.yaml", doc), base=root)
    with pytest.raises(InputDataError, match=r"does not list class\(es\) \[77\] found in"):
        check_inputs(cfg)


def test_preflight_refuses_a_scene_without_crs(own):
    d = own["root"] / "data"
    scene(d / "LC08_L2SP_118038_20230715_20230801_02_T1_SR_B4.TIF", np.full((4, 4), 9000, np.uint16), crs=None)
    scene(d / "LC08_L2SP_118038_20230715_20230801_02_T1_SR_B5.TIF", np.full((4, 4), 9000, np.uint16), crs=None)
    with pytest.raises(InputDataError, match=r"20230715.*has no CRS"):
        check_inputs(gs_workflow.load_project(own["path"], base=own["root"]))


# --- command line ----------------------------------------------------------------------------------------


def test_validate_command_runs_the_preflight(own, capsys, monkeypatch):
    monkeypatch.chdir(own["root"])
    assert cli_main(["validate", "my.yaml"]) == 0
    assert f"my.yaml: valid; results go to {own['root'] / 'projects' / 'my'}/results" in capsys.readouterr().out
    write_yaml(own["root"] / "broken.yaml", dict(own["cfg"], plots={"path": "data/none.gpkg"}))
    assert cli_main(["validate", "broken.yaml"]) == 2
    err = capsys.readouterr().err
    assert "plots.path: file " + str(own["root"] / "data" / "none.gpkg") + " does not exist" in err
    assert "Traceback" not in err


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli_main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == "greensink 0.1.0"
    with pytest.raises(SystemExit):
        cli_main(["--help"])
    out = capsys.readouterr().out
    assert "greensink run CONFIG" in out and "``" not in out  # plain text, no reST markup


# --- the workflow sees the same ---------------------------------------------------------------------------


def snakemake(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--cores", "1", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.workflow
def test_workflow_stops_on_input_problems_before_any_job(own):
    root = own["root"]
    doc = dict(own["cfg"], plots={"path": "data/nothing.gpkg"})
    doc["zones"] = [{"level": "block", "path": "data/zones.gpkg", "id": "zone_code"}]
    write_yaml(root / "bad.yaml", doc)
    proc = snakemake(root, "--configfile", "bad.yaml", "-n")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "2 problem(s) with the inputs" in out and "zones[0].id names column 'zone_code'" in out
    assert "plots.path: file " + str(root / "data" / "nothing.gpkg") + " does not exist" in out
    assert "Traceback" not in out
    assert not (root / "projects").exists()  # nothing written


@pytest.mark.workflow
def test_workflow_runs_each_config_in_its_own_folder(own):
    root = own["root"]
    proc = snakemake(root, "--configfile", "my.yaml", "-n")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert (root / "projects" / "my" / gs_workflow.PROJECT_MARKER).exists()
    assert not (root / "results").exists()
    # a second config pointed at the same folder is refused, naming both configs
    write_yaml(root / "other.yaml", dict(own["cfg"], workdir="projects/my"))
    proc = snakemake(root, "--configfile", "other.yaml", "-n")
    assert proc.returncode != 0
    assert f"holds the results of the config {own['path'].resolve()}" in proc.stdout + proc.stderr


def test_preflight_refuses_a_device_instead_of_a_file(own):
    doc = dict(own["cfg"], plots={"path": "/dev/zero"})
    cfg = gs_workflow.load_project(write_yaml(own["root"] / "dev.yaml", doc), base=own["root"])
    with pytest.raises(InputDataError, match=r"plots.path: /dev/zero is a character device, not a file"):
        check_inputs(cfg)


def test_readers_name_a_bad_csv_and_refuse_a_pipe(tmp_path):
    import os

    from greensink import io

    bad = tmp_path / "coefficients.csv"
    bad.write_text("type,name,c_above\nG1,park,22\nG2,protective, green,18\n", encoding="utf-8")  # unquoted comma
    with pytest.raises(InputDataError, match=r"coefficients.csv: cannot be read as a CSV table .*quote values"):
        io.read_csv(bad)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for read in (io.read_csv, io.sha256, io.read_vector, io.open_raster):
        with pytest.raises(InputDataError, match=r"is a named pipe \(FIFO\), not a file"):
            read(fifo)


def test_preflight_refuses_levels_listed_finest_first(own):
    root = own["root"]
    one = gpd.GeoDataFrame({"code": ["ALL"]}, geometry=[box(X0, Y1 - 120, X0 + 120, Y1)], crs=CRS)
    one.to_file(root / "data" / "city.gpkg")
    doc = dict(own["cfg"], zones=[{"level": "block", "path": "data/zones.gpkg", "id": "code"},
                                  {"level": "city", "path": "data/city.gpkg", "id": "code"}])
    cfg = gs_workflow.load_project(write_yaml(root / "order.yaml", doc), base=root)
    # both blocks lie within the one city zone (shapely, by construction) and the city in neither block
    with pytest.raises(InputDataError, match=r"listed in the wrong order: 'city' \(zones\[1\], 1 zones\) is listed after "
                       r"'block' \(zones\[0\], 2 zones\), but 2 of 2 'block' zones lie within a 'city' zone.*"
                       r"List the levels coarsest first: city, block\."):
        check_inputs(cfg)


def test_preflight_explains_a_season_that_wraps_the_year(own):
    # the zones are at about 31.6° N (UTM 50N, northing 3.5e6 m): a wrapped season there is winter
    doc = dict(own["cfg"], season={"start": "10-31", "end": "04-01"}, years=[2024])
    d = own["root"] / "data"
    for date in ("20231115", "20240215"):
        scene(d / f"LC08_L2SP_118038_{date}_20240301_02_T1_SR_B4.TIF", np.full((4, 4), 9000, np.uint16))
        scene(d / f"LC08_L2SP_118038_{date}_20240301_02_T1_SR_B5.TIF", np.full((4, 4), 20000, np.uint16))
    doc["plots"] = None
    warnings = check_inputs(gs_workflow.load_project(write_yaml(own["root"] / "season.yaml", doc), base=own["root"]))
    (text,) = [w for w in warnings if w.startswith("season:")]
    assert "2024 covers 2023-10-31 to 2024-04-01" in text
    assert "lie at 32–32° N, where this is winter" in text and "start: '04-01', end: '10-31'" in text
