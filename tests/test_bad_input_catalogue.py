"""The bad-input catalogue (issue 15): inputs a user really meets, each with the message greensink gives.

Every case writes a small own city (tests/own_city.py: Landsat-like band files, zones in EPSG:4326, a
land-cover raster with a class table, plus field plots) into its own folder, breaks one thing, and runs
what a user runs: ``greensink validate`` (``load_project`` + the preflight ``check_inputs``) or the library
reader of that input. It asserts that the message names the file, the field, the value and the fix
(the case's ``shows`` fragments, each in the message) and that no output was written or left
half-written (nothing in the case's ``out`` folder, no ``.*.tmp*`` file anywhere, no ``results``).

The case list is also the user's table of messages: ``docs/errors.md`` is generated from it
(``.venv/bin/python tests/test_bad_input_catalogue.py > docs/errors.md``) and a test fails when they drift.
The slow lane (tests/test_faults.py) runs real Snakemake runs: a rule failing on a truncated band file,
an interrupted run resumed, a full disk.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely.affinity
import yaml
from affine import Affine
from shapely.geometry import Point, box

sys.path.insert(0, str(Path(__file__).resolve().parent))
import own_city  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "errors.md"

BASE = {
    "years": [2022, 2023],
    "season": {"start": "05-01", "end": "09-30"},
    "crs": "EPSG:32650",
    "resolution": 30,
    "imagery": {"source": "local", "files": [{"red": "mydata/imagery/*_SR_B4.TIF", "nir": "mydata/imagery/*_SR_B5.TIF",
                                              "quality": "mydata/imagery/*_QA_PIXEL.TIF", "profile": "landsat-c2-l2"}]},
    "zones": [{"level": "district", "path": "mydata/zones.gpkg", "layer": "district", "id": "code", "name": "label"},
              {"level": "block", "path": "mydata/zones.gpkg", "layer": "block", "id": "code", "parent": "district"}],
    "greenspace": {"raster": "mydata/landcover.tif", "class_table": "mydata/classes.csv", "types": {"G1": "park", "EG": "regional"},
                   "park_types": ["G1"]},
    "plots": {"path": "mydata/plots.gpkg", "id_column": "plot_id", "carbon_column": "carbon_t_ha", "type_column": "type",
              "year_column": "year"},
    "coefficients": "mydata/coefficients.csv",
    "model": {"n_bootstrap": 20},
}
COEFFICIENTS = "type,c_above,c_below,uncertainty_pct\nG1,20,5,30\nEG,5,1,40\n"
GRID = own_city.CRS, Affine(own_city.RES, 0, own_city.X0, 0, -own_city.RES, own_city.Y1), own_city.SIZE
SCENE_2023 = "mydata/imagery/LC08_L2SP_118038_20230614_20240101_02_T1"


def plot_points(n: int = 12) -> gpd.GeoDataFrame:
    """Plots inside the zones, half G1 half EG, both years."""
    xmin, ymin, xmax, ymax = own_city.ZONE_BOX
    xs = np.linspace(xmin + 100, xmax - 100, n)
    ys = np.linspace(ymin + 100, ymax - 100, n)
    return gpd.GeoDataFrame({"plot_id": [f"P{i:02d}" for i in range(n)], "carbon_t_ha": np.linspace(2, 40, n).round(2),
                             "type": ["G1", "EG"] * (n // 2), "year": [2022, 2023] * (n // 2)},
                            geometry=[Point(x, y) for x, y in zip(xs, ys, strict=True)], crs=own_city.CRS)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("own_city")
    own_city.write_city(root / "mydata")
    plot_points().to_file(root / "mydata" / "plots.gpkg", layer="plots")
    (root / "mydata" / "coefficients.csv").write_text(COEFFICIENTS, encoding="utf-8")
    return root


class World:
    """One case's copy of the own city: ``cfg`` (edit it, then :meth:`validate`), ``out`` for library outputs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cfg = copy.deepcopy(BASE)
        self.out = root / "out"
        self.out.mkdir()
        self.config_file = root / "my.yaml"

    def path(self, rel: str) -> Path:
        return self.root / rel

    def write_config(self, text: str | None = None) -> Path:
        self.config_file.write_text(text if text is not None else yaml.safe_dump(self.cfg, allow_unicode=True), encoding="utf-8")
        return self.config_file

    def project(self) -> dict:
        from greensink.workflow import load_project

        return load_project(self.write_config() if not self.config_file.exists() else self.config_file, base=self.root)

    def validate(self) -> list[str]:
        """``greensink validate``: the config as the workflow sees it, then every input; returns the warnings."""
        from greensink.preflight import check_inputs

        self.write_config()
        return check_inputs(self.project())

    def scenes(self):
        from greensink.ingest import load_scenes

        cfg = self.project()
        return load_scenes(cfg["imagery"], cfg["imagery"].get("scenes"))

    def grid(self):
        from greensink.grid import Grid

        crs, transform, size = GRID
        return Grid(crs=crs, transform=transform, width=size, height=size)

    def plots(self) -> gpd.GeoDataFrame:
        return gpd.read_file(self.path("mydata/plots.gpkg"))

    def write_plots(self, gdf, name: str = "mydata/plots.gpkg") -> None:
        self.path(name).unlink(missing_ok=True)
        gdf.to_file(self.path(name), layer="plots")


@dataclass(frozen=True)
class Case:
    id: str
    area: str
    kind: str  # "error" (the run stops before any output) or "warning" (it goes on, and says why to look)
    shows: tuple[str, ...]  # fragments of the real message: file, field, value, fix ({root} is the case's folder)
    cause: str
    fix: str
    run: Callable[[World], object]


CASES: list[Case] = []


def case(id: str, area: str, shows: tuple[str, ...], cause: str, fix: str, kind: str = "error"):
    def register(fn: Callable[[World], object]) -> Callable[[World], object]:
        CASES.append(Case(id, area, kind, shows, cause, fix, fn))
        return fn
    return register


def set_in(d: dict, dotted: str, value) -> None:
    *head, last = dotted.split(".")
    for k in head:
        d = d[int(k)] if isinstance(d, list) else d.setdefault(k, {})
    d[last] = value


