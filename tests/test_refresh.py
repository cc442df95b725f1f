"""A refresh touches only what changed (issue 12 item 2), on data greensink did not generate.

One finished run of a small own city (tests/own_city.py: Landsat-like band files, zones in EPSG:4326, a
land-cover raster) with field plots of both years in one plots file is shared by the tests; each then
changes what a GIS team changes and asserts the exact job list of `snakemake -n`:

* adding a year (its band files, its plots appended to the same plots file, the year in the config) runs
  that year's chain, the change pairs with it (consecutive and the period pair), the products over all
  years, provenance, report and the QGIS files, and nothing of the earlier years;
* appending a year's rows to a scenes table (imagery.scenes; a one-year run of its own) and its band files, then
  the year in the config, runs the same: that year's chain, its pair and the products over all years; nothing of
  the earlier year and not the grid; editing a row of the earlier year reruns its ingest, not the grid;
* editing one target value runs rule targets for each year, provenance (it checksums the targets file)
  and the report, and nothing else; the real run then changes the target columns and no change product.
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import yaml
from affine import Affine
from shapely.geometry import Point

import own_city
from conftest import shared_dir

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.workflow, pytest.mark.slow]

YEARS = [2022, 2023]
NEW = 2024
NEW_DATES = ["20240612", "20240818"]
LEVELS = ["district", "block"]
CONFIG = {
    "years": YEARS,
    "season": {"start": "05-01", "end": "09-30"},
    "crs": "EPSG:32650",
    "resolution": 30,
    "imagery": {"source": "local", "files": [{"red": "mydata/imagery/*_SR_B4.TIF", "nir": "mydata/imagery/*_SR_B5.TIF",
                                              "quality": "mydata/imagery/*_QA_PIXEL.TIF", "profile": "landsat-c2-l2"}]},
    "zones": [{"level": "district", "path": "mydata/zones.gpkg", "layer": "district", "id": "code", "name": "label"},
              {"level": "block", "path": "mydata/zones.gpkg", "layer": "block", "id": "code", "parent": "district"}],
    "greenspace": {"raster": "mydata/landcover.tif", "class_table": "mydata/classes.csv", "types": {"G1": "park", "EG": "regional"},
                   "park_types": ["G1"]},
    # the plots are read by every year's model; with so few plots of uniform land no type is fitted
    # (min_plots), each takes the coefficient table: what is tested is which jobs run, not the fit
    "plots": {"path": "mydata/plots.gpkg", "id_column": "plot_id", "carbon_column": "carbon_t_ha", "type_column": "type",
              "year_column": "year"},
    "targets": "mydata/targets.yaml",
    "model": {"n_bootstrap": 20, "min_plots": 100},
}
TARGETS = """targets:
  - {level: district, indicator: green_coverage_pct, op: ">=", value: 40}
  - {level: block, indicator: green_space_ratio_pct, op: ">=", value: 30}
