"""The built wheel works outside the checkout: its package data (schema, report template, default tables,
demo config) are found through importlib.resources, not through the source tree.

The wheel is built offline from a copy of the package's sources (pip, no build isolation: the .venv's
setuptools and wheel), installed with ``pip install --no-deps --target`` into a temporary folder, and run
with the .venv's interpreter (so the dependencies resolve) with only that folder on PYTHONPATH, from a
folder outside the checkout. Checked there: ``greensink validate`` without a config (the demo config from
the package) and with a config naming the demo city's files as its own data; ``greensink config-docs``;
``greensink demo OUT``; a report rendered from the packaged template; ``greensink run`` saying that the
workflow needs the checkout.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DATA = ["config.schema.yaml", "report.html.j2", "demo_config.yaml", "coefficients.csv", "targets.yaml",
                "allometry.yaml", "default_density.csv"]
RENDER = """
import numpy as np, pandas as pd, geopandas as gpd
from shapely.geometry import box
from greensink.report import render_report
city = gpd.GeoDataFrame({"zone_id": ["C1"], "name": ["示范市 Demo city"], "area_ha": [1200.0], "carbon_t": [123456.7],
                         "carbon_t_lo": [110000.0], "carbon_t_hi": [130000.0], "carbon_t_ha": [102.9]},
                        geometry=[box(0, 0, 4000, 3000)], crs="EPSG:32651")
band = np.full((3, 30, 40), 50.0, dtype=np.float32)
html = render_report(years=[2023], tables={2023: {"city": city}}, change={}, models={}, targets=pd.DataFrame(),
                     provenance={}, carbon_maps={2023: band}, sink_maps={}, extent=(0.0, 0.0, 4000.0, 3000.0),
                     crs="EPSG:32651", levels=["city"], type_names={})
print(len(html), "123,457 t C" in html, 'id="uncertainty"' in html, html.count("data:image/png;base64,"))
"""


def _can_build() -> str | None:
    """Why a wheel cannot be built offline here, or None: pip builds without isolation with this
    interpreter's setuptools, which needs the wheel package below setuptools 70.1 (make install adds it)."""
    if importlib.util.find_spec("setuptools") is None:
        return "setuptools is not installed in this interpreter (make install)"
    import setuptools

    major, minor = (int(p) for p in setuptools.__version__.split(".")[:2])
    if (major, minor) < (70, 1) and importlib.util.find_spec("wheel") is None:
        return f"setuptools {setuptools.__version__} needs the wheel package to build a wheel (make install adds it)"
    return None


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """(wheel, site folder with the wheel installed, a folder outside the checkout to run in, its environment)."""
    reason = _can_build()
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"  # built from a copy, so no build/ or egg-info lands in the shared checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    dist, site, outside = tmp / "dist", tmp / "site", tmp / "elsewhere"
    outside.mkdir()
    offline = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-w", str(dist), str(source)], capture_output=True, text=True, env=offline, timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    wheels = sorted(dist.glob("greensink-*.whl"))
    assert len(wheels) == 1, wheels
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(site),
                              str(wheels[0])], capture_output=True, text=True, env=offline, timeout=600)
    assert install.returncode == 0, install.stdout + install.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONPATH"] = str(site)  # before site-packages, where the checkout's editable install is
    return {"wheel": wheels[0], "site": site, "cwd": outside, "env": env}


def run(installed: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=installed["cwd"], env=installed["env"], capture_output=True,
                          text=True, timeout=timeout)


def greensink(installed: dict, *args: str) -> subprocess.CompletedProcess:
    return run(installed, "-m", "greensink.cli", *args)


def test_the_wheel_holds_the_package_data(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    missing = [n for n in PACKAGE_DATA if f"greensink/data/{n}" not in names]
    assert not missing, f"package data missing from the wheel: {missing}"
    assert "greensink/report/render.py" in names


def test_the_installed_package_is_the_one_imported(installed):
    proc = run(installed, "-c", "import greensink, greensink.package_data as p; print(greensink.__file__); "
                                "print(p.file_path(p.SCHEMA))")
    assert proc.returncode == 0, proc.stderr
    module, schema = proc.stdout.split()
    assert Path(module).is_relative_to(installed["site"]), module  # not the checkout's src/
    assert Path(schema) == installed["site"] / "greensink" / "data" / "config.schema.yaml"


def test_validate_without_a_config_checks_the_packaged_demo_config(installed):
    proc = greensink(installed, "validate")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "demo_config.yaml: valid" in proc.stdout
    assert str(installed["site"]) in proc.stdout  # the package's own demo config, not a checkout's


def test_config_docs_prints_the_reference_from_the_packaged_schema(installed):
    proc = greensink(installed, "config-docs")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (ROOT / "docs" / "config.md").read_text(encoding="utf-8")  # the same reference as the checkout's


def test_demo_writes_the_demo_city_and_a_config_of_its_files_validates(installed):
    proc = greensink(installed, "demo", "city")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    city = installed["cwd"] / "city"
    for name in ("demo.json", "imagery/scenes.csv", "zones/city.gpkg", "zones/parcel.gpkg", "greenspace.gpkg",
                 "plots.gpkg"):
        assert (city / name).is_file(), name
    assert "parcel': 1000" in proc.stdout  # the packaged demo config's 1000 parcels
    # the demo's files as a user's own data: local imagery, coefficients and targets left at greensink's own
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
    text = yaml.safe_dump(cfg).replace("resources/demo/", "city/")
    cfg = yaml.safe_load(text)
    cfg["imagery"] = {"source": "local", "scenes": "city/imagery/scenes.csv"}
    del cfg["demo"]
    del cfg["scenarios"]  # the demo's plans use layers the workflow's rule demo_scenario_layers makes
    (installed["cwd"] / "mine.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    proc = greensink(installed, "validate", "mine.yaml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "mine.yaml: valid" in proc.stdout


def test_the_report_renders_from_the_packaged_template(installed):
    proc = run(installed, "-c", RENDER)
    assert proc.returncode == 0, proc.stderr
    size, stock, section, images = proc.stdout.split()
    assert int(size) > 10_000 and stock == "True" and section == "True" and int(images) >= 1


def test_run_says_the_workflow_needs_the_checkout(installed):
    (installed["cwd"] / "run.yaml").write_text("years: [2023]\n", encoding="utf-8")
    proc = greensink(installed, "run", "run.yaml", "-n")
    assert proc.returncode == 2
    assert "greensink run needs the greensink checkout" in proc.stderr and "Snakefile" in proc.stderr