def write_raster(path: Path, arr: np.ndarray, crs: str | None = own_city.CRS, transform=GRID[1], nodata=0) -> None:
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=1, dtype=arr.dtype.name,
                       crs=crs, transform=transform, nodata=nodata) as dst:
        dst.write(arr, 1)


# ----------------------------------------------------------------------------- config

def _config_value(key: str, value):
    def run(w: World):
        set_in(w.cfg, key, value)
        return w.validate()
    return run


for _id, _key, _value, _shows, _cause, _fix in (
    ("config-unknown-key", "yeers", [2022], ("yeers",), "a misspelt or unknown key", "spell the key as docs/config.md lists it"),
    ("config-year-as-text", "years", "2022", ("years", "2022"), "years given as text, not a list of years",
     "write years: [2022, 2023]"),
    ("config-negative-resolution", "resolution", -30, ("resolution", "-30"), "a pixel size of 0 or below",
     "give the pixel size in metres, e.g. 10"),
    ("config-bad-season-date", "season.start", "13-01", ("season", "13-01"), "a season date that is not MM-DD",
     "write the date as MM-DD, e.g. 04-01"),
    ("config-unknown-engine", "imagery.engine", "spark", ("imagery.engine", "spark"), "an imagery engine greensink does not have",
     "set imagery.engine to windows or dask"),
    ("config-tile-too-small", "tiles.size_px", 10, ("size_px", "10"), "tiles smaller than 64 pixels",
     "set tiles.size_px to 64 or more, or null for one tile"),
    ("config-unknown-composite", "imagery.composite", "mean", ("imagery.composite", "mean"), "a composite method greensink does not have",
     "use median or max-NDVI (see docs/config.md)"),
):
    case(_id, "config", _shows, _cause, _fix)(_config_value(_key, _value))


@case("config-yaml-syntax", "config", ("my.yaml", "not valid YAML at line 2, column", "missing closing bracket"),
      "a YAML syntax error in the config (an unclosed bracket)",
      "fix the line named; `greensink run`/`validate` name file and line (plain `snakemake --configfile` cannot)")
def _(w: World):
    w.write_config("years: [2022\nseason: {start: 05-01}\n")
    from greensink.workflow import load_project

    return load_project(w.config_file, base=w.root)


@case("config-yaml-syntax-plain-snakemake", "config", ("Config file is not valid JSON or YAML",),
      "a YAML syntax error in a config given to plain `snakemake --configfile`: Snakemake reads the file in its own "
      "command line, before the Snakefile runs, and names neither file nor line (`--verbose` shows them in a traceback)",
      "run `greensink validate CONFIG` (or `greensink run CONFIG`), which names the file, line and column")