"""


def snakemake(folder: Path, *args: str) -> str:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(folder),
           "--configfile", str(folder / "my.yaml"), "--cores", "2", *args]
    proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc.stdout + proc.stderr


JOB = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):$")


def dry_run_jobs(folder: Path) -> Counter:
    """The jobs of `snakemake -n` as a Counter of (rule, wildcards) with wildcards "name=value, ..." ("" if none)."""
    jobs: Counter = Counter()
    rule = wildcards = None
    for line in [*snakemake(folder, "-n").splitlines(), ""]:
        if rule and not line.startswith("    "):  # a job's block is its rule line and the indented lines below it
            jobs[rule, wildcards] += 1
            rule = None
        if m := JOB.match(line):
            rule, wildcards = m.group(1), ""
        elif rule and line.strip().startswith("wildcards:"):
            wildcards = line.strip().removeprefix("wildcards:").strip()
    return jobs


def write_scenes(folder: Path, year: int, dates: list[str]) -> None:
    """Band files of ``year`` as own_city writes them (clear land, one cloudy corner on the second date)."""
    cols, rows = np.meshgrid(np.arange(own_city.SIZE), np.arange(own_city.SIZE))
    x, y = own_city.X0 + (cols + 0.5) * own_city.RES, own_city.Y1 - (rows + 0.5) * own_city.RES
    red, nir = own_city.cover_reflectance(x, y)
    transform = Affine(own_city.RES, 0, own_city.X0, 0, -own_city.RES, own_city.Y1)
    for k, date in enumerate(dates):
        qa = np.full(red.shape, own_city.CLEAR, np.uint16)
        if k == 1:
            qa[:20, :20] = own_city.CLOUD
        stem = f"LC08_L2SP_118038_{date}_{year + 1}0101_02_T1"
        own_city._write(folder / "imagery" / f"{stem}_SR_B4.TIF", own_city.dn(red), transform, own_city.CRS, 0)
        own_city._write(folder / "imagery" / f"{stem}_SR_B5.TIF", own_city.dn(nir), transform, own_city.CRS, 0)
        own_city._write(folder / "imagery" / f"{stem}_QA_PIXEL.TIF", qa, transform, own_city.CRS, 1)


def plots(years: list[int]) -> gpd.GeoDataFrame:
    """Six plots in a park (G1) and six on grassland (EG), remeasured every year (deterministic carbon)."""
    rows = []
    for year in years:
        for code, (xmin, ymin, _, ymax), base in (("G1", own_city.PARKS[0], 40.0), ("EG", own_city.GRASS[0], 5.0)):
            for i in range(6):
                rows.append({"plot_id": f"{code}{i}", "type": code, "year": year, "carbon_t_ha": base + i + (year - 2022),
                             "geometry": Point(xmin + 60 + 90 * i, (ymin + ymax) / 2)})
    return gpd.GeoDataFrame(rows, crs=own_city.CRS)


def build(folder: Path) -> None:
    data = folder / "mydata"
    own_city.write_city(data)
    plots(YEARS).to_file(data / "plots.gpkg", layer="plots")
    (data / "targets.yaml").write_text(TARGETS, encoding="utf-8")
    (folder / "my.yaml").write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    snakemake(folder)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """The finished two-year run, shared by the workers (conftest.shared_dir)."""
    return shared_dir(tmp_path_factory, "refresh_run", build)


@contextmanager
def alone(folder: Path):
    """Hold the run folder alone while a test changes it (the tests may run in two xdist workers)."""
    with open(folder / "test.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def up_to_date(folder: Path) -> None:
    """The job lists below are relative to a finished run: say so plainly if it is not (e.g. the checkout's
    code changed after the shared run was built)."""
    stale = dry_run_jobs(folder)
    assert not stale, f"the finished run is not up to date before the change: {sorted(stale.items())}"


def test_adding_a_year_runs_that_year_and_its_change_products_only(finished):
    with alone(finished):
        up_to_date(finished)
        before = (finished / "mydata/plots.gpkg").read_bytes(), os.stat(finished / "mydata/plots.gpkg")
        new_files = []
        try:
            write_scenes(finished / "mydata", NEW, NEW_DATES)
            new_files = sorted((finished / "mydata/imagery").glob(f"*_{NEW}0[6-8]*"))
            plots([*YEARS, NEW]).to_file(finished / "mydata/plots.gpkg", layer="plots")  # appended: one file, three years
            # before the year is in the config: the earlier years' jobs do not see its files or plot rows;
            # provenance checksums the plots file, so it (and the report that shows it) is brought up to date
            assert dry_run_jobs(finished) == Counter({("provenance", ""): 1, ("report", ""): 1, ("all", ""): 1})
            (finished / "my.yaml").write_text(yaml.safe_dump({**CONFIG, "years": [*YEARS, NEW]}), encoding="utf-8")
            jobs = dry_run_jobs(finished)
        finally:
            (finished / "my.yaml").write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
            (finished / "mydata/plots.gpkg").write_bytes(before[0])
            os.utime(finished / "mydata/plots.gpkg", ns=(before[1].st_atime_ns, before[1].st_mtime_ns))
            for f in new_files:
                f.unlink()
    year = f"year={NEW}"
    expected = Counter({(rule, year): 1 for rule in ("ingest", "composite", "vegetation", "ndvi_se", "model", "carbon",
                                                     "fill", "aggregate", "targets")})
    # the change pairs with the new year: the consecutive one and, with three years, the period pair
    # (each checked for comparable imagery first)
    expected.update({(rule, f"y0={y0}, y1={NEW}"): 1 for y0 in (YEARS[-1], YEARS[0]) for rule in ("comparability", "change")})
    # over all years (trend, transitions) and of the whole run (provenance, report, QGIS styles and project; the
    # report's quick-look maps where the workflow has that rule)
    rules = set(snakemake(finished, "--list-rules").split())
    expected.update({(rule, ""): 1 for rule in ("trend", "transitions", "provenance", "report", "qgis_styles",
                                                "qgis_project", "report_maps", "all") if rule in rules})
    # the new year's zoning (carbon-sink importance, potential space, canopy gap: per year)
    expected.update({(rule, year): 1 for rule in ("zoning_canopy_gap", "zoning_importance", "zoning_potential")})
    assert jobs == expected, sorted((jobs - expected).items()) + [("missing", sorted((expected - jobs).items()))]
    # the two-year project is as it was: nothing to do
    assert "Nothing to be done" in snakemake(finished, "-n")


def test_editing_a_target_runs_targets_provenance_and_report_only(finished):
    with alone(finished):
        up_to_date(finished)
        targets = finished / "mydata/targets.yaml"
        change = finished / f"results/change/{YEARS[0]}_{YEARS[1]}/zones/district.gpkg"
        change_mtime = change.stat().st_mtime_ns
        targets.write_text(targets.read_text(encoding="utf-8").replace("value: 40", "value: 45"), encoding="utf-8")
        jobs = dry_run_jobs(finished)
        expected = Counter({("targets", f"year={y}"): 1 for y in YEARS})
        expected.update({(rule, ""): 1 for rule in ("provenance", "report", "all")})
        assert jobs == expected, sorted(jobs.items())
        snakemake(finished)
        assert "Nothing to be done" in snakemake(finished, "-n")
    for year in YEARS:
        table = pd.read_csv(finished / f"results/{year}/zones/district.csv")
        assert (table["target_green_coverage_pct"] == 45).all()
        # the gap is the value minus the new target, the met flag its sign (by hand from the table's own value)
        np.testing.assert_allclose(table["target_green_coverage_pct_gap"], table["green_coverage_pct"] - 45)
        assert (table["target_green_coverage_pct_met"] == (table["green_coverage_pct"] >= 45)).all()
    assert change.stat().st_mtime_ns == change_mtime  # the change products were not rewritten


# ----------------------------------------------------------------------------- a scenes table

TABLE_YEAR = 2023
TABLE_CONFIG = {**{k: v for k, v in CONFIG.items() if k not in ("plots", "model")}, "years": [TABLE_YEAR],
                "imagery": {"source": "local", "scenes": "mydata/imagery/scenes.csv"},
                # a scenario on the first year (no change: a few seconds): adding a year reruns none of its jobs
                "scenarios": [{"name": "copy", "baseline_year": TABLE_YEAR, "changes": []}]}


def scene_rows(year: int, dates: list[str]) -> pd.DataFrame:
    """The scenes table's rows of the band files own_city / write_scenes wrote for ``year`` (paths relative to
    the table's folder, the quality file in the Landsat profile's column qa_pixel)."""
    rows = []
    for date in dates:
        stem = f"LC08_L2SP_118038_{date}_{year + 1}0101_02_T1"
        rows.append({"scene_id": stem, "datetime": f"{date[:4]}-{date[4:6]}-{date[6:]}T02:30:00Z", "sensor": "landsat-c2-l2",
                     "red": f"{stem}_SR_B4.TIF", "nir": f"{stem}_SR_B5.TIF", "qa_pixel": f"{stem}_QA_PIXEL.TIF"})
    return pd.DataFrame(rows)


def build_table_run(folder: Path) -> None:
    """A one-year own city whose imagery is a scenes table (one year keeps the added run time small), with a
    scenario on that year."""
    data = folder / "mydata"
    own_city.write_city(data)
    scene_rows(TABLE_YEAR, own_city.DATES[TABLE_YEAR]).to_csv(data / "imagery/scenes.csv", index=False)
    (data / "targets.yaml").write_text(TARGETS, encoding="utf-8")
    (folder / "my.yaml").write_text(yaml.safe_dump(TABLE_CONFIG), encoding="utf-8")
    snakemake(folder)


@pytest.fixture(scope="module")
def table_run(tmp_path_factory) -> Path:
    return shared_dir(tmp_path_factory, "refresh_table_run", build_table_run)


def test_appending_a_year_to_the_scenes_table_runs_that_year_only(table_run):
    """Rule ingest and the grid take the scenes table as ancient with the digest of the rows they use
    (greensink.refresh): appending the new year's rows reruns no ingest of an earlier year and not the grid
    (through which everything would rerun)."""
    folder, table = table_run, table_run / "mydata/imagery/scenes.csv"
    with alone(folder):
        up_to_date(folder)
        before = table.read_bytes(), os.stat(table)
        new_files = []
        try:
            write_scenes(folder / "mydata", NEW, NEW_DATES)
            new_files = sorted((folder / "mydata/imagery").glob(f"*_{NEW}0[6-8]*"))
            pd.concat([pd.read_csv(table, dtype=str), scene_rows(NEW, NEW_DATES)]).to_csv(table, index=False)  # appended
            # before the year is in the config: nothing of the earlier year (provenance checksums the table)
            before_config = dry_run_jobs(folder)
            (folder / "my.yaml").write_text(yaml.safe_dump({**TABLE_CONFIG, "years": [TABLE_YEAR, NEW]}), encoding="utf-8")
            jobs = dry_run_jobs(folder)
            (folder / "my.yaml").write_text(yaml.safe_dump(TABLE_CONFIG), encoding="utf-8")
            # editing a row of the earlier year reruns that year's ingest (and what follows), not the grid
            text = table.read_text(encoding="utf-8")
            table.write_text(text.replace(f"{TABLE_YEAR}-08-16T02:30:00Z", f"{TABLE_YEAR}-08-16T03:00:00Z"), encoding="utf-8")
            edited = dry_run_jobs(folder)
        finally:
            (folder / "my.yaml").write_text(yaml.safe_dump(TABLE_CONFIG), encoding="utf-8")
            table.write_bytes(before[0])
            os.utime(table, ns=(before[1].st_atime_ns, before[1].st_mtime_ns))
            for f in new_files:
                f.unlink()
    assert before_config == Counter(), sorted(before_config.items())  # nothing reads the table's new rows yet
    year = f"year={NEW}"
    expected = Counter({(rule, year): 1 for rule in ("ingest", "composite", "vegetation", "ndvi_se", "model", "carbon",
                                                     "fill", "aggregate", "targets", "zoning_canopy_gap", "zoning_importance",
                                                     "zoning_potential")})
    expected.update({(rule, f"y0={TABLE_YEAR}, y1={NEW}"): 1 for rule in ("comparability", "change")})  # two years: one pair
    rules = set(snakemake(folder, "--list-rules").split())
    expected.update({(rule, ""): 1 for rule in ("trend", "transitions", "provenance", "report", "qgis_styles",
                                                "qgis_project", "report_maps", "all") if rule in rules})
    # (no scenario job: the scenario's params hold its baseline year only, not every year)
    assert jobs == expected, sorted((jobs - expected).items()) + [("missing", sorted((expected - jobs).items()))]
    assert ("ingest", f"year={TABLE_YEAR}") in edited and ("prepare_zones", "") not in edited, sorted(edited.items())
    assert "Nothing to be done" in snakemake(folder, "-n")