def _(w: World):
    w.write_config("years: [2022\nseason: {start: 05-01}\n")
    cmd = [str(Path(sys.executable).with_name("snakemake")), "-n", "--cores", "1", "-s", str(ROOT / "Snakefile"),
           "--directory", str(w.root), "--configfile", str(w.config_file)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    shown = proc.stdout + proc.stderr
    # what the user sees: a failure, Snakemake's generic message, no file name, no line (measured with Snakemake 9.27)
    assert proc.returncode != 0 and "my.yaml" not in shown, shown
    verbose = subprocess.run([*cmd, "--verbose"], capture_output=True, text=True, timeout=300)
    assert f'in "{w.config_file}", line 1, column 8' in verbose.stdout + verbose.stderr  # only in --verbose's traceback
    return "error: " + shown.strip()


@case("config-season-wraps-north", "config", ("season: start 08-01 is after end 07-01", "2021-08-01 to 2022-07-01",
                                              "swap them", "start: '07-01', end: '08-01'"),
      "season.end before season.start north of the tropics: a winter composite", "swap start and end", kind="warning")
def _(w: World):
    w.cfg["season"] = {"start": "08-01", "end": "07-01"}
    w.cfg["years"] = [2022]
    return w.validate()


# ----------------------------------------------------------------------------- zones

@case("zones-levels-finest-first", "zones", ("the levels are listed in the wrong order",
                                              "'district' (zones[1], 2 zones) is listed after 'block' (zones[0], 6 zones)",
                                              "6 of 6 'block' zones lie within a 'district' zone",
                                              "List the levels coarsest first: district, block."),
      "zone levels listed finest first (parent ids would be inverted)", "list the levels in the order the message gives")
def _(w: World):
    w.cfg["zones"] = [{"level": "block", "path": "mydata/zones.gpkg", "layer": "block", "id": "code"},
                      {"level": "district", "path": "mydata/zones.gpkg", "layer": "district", "id": "code"}]
    return w.validate()


@case("zones-levels-finest-first-same-count", "zones", ("the levels are listed in the wrong order",
                                                        "2 of 2 'district' zones lie within a 'half' zone",
                                                        "List the levels coarsest first: half, district."),
      "a coarser level listed after a finer one with as many zones, which zone counts cannot tell",
      "list the levels in the order the message gives")
def _(w: World):
    # two halves (west, east) 200 m wider than the districts on every side: each district lies in one half,
    # and neither half in a district, with 2 zones each
    d = gpd.read_file(w.path("mydata/zones.gpkg"), layer="district").to_crs(own_city.CRS)
    gpd.GeoDataFrame({"code": ["west", "east"]}, geometry=d.buffer(200, join_style="mitre").values, crs=own_city.CRS
                     ).to_file(w.path("mydata/halves.gpkg"), layer="half")
    w.cfg["zones"] = [{"level": "district", "path": "mydata/zones.gpkg", "layer": "district", "id": "code"},
                      {"level": "half", "path": "mydata/halves.gpkg", "layer": "half", "id": "code"}]
    return w.validate()


@case("zones-children-straddle", "zones", ("1 of 6 'block' zones (zones[1]", "do not lie within one 'district' zone",
                                           "W1 (25.0 % outside)", "Snap the 'block' boundaries to the 'district' ones"),
      "a block drawn across two districts (a child straddling parents)",
      "snap the child boundaries to the parent level, or check the levels belong together", kind="warning")
def _(w: World):
    blocks = gpd.read_file(w.path("mydata/zones.gpkg"), layer="block").to_crs(own_city.CRS)
    k = blocks.index[blocks["code"] == "W1"][0]
    blocks.loc[k, "geometry"] = shapely.affinity.translate(blocks.geometry[k], xoff=300)  # 300 of its 1200 m east
    blocks.to_file(w.path("mydata/blocks.gpkg"), layer="block")
    w.cfg["zones"][1].update(path="mydata/blocks.gpkg")
    return w.validate()


@case("zones-id-column-missing", "zones", ("zones[0].id", "'zone_code'", "columns:", "Set zones[0].id"),
      "the id column named in the config is not in the layer", "set zones[i].id to one of the layer's columns")
def _(w: World):
    w.cfg["zones"][0]["id"] = "zone_code"
    return w.validate()


@case("zones-file-missing", "zones", ("zones[1].path", "nozones.gpkg", "does not exist", "Fix the path"),
      "a zones file that is not there", "fix the path (relative paths start in the folder the run starts in)")
def _(w: World):
    w.cfg["zones"][1]["path"] = "mydata/nozones.gpkg"
    return w.validate()


@case("zones-layer-missing", "zones", ("zones[0].path", "'districts'", "layers:", "an existing layer"),
      "a GeoPackage layer name that is not in the file", "give one of the layers listed")
def _(w: World):
    w.cfg["zones"][0]["layer"] = "districts"
    return w.validate()


@case("zones-fifo", "zones", ("zones[0].path", "a named pipe (FIFO)", "could block forever", "regular file"),
      "a named pipe given as a zones file (reading it would hang)", "give the path of a regular file")
def _(w: World):
    os.mkfifo(w.path("mydata/pipe.gpkg"))
    w.cfg["zones"][0]["path"] = "mydata/pipe.gpkg"
    return w.validate()


@case("zones-not-a-vector", "zones", ("zones[0].path", "zones.txt", "cannot be read as a vector layer", "GeoPackage"),
      "a zones file that is not a vector layer", "give a file GDAL reads (GeoPackage, Shapefile, GeoJSON)")
def _(w: World):
    w.path("mydata/zones.txt").write_text("district one\n", encoding="utf-8")
    w.cfg["zones"][0] = {"level": "district", "path": "mydata/zones.txt", "id": "code"}
    return w.validate()


@case("zones-no-crs", "zones", ("zones[1]", "nocrs.gpkg", "has no CRS", "Assign Projection"),
      "a zones layer without a CRS", "assign the CRS in GIS software and save again")
def _(w: World):
    blocks = gpd.read_file(w.path("mydata/zones.gpkg"), layer="block").set_crs(None, allow_override=True)
    blocks.to_file(w.path("mydata/nocrs.gpkg"), layer="block")
    w.cfg["zones"][1].update(path="mydata/nocrs.gpkg")
    return w.validate()


# ----------------------------------------------------------------------------- imagery

@case("imagery-glob-matches-nothing", "imagery", ("imagery.files[0].nir", "*_SR_B8.TIF", "matches no file", "Fix the path or glob"),
      "a band glob that matches no file", "fix the glob (relative paths start where the run starts)")
def _(w: World):
    w.cfg["imagery"]["files"][0]["nir"] = "mydata/imagery/*_SR_B8.TIF"
    return w.validate()


@case("imagery-year-without-scenes", "imagery", ("years: 2021 has no scene in its season", "2022-06-15", "Remove 2021 from years"),
      "a configured year with no scene in its season", "remove the year, widen the season or add scenes")
def _(w: World):
    w.cfg["years"] = [2021, 2022]
    return w.validate()


@case("imagery-band-not-a-raster", "imagery", ("_SR_B4.TIF", "cannot be read", "GeoTIFF"),
      "a band file that is not a raster (an HTML error page saved as .TIF)", "download the file again")
def _(w: World):
    w.path(SCENE_2023 + "_SR_B4.TIF").write_text("<html>404</html>", encoding="utf-8")
    return w.validate()


@case("imagery-band-no-crs", "imagery", ("_SR_B4.TIF has no CRS", "gdal_edit.py -a_srs"),
      "a band file without georeferencing", "assign the CRS (gdal_edit.py -a_srs EPSG:XXXX) or use the original file")
def _(w: World):
    p = w.path(SCENE_2023 + "_SR_B4.TIF")
    arr = rasterio.open(p).read(1)
    p.unlink()
    write_raster(p, arr, crs=None)
    return w.validate()


@case("imagery-no-overlap", "imagery", ("none of the 2 scene(s) of 2022 overlaps the zones", "Check the scenes' and the zones' CRS"),
      "scenes of another place (or a wrong CRS)", "give scenes of this area, check the CRS")
def _(w: World):
    for p in (w.root / "mydata" / "imagery").glob("*2022*"):
        arr = rasterio.open(p).read(1)
        nodata = rasterio.open(p).nodata
        p.unlink()
        write_raster(p, arr, transform=Affine(30, 0, own_city.X0 + 50_000, 0, -30, own_city.Y1), nodata=nodata)
    return w.validate()


@case("imagery-truncated-band", "imagery", ("_SR_B5.TIF", "IReadBlock failed", "truncated or corrupt", "download or export it again"),
      "a band file cut short (an interrupted download): GDAL's IReadBlock failed during a windowed read",
      "download or export the file again")
def _(w: World):
    from rasterio.windows import Window

    from greensink.ingest.reader import read_scene_window

    p = w.path(SCENE_2023 + "_SR_B5.TIF")
    os.truncate(p, 8000)
    scene = next(s for s in w.scenes() if s.nir == str(p))
    return read_scene_window(scene, w.grid(), Window(0, 0, 100, 100))


@case("imagery-truncated-band-scene-check", "imagery", ("_SR_B5.TIF", "the file of band 1", "IReadBlock failed", "download or export it again"),
      "a band file cut short, met by the ingest's scene checks", "download or export the file again")
def _(w: World):
    from greensink.ingest.checks import check_scene

    p = w.path(SCENE_2023 + "_SR_B5.TIF")
    os.truncate(p, 8000)
    scene = next(s for s in w.scenes() if s.nir == str(p))
    return check_scene(scene, w.grid())


@case("imagery-scaled-reflectance-under-dn-profile", "imagery",
      ("already reflectance", "DN × 2.75e-05 -0.2", "imagery.profiles.landsat-c2-l2.scale: 1 and offset: 0"),
      "imagery already scaled to reflectance 0-1, read with a digital-number profile (NDVI ~ 0, no vegetation)",
      "set the profile's scale: 1 and offset: 0, or give the DN files", kind="warning")
def _(w: World):
    from greensink.ingest.checks import calibration_check

    for p in (w.root / "mydata" / "imagery").glob("*_SR_B*.TIF"):
        dn = rasterio.open(p).read(1).astype(np.float64)
        p.unlink()
        write_raster(p, (dn * own_city.SCALE + own_city.OFFSET).astype(np.float32), nodata=None)
    scene = w.scenes()[0]
    record, warnings = calibration_check(scene)
    assert record["calibration_suspect"] and 0 < record["reflectance_median"]["nir"] + 0.2 < 0.01  # near the offset
    return warnings


@case("imagery-clouded-year", "imagery", ("composite.tif", "40.0 % of the analysis grid's pixels were never seen clear",
                                          "Add clear scenes"),
      "40 % of a year's area under cloud in every scene: unseen green space has no imagery-based value",
      "add clear scenes (widen the season) or accept the gap; zones say observed_pct", kind="warning")
def _(w: World):
    from greensink.composite import composite_to_file, never_clear_warning

    for p in (w.root / "mydata" / "imagery").glob("LC08_L2SP_118038_2023*_QA_PIXEL.TIF"):  # acquired in 2023
        qa = rasterio.open(p).read(1)
        qa[:40, :] = own_city.CLOUD  # the top 40 rows of 100: 40 % of the grid
        p.unlink()
        write_raster(p, qa, nodata=1)
    scenes = [s for s in w.scenes() if s.datetime.startswith("2023")]
    out = w.out / "composite.tif"
    stats = composite_to_file(scenes, w.grid(), out, "median", 512)
    out.unlink()  # a warning case: the composite is written; the catalogue checks the out folder is left clean
    return [never_clear_warning(stats, out)]


@case("change-clouded-year", "imagery", ("block 2022-2023", "zone(s) partly observed: typed land observed clear in both years",
                                         "sink_observed_t_yr compares only the land both years observed",
                                         "below carbon.min_observed_pct (50 %) have no sink", "Add clear scenes"),
      "40 % of a year clouded: the change between a clear and a clouded year would count filled land as a sink",
      "add clear scenes for the cloudy year; meanwhile read sink_observed_t_yr and observed_both_pct", kind="warning")
def _(w: World):
    from greensink import io as gio
    from greensink.aggregate import zone_draw_sums
    from greensink.change import (
        change_table,
        difference_function,
        masked_matrices,
        observation_shares,
        partly_observed_warning,
        sink_space,
        zone_sink_space,
    )
    from greensink.composite import composite_to_file
    from greensink.coverage import coverage_matrix

    for p in (w.root / "mydata" / "imagery").glob("LC08_L2SP_118038_2023*_QA_PIXEL.TIF"):  # acquired in 2023
        qa = rasterio.open(p).read(1)
        qa[:40, :] = own_city.CLOUD  # the top 40 rows of 100 (a park and the grass) under cloud in every 2023 scene
        p.unlink()
        write_raster(p, qa, nodata=1)
    grid, density = w.grid(), {}
    for year in (2022, 2023):  # each year's composite; carbon 40 t C/ha × NDVI, NaN where never seen clear
        out = w.root / f"composite_{year}.tif"
        composite_to_file([s for s in w.scenes() if s.datetime.startswith(str(year))], grid, out, "median", 512)
        red, nir, _ = gio.read_raster(out)
        density[year] = (40.0 * (nir - red) / (nir + red)).astype(np.float64).reshape(-1)
    blocks = gpd.read_file(w.path("mydata/zones.gpkg"), layer="block").to_crs(own_city.CRS)
    matrix = coverage_matrix(list(blocks.geometry), grid.transform, grid.shape)
    fractions = np.ones((1, grid.height, grid.width), dtype=np.float32)  # every pixel typed land
    active = np.arange(grid.height * grid.width)
    both, shares = observation_shares([matrix], active, density[2022], density[2023], fractions, fractions,
                                      grid.pixel_area_ha)
    assert both.reshape(grid.shape)[:40].sum() == 0 and both.reshape(grid.shape)[40:].all()

    def year_fn(year):
        fill = np.nanmean(density[year])  # the stock tables' fill: the observed mean density

        def fn(idx):
            est = np.where(np.isfinite(density[year][idx]), density[year][idx], fill)
            return est, est[None, :]
        return fn

    sums = zone_draw_sums([matrix, *masked_matrices([matrix], active, both)],
                          difference_function(year_fn(2022), year_fn(2023), 1), active, grid.pixel_area_ha)
    shares[0]["sums"] = sums[1]
    zones = blocks.assign(zone_id=blocks["code"].astype(str), parent_id=None, level="block", name=blocks["code"])
    # vegetated where NDVI >= 0.2 (density 8 t C/ha), NaN unseen; the stock tables' green area counts each year's own
    # observed land, so the cloud looks like a loss there; the change compares the land both years saw
    classes = {y: np.where(np.isfinite(d), (d >= 8.0).astype(np.float32), np.nan).reshape(grid.shape)
               for y, d in density.items()}
    green = {y: np.asarray(matrix @ np.nan_to_num(c.reshape(-1))).ravel() * grid.pixel_area_ha for y, c in classes.items()}
    compared = zone_sink_space([matrix], sink_space(classes[2022], fractions, False), sink_space(classes[2023], fractions,
                                                                                                False), grid.pixel_area_ha)
    stock = {y: pd.DataFrame({"zone_id": zones["zone_id"], "area_ha": blocks.area / 1e4, "carbon_t": 1.0,
                              "green_area_ha": green[y]}) for y in (2022, 2023)}
    table = change_table(zones, stock[2022], stock[2023], 2022, 2023, sums[0], no_net_loss_tolerance_ha=0.045,
                         observed=shares[0], min_observed_pct=50.0, green_compared=compared[0])
    lost_to_cloud = table["green_area_change_ha"] < -0.045  # the clouded blocks with vegetation: a "loss" of cloud
    sub = table.loc[lost_to_cloud]  # over the land both years saw nothing changed; where they saw none, unknown
    assert len(sub) and ((sub["green_area_change_compared_ha"] == 0) | sub["green_area_change_compared_ha"].isna()).all()
    assert sub["no_net_loss"].tolist() == [True if pct > 0 else pd.NA for pct in sub["green_area_compared_pct"]]
    # each block's share observed in both years, by hand: the part of it below the cloud's edge (y < Y1 − 40 × 30 m)
    edge = box(own_city.X0, own_city.Y1 - 100 * own_city.RES, own_city.X0 + 100 * own_city.RES, own_city.Y1 - 40 * own_city.RES)

    by_hand = 100.0 * blocks.intersection(edge).area / blocks.area
    np.testing.assert_allclose(table["observed_both_pct"], by_hand, atol=1e-6)
    assert table["sink_partly_observed"].tolist() == (by_hand < 100 - 1e-6).tolist() and table["sink_partly_observed"].any()
    assert table["sink_t_yr"].isna().tolist() == (by_hand < 50).tolist()
    return [partly_observed_warning(table, "block", 50.0)]


@case("imagery-dask-engine-truncated-band", "dask engine", ("_SR_B5.TIF", "IReadBlock failed", "download or export it again"),
      "a truncated band file composited with imagery.engine: dask", "download or export the file again")
def _(w: World):
    from greensink.composite import composite_to_file

    p = w.path(SCENE_2023 + "_SR_B5.TIF")
    os.truncate(p, 8000)
    scenes = [s for s in w.scenes() if s.datetime.startswith("2023")]
    return composite_to_file(scenes, w.grid(), w.out / "composite.tif", "median", 64, engine="dask")


@case("imagery-scenes-table-semicolons", "imagery", ("scenes.csv", "separated by semicolons", "comma-separated CSV"),
      "a scenes table saved with ';' as separator (European spreadsheet locale)", "save it as comma-separated CSV")
def _(w: World):
    w.path("mydata/scenes.csv").write_text("scene_id;date;sensor;red;nir\ns1;2022-06-15;landsat-c2-l2;a.tif;b.tif\n",
                                           encoding="utf-8")
    w.cfg["imagery"] = {"source": "local", "scenes": "mydata/scenes.csv"}
    return w.validate()


# ----------------------------------------------------------------------------- tiles

@case("tiles-truncated-tile-composite", "tiles", ("composite_r000c001.tif", "truncated or corrupt", "download or export it again"),
      "a tile composite cut short (a job killed on a full disk) read by the mosaic", "delete the tile file and run again")
def _(w: World):
    from greensink.composite import composite_to_file, mosaic_to_file

    grid = w.grid()
    scenes = [s for s in w.scenes() if s.datetime.startswith("2022")]
    tiles = []
    for t in grid.tiles(64):
        path = w.root / "tiles" / f"composite_{t.id}.tif"
        composite_to_file(scenes, grid, path, "median", 512, tile=t)
        tiles.append(path)
    os.truncate(tiles[1], os.path.getsize(tiles[1]) // 3)
    return mosaic_to_file(tiles, grid, w.out / "composite.tif", 64, n_scenes=len(scenes), method="median", block_rows=512)


# ----------------------------------------------------------------------------- plots

def _plots_case(edit: Callable[[gpd.GeoDataFrame], gpd.GeoDataFrame]):
    def run(w: World):
        w.write_plots(edit(w.plots()))
        return w.validate()
    return run


def _nan_carbon(g):
    g["carbon_t_ha"] = g["carbon_t_ha"].astype(object)
    g.loc[3, "carbon_t_ha"] = "n/a"
    return g


def _negative(g):
    g.loc[5, "carbon_t_ha"] = -4.0
    return g


def _unknown_type(g):
    g.loc[2, "type"] = "G9"
    return g


def _unconfigured_year(g):
    g.loc[g["year"] == 2023, "year"] = 2032
    return g


def _outside(g):
    g.loc[[0, 1], "geometry"] = [Point(own_city.X0 + 90_000, own_city.Y1), Point(own_city.X0 + 91_000, own_city.Y1)]
    return g


def _nan_xy(g):
    g.loc[4, "geometry"] = Point(np.nan, np.nan)
    return g


for _id, _edit, _shows, _cause, _fix, _kind in (
    ("plots-carbon-not-a-number", _nan_carbon, ("plots.gpkg) row 4", "carbon_t_ha must be a number >= 0", "'n/a'", "Remove the row or fill it"),
     "a plot whose carbon is text", "fill the value or remove the row", "error"),
    ("plots-carbon-negative", _negative, ("plots.gpkg) row 6", "carbon_t_ha must be a number >= 0", "-4.0"),
     "a negative carbon density", "fix the value or remove the row", "error"),
    ("plots-unknown-type", _unknown_type, ("plots.gpkg", "'type'", "['G9']", "Recode the plots or add the types"),
     "a plot type code that is not a configured green-space type", "recode the plot or add the type", "error"),
    ("plots-unconfigured-year", _unconfigured_year, ("plots.gpkg", "6 plot(s) dated [2032]", "'year'", "Add those years"),
     "every plot of one year labelled with a year that is not configured (that year would use the prior table)",
     "fix the year column or add the year", "warning"),
    ("plots-outside-area", _outside, ("plots.gpkg", "2 plot(s) lie outside the imagery", "['P00', 'P01']", "Check the plots' CRS"),
     "plots far from the study area (usually a wrong CRS)", "check the plots' CRS, remove plots outside", "error"),
    ("plots-nan-coordinates", _nan_xy, ("plots.gpkg", "1 plot(s) have no coordinates", "['P04']", "Give each plot its location"),
     "a plot with NaN or empty coordinates (not 'outside the area')", "give the plot its location or remove it", "error"),
):
    case(_id, "plots", _shows, _cause, _fix, kind=_kind)(_plots_case(_edit))


@case("plots-column-missing", "plots", ("plots.carbon_column = 'carbon'", "columns:", "Set these keys"),
      "a configured plots column that is not in the file", "set plots.*_column to the file's column names")
def _(w: World):
    w.cfg["plots"]["carbon_column"] = "carbon"
    return w.validate()


@case("plots-csv-with-xy", "plots", ("plots.csv: has no geometry", "coordinate columns ['x', 'y']", "ogr2ogr -a_srs EPSG:XXXX"),
      "plots given as a CSV with x/y columns (no geometry, no CRS)", "make a point layer with its CRS (ogr2ogr or QGIS)")
def _(w: World):
    g = w.plots()
    pd.DataFrame({**{c: g[c] for c in ("plot_id", "carbon_t_ha", "type", "year")}, "x": g.geometry.x, "y": g.geometry.y}
                 ).to_csv(w.path("mydata/plots.csv"), index=False)
    w.cfg["plots"]["path"] = "mydata/plots.csv"
    return w.validate()


@case("plots-device", "plots", ("plots.path", "/dev/zero is a character device", "could block forever"),
      "a device as the plots file (plots.path: /dev/zero; hashing it would never end)", "give the path of a regular file")
def _(w: World):
    w.cfg["plots"]["path"] = "/dev/zero"
    return w.validate()


@case("plots-no-crs", "plots", ("plots.gpkg", "the layer has no CRS", "Assign one"),
      "a plots layer without a CRS", "assign the CRS and save again")
def _(w: World):
    w.write_plots(w.plots().set_crs(None, allow_override=True))
    return w.validate()


@case("plots-corrupt-file", "plots", ("plots.path", "plots.gpkg", "cannot be read as a vector layer", "export it again"),
      "a plots GeoPackage cut short", "export the layer again")
def _(w: World):
    p = w.path("mydata/plots.gpkg")
    os.truncate(p, 2000)
    return w.validate()


# ----------------------------------------------------------------------------- green space

@case("greenspace-class-missing", "green space", ("classes.csv does not list class(es) [30]", "landcover.tif", "Add a row"),
      "a land-cover class present in the raster but not in the class table", "add a (class, type) row, or type ignore")
def _(w: World):
    w.path("mydata/classes.csv").write_text("class,type\n10,G1\n50,ignore\n", encoding="utf-8")
    return w.validate()


@case("greenspace-class-table-semicolons", "green space", ("classes.csv", "separated by semicolons", "comma-separated CSV"),
      "a class table saved with ';' as separator", "save it as comma-separated CSV")
def _(w: World):
    w.path("mydata/classes.csv").write_text("class;type\n10;G1\n30;EG\n50;ignore\n", encoding="utf-8")
    return w.validate()


@case("greenspace-class-unknown-type", "green space", ("classes.csv row 3 (class 30)", "type must be one of ['EG', 'G1'] or 'ignore'", "Got 'XX'"),
      "a class mapped to a type code that is not configured", "use a code of greenspace.types or ignore")
def _(w: World):
    w.path("mydata/classes.csv").write_text("class,type\n10,G1\n30,XX\n50,ignore\n", encoding="utf-8")
    return w.validate()


@case("greenspace-raster-no-crs", "green space", ("greenspace.raster", "landcover.tif has no CRS", "Assign one"),
      "a land-cover raster without a CRS", "assign the CRS and save again")
def _(w: World):
    p = w.path("mydata/landcover.tif")
    with rasterio.open(p) as src:
        arr, t = src.read(1), src.transform
    p.unlink()
    write_raster(p, arr, crs=None, transform=t)
    return w.validate()


@case("greenspace-polygons-unknown-codes", "green space", ("greenspace.path", "parks.gpkg", "['G7']", "Recode the polygons"),
      "green-space polygons with type codes that are not configured", "recode the polygons or add the codes")
def _(w: World):
    parks = gpd.GeoDataFrame({"type": ["G1", "G7"]}, geometry=[Point(own_city.X0 + 500, own_city.Y1 - 800).buffer(100),
                                                              Point(own_city.X0 + 1500, own_city.Y1 - 800).buffer(100)],
                             crs=own_city.CRS)
    parks.to_file(w.path("mydata/parks.gpkg"))
    w.cfg["greenspace"] = {"path": "mydata/parks.gpkg", "type_column": "type", "types": {"G1": "park", "EG": "regional"}}
    return w.validate()


@case("greenspace-type-column-missing", "green space", ("greenspace.type_column", "'kind'", "Set greenspace.type_column"),
      "the type column named in the config is not in the polygons", "set greenspace.type_column")
def _(w: World):
    parks = gpd.GeoDataFrame({"type": ["G1"]}, geometry=[Point(own_city.X0 + 500, own_city.Y1 - 800).buffer(100)], crs=own_city.CRS)
    parks.to_file(w.path("mydata/parks.gpkg"))
    w.cfg["greenspace"] = {"path": "mydata/parks.gpkg", "type_column": "kind", "types": {"G1": "park", "EG": "regional"}}
    return w.validate()


# ----------------------------------------------------------------------------- coefficients and targets

@case("coefficients-unquoted-comma", "coefficients", ("coefficients.csv", "Expected 4 fields in line 3, saw 5",
                                                      "quote values that contain a comma"),
      "a coefficient table with an unquoted comma in a value (pandas ParserError)", "quote the value or remove the comma")
def _(w: World):
    w.path("mydata/coefficients.csv").write_text(COEFFICIENTS.replace("EG,5,1", "EG,5,1,5"), encoding="utf-8")
    return w.validate()


@case("coefficients-semicolons", "coefficients", ("coefficients.csv", "separated by semicolons", "comma-separated CSV"),
      "a coefficient table saved with ';' as separator", "save it as comma-separated CSV")
def _(w: World):
    w.path("mydata/coefficients.csv").write_text(COEFFICIENTS.replace(",", ";"), encoding="utf-8")
    return w.validate()


@case("coefficients-not-a-number", "coefficients", ("coefficients", "type EG: c_above must be a finite number >= 0", "'five'",
                                                    "Fix the coefficient table"),
      "a coefficient that is not a number", "fix the coefficient table")
def _(w: World):
    w.path("mydata/coefficients.csv").write_text(COEFFICIENTS.replace("EG,5,", "EG,five,"), encoding="utf-8")
    return w.validate()


@case("coefficients-column-missing", "coefficients", ("coefficients must have columns", "Got no uncertainty_pct", "Rename or add the columns"),
      "a coefficient table without a required column", "add or rename the column")
def _(w: World):
    w.path("mydata/coefficients.csv").write_text(COEFFICIENTS.replace(",uncertainty_pct", "").replace(",30\n", "\n").replace(",40\n", "\n"),
                                                 encoding="utf-8")
    return w.validate()


@case("coefficients-not-utf8", "coefficients", ("coefficients.csv", "cannot be read as a CSV table", "UTF-8"),
      "a coefficient table saved in a legacy encoding (GBK) with Chinese names", "save it as UTF-8 CSV")
def _(w: World):
    w.path("mydata/coefficients.csv").write_bytes((COEFFICIENTS.replace("type,", "类型,")).encode("gbk"))
    return w.validate()


@case("targets-yaml-syntax", "coefficients", ("targets", "targets.yaml: not valid YAML at line 3", "config/targets.yaml"),
      "a targets file with a YAML syntax error", "fix the line named")
def _(w: World):
    w.path("mydata/targets.yaml").write_text("targets:\n  - {level: city, indicator: green_coverage_pct\n", encoding="utf-8")
    w.cfg["targets"] = "mydata/targets.yaml"
    return w.validate()


# ----------------------------------------------------------------------------- canopy height model

@case("chm-missing", "canopy height model", ("vegetation.chm.path", "chm_2022.tif does not exist", "Fix the path"),
      "a canopy height model path with {year} for a year without a file", "give a file per year or fix the path")
def _(w: World):
    write_raster(w.path("mydata/chm_2023.tif"), np.full((100, 100), 5, np.float32), nodata=None)
    w.cfg["vegetation"] = {"chm": {"path": "mydata/chm_{year}.tif"}}
    return w.validate()


@case("chm-no-crs", "canopy height model", ("vegetation.chm.path", "chm.tif has no CRS", "Assign one"),
      "a canopy height model without a CRS", "assign the CRS and save again")
def _(w: World):
    write_raster(w.path("mydata/chm.tif"), np.full((100, 100), 5, np.float32), crs=None, nodata=None)
    w.cfg["vegetation"] = {"chm": {"path": "mydata/chm.tif"}}
    return w.validate()


@case("chm-truncated", "canopy height model", ("chm.tif", "IReadBlock failed", "download or export it again"),
      "a canopy height model cut short, met when the vegetation rule reads it", "download or export it again")
def _(w: World):
    from greensink.vegetation import chm_strip

    p = w.path("mydata/chm.tif")
    write_raster(p, np.random.default_rng(1).uniform(0, 20, (100, 100)).astype(np.float32), nodata=None)
    os.truncate(p, 10000)
    return chm_strip(p, w.grid(), 2.0, 0.5)


# ----------------------------------------------------------------------------- STAC catalogs

def _catalog(w: World) -> Path:
    import test_stac

    return test_stac.build_catalog(w.root / "stacdata")


def _stac_scenes(w: World, catalog: Path, year: int = 2023):
    import test_stac
    from greensink import stac

    return stac.ingest_stac_year(test_stac.cfg_stac(catalog), test_stac.profiles(), test_stac.GRID, year, test_stac.SEASON)


@case("stac-catalog-missing", "STAC", ("imagery.stac.catalog", "nope/catalog.json does not exist", "static catalog's catalog.json"),
      "a static catalog path that does not exist", "give the catalog.json of a static catalog, or an API URL")
def _(w: World):
    w.cfg["imagery"] = {"source": "stac", "stac": {"catalog": "nope/catalog.json", "collections": ["landsat-c2-l2"]}}
    return w.validate()


@case("stac-catalog-corrupt-json", "STAC", ("imagery.stac.catalog", "catalog.json", "cannot be read as a STAC catalog",
                                            "write it again"),
      "a static catalog.json cut short (invalid JSON)", "write the catalog again")
def _(w: World):
    cat = _catalog(w)
    cat.write_text(cat.read_text(encoding="utf-8")[:40], encoding="utf-8")
    return _stac_scenes(w, cat)


@case("stac-no-item-in-season", "STAC", ("no STAC item found", "2019-04-01 to 2019-10-31", "max_cloud_cover_pct"),
      "no catalog item in a year's season over the area", "widen the season or the cloud limit, or check the collection")
def _(w: World):
    return _stac_scenes(w, _catalog(w), 2019)


@case("stac-every-asset-broken", "STAC", ("none of the 4 STAC item", "asset B04", "catalog.json"),
      "every item's band assets missing or unreadable", "fix the asset hrefs or download the files")
def _(w: World):
    cat = _catalog(w)
    for tif in (w.root / "stacdata" / "data").rglob("*"):
        if tif.is_file() and tif.suffix.lower() == ".tif":
            tif.write_bytes(b"not a tiff")
    return _stac_scenes(w, cat)


# ----------------------------------------------------------------------------- allometry inventories

INVENTORY = "tree,plot,species,dbh_cm,height_m\nt1,P1,Quercus alba,30,15\nt2,P1,Fraxinus pennsylvanica,20,11\n"


def _allometry(w: World, text: str | bytes, *extra: str) -> str:
    from greensink.cli import main

    inv = w.path("inventory.csv")
    inv.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    import contextlib
    import io as _io

    err = _io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(_io.StringIO()):
        rc = main(["allometry", str(inv), "--out", str(w.out / "trees.csv"), *extra])
    assert rc == 2, err.getvalue()
    return err.getvalue()


for _id, _text, _extra, _shows, _cause, _fix in (
    ("allometry-dbh-not-a-number", INVENTORY.replace(",20,", ",twenty,"), (),
     ("inventory.csv row 2 (line 3): 'dbh_cm'", "Got 'twenty'"), "a DBH that is not a number", "fix or remove the row"),
    ("allometry-dbh-column-missing", INVENTORY.replace("dbh_cm", "diameter"), (),
     ("inventory.csv", "dbh_cm", "diameter"), "the inventory has no DBH column of the expected name", "rename it or pass --dbh-column"),
    ("allometry-semicolons", INVENTORY.replace(",", ";"), (),
     ("inventory.csv", "separated by semicolons", "comma-separated CSV"), "an inventory saved with ';' as separator",
     "save it as comma-separated CSV"),
    ("allometry-unquoted-comma", INVENTORY.replace("Quercus alba", "Quercus alba, white oak"), (),
     ("inventory.csv", "line 2 has 6 values but the header has 5 columns", "quote values that contain a comma"),
     "a species name with an unquoted comma", "quote the value"),
    ("allometry-negative-dbh", INVENTORY.replace(",30,", ",-30,"), (),
     ("inventory.csv row 1 (line 2): 'dbh_cm'", "-30"), "a negative DBH", "fix or remove the row"),
):
    case(_id, "allometry", _shows, _cause, _fix)(lambda w, t=_text, e=_extra: _allometry(w, t, *e))


@case("allometry-params-yaml-syntax", "allometry", ("params.yaml: not valid YAML at line 2", "config/allometry.yaml"),
      "an allometry parameter file with a YAML syntax error", "fix the line named, start from config/allometry.yaml")
def _(w: World):
    w.path("params.yaml").write_text("carbon_fraction: [0.47\n", encoding="utf-8")
    return _allometry(w, INVENTORY, "--params", str(w.path("params.yaml")))


# ----------------------------------------------------------------------------- workflow files and faults

@case("workflow-grid-json-truncated", "faults", ("grid.json line 1", "not valid JSON", "delete it and run again"),
      "a workflow JSON record cut short (a disk that filled up before atomic writes)", "delete the file and run again")
def _(w: World):
    from greensink.grid import Grid

    p = w.out.parent / "grid.json"
    p.write_text('{"crs": "EPSG:32650", "transform": [30', encoding="utf-8")
    from greensink import io as gio

    return Grid.from_dict(gio.read_json(p))


@case("disk-full-write", "faults", ("carbon.tif: cannot be written", "MiB free on its disk", "run the same command again",
                                    "no half-written file"),
      "the disk (or quota, or file size limit) fills while a raster is written", "free space and run again; it resumes")
def _(w: World):
    code = ("import numpy as np, resource, sys\n"
            "from affine import Affine\nfrom greensink import io\nfrom greensink.grid import Grid\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))\n"
            "g = Grid(crs='EPSG:32650', transform=Affine(10, 0, 0, 0, -10, 0), width=300, height=300)\n"
            "a = np.random.default_rng(0).normal(size=(3, 300, 300)).astype('float32')\n"
            "try:\n    io.write_raster(sys.argv[1], a, g)\nexcept Exception as e:\n"
            "    print(type(e).__name__ + ': ' + str(e)); sys.exit(3)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(w.out / "carbon.tif")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3 and proc.stdout.startswith("OutputWriteError"), proc.stdout + proc.stderr
    from greensink.errors import OutputWriteError

    raise OutputWriteError(proc.stdout.split(": ", 1)[1])


# ----------------------------------------------------------------------------- the harness


def leftovers(root: Path) -> list[Path]:
    """Half-written files: atomic writes' temporaries anywhere, outputs in ``out``, any results folder."""
    tmp = [p for p in root.rglob(".*.tmp*")]
    out = [p for p in (root / "out").rglob("*") if p.is_file()]
    results = [p for p in root.rglob("results") if p.is_dir()]
    return tmp + out + results


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_case(c: Case, template: Path, tmp_path: Path):
    from greensink.errors import GreensinkError

    root = tmp_path / "w"
    shutil.copytree(template, root)
    w = World(root)
    if c.kind == "error":
        with pytest.raises(GreensinkError) as err:
            result = c.run(w)
            if isinstance(result, str) and result.startswith("error: "):  # a CLI's message on stderr
                raise GreensinkError(result)
        message = str(err.value)
    else:
        message = "\n".join(c.run(w) or [])
    for fragment in c.shows:
        assert fragment.format(root=root) in message, f"{c.id}: {fragment!r} not in the message:\n{message}"
    assert "Traceback" not in message
    assert leftovers(root) == [], f"{c.id}: output written or left half-written: {leftovers(root)}"


def test_catalogue_is_large_and_covers_every_area():
    assert len(CASES) >= 50
    assert len({c.id for c in CASES}) == len(CASES)
    areas = {c.area for c in CASES}
    assert {"config", "imagery", "zones", "plots", "green space", "coefficients", "STAC", "tiles", "dask engine",
            "canopy height model", "allometry", "faults"} <= areas


# ----------------------------------------------------------------------------- docs/errors.md


def errors_md() -> str:
    """docs/errors.md: the catalogue as a table a user can search by the words of a message."""
    lines = [
        "# Error and warning messages",
        "",
        "Every message greensink gives for a bad input or a fault names the file, the field (config key, column,",
        "row), the value it found and the fix. This table lists the messages of the bad-input catalogue",
        "(`tests/test_bad_input_catalogue.py`): each row is a test that breaks one input and checks that the",
        "message holds the words in the first column. Search this page for words of the message you got.",
        "",
        "Problems the preflight can see stop the run before any job runs (`greensink validate` and the first",
        "step of every run list every input problem at once). A problem met later, in a rule (e.g. a band file",
        "cut short, whose header the preflight read), stops that rule with no output written: the message is the",
        "last line of the rule's log (`logs/<rule>/...log`) and is shown on screen with the rule's name and the",
        "log's path, without a Python traceback. A",
        "traceback means a bug in greensink: please report it with the log. Warnings let the run go on; they",
        "are in the logs and in the report. An interrupted run (Ctrl-C, a killed job, a full disk) leaves no",
        "half-written file: run the same command again and it resumes. After a hard kill (SIGKILL, a lost",
        "node) Snakemake may first say `Directory cannot be locked`: run the same command with `--unlock`, then",
        "again without it.",
        "",
        "Snakemake itself reads `--configfile` in its command line, before the Snakefile (and so greensink) runs:",
        "for a YAML syntax error it says only `Config file is not valid JSON or YAML`, without the file or the",
        "line, and the workflow cannot add them (`snakemake --verbose` shows them inside a traceback). Run",
        "`greensink validate CONFIG` (or `greensink run CONFIG`), which names the file, line and column.",
        "",
        "This file is generated: `.venv/bin/python tests/test_bad_input_catalogue.py > docs/errors.md`.",
        "",
        "| area | kind | the message holds | cause | fix | case |",
        "|---|---|---|---|---|---|",
    ]
    for c in sorted(CASES, key=lambda c: (c.area, c.id)):
        shows = " … ".join(f"`{s.replace('|', '¦')}`" for s in c.shows)
        lines.append(f"| {c.area} | {c.kind} | {shows} | {c.cause.replace('|', '¦')} | {c.fix.replace('|', '¦')} | `{c.id}` |")
    return "\n".join(lines) + "\n"


def test_errors_md_is_the_catalogue():
    assert DOC.read_text(encoding="utf-8") == errors_md(), (
        "docs/errors.md differs from the catalogue: run `.venv/bin/python tests/test_bad_input_catalogue.py > docs/errors.md`")


if __name__ == "__main__":
    sys.stdout.write(errors_md())
