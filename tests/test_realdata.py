"""Real data: the workflow on imagery nobody here made (../shared/data; see each PROVENANCE.md there).

The data are read in place, never copied into the project. When ``../shared/data`` is absent (a
fresh clone) every test here is SKIPPED with that reason; when it is present but a dataset in it
is missing, the tests FAIL, so a broken data folder never passes silently.

(a) Canberra, Landsat-5 TM NBAR of 1992-03-23 with its PQ bit mask, and the ACT suburbs and
    electorates in a geographic CRS (one suburb geometry invalid as delivered), run with
    config/examples/canberra.yaml up to NDVI/FVC/canopy and the suburb coverage. Checked against
    NDVI computed here with numpy from the raw GeoTIFFs: the whole scene pixel by pixel (the
    analysis grid is the scene's own 25 m grid), its median, and the per-suburb means and their
    order (CBD lowest, leafy residential highest, as PROVENANCE.md lists them).
(c) Brandenburg, Sentinel-2 L1C JPEG2000 (no nodata tag, no cloud mask), read through the
    package (no Snakemake): found by globs, ingested and composited on its own 10 m grid, its NDVI
    equals the raw bands' and its median and share > 0.3 are PROVENANCE.md's.
(b) North Dakota NAIP, several years (config/examples/naip.yaml) on one 5 m grid although the
    files' bounds shift by 1-3 m between years: every yearly composite has the same transform and
    shape, and its NDVI equals bilinear interpolation of the raw bands (scipy) at sample pixels.

Each run is made once per session, shared by the tests (and by pytest-xdist workers, under a
file lock). Run time about 15 s (a) and 25 s (b) on 2 cores.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
import yaml
from rasterio.features import rasterize
from scipy.ndimage import map_coordinates

from greensink import ingest, io
from greensink.composite import composite_year
from greensink.coverage import zonal_mean
from greensink.grid import Grid

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CANBERRA = DATA / "canberra"
NBAR = CANBERRA / "landsat5_nbar_1992"
NAIP = DATA / "north-dakota-naip"
NAIP_YEARS = [2009, 2014, 2017, 2020]  # four of the ten epochs keep the run short; all ten run the same way

pytestmark = [pytest.mark.realdata, pytest.mark.workflow]


def need(folder: Path) -> Path:
    """Skip when ../shared/data is absent; fail when it is there but ``folder`` is not."""
    if not DATA.is_dir():
        pytest.skip(f"real data not found at {DATA} (../shared/data is absent, e.g. in a fresh clone): "
                    "real-data tests skipped, nothing was checked")
    if not folder.exists():
        pytest.fail(f"{DATA} exists but {folder} is missing: restore the data folder (see {DATA / 'README.md'})")
    return folder


def example_config(name: str, workdir: Path, **changes) -> Path:
    """config/examples/<name>.yaml with its ../shared/data paths made absolute, written to workdir."""

    def fix(node):
        if isinstance(node, dict):
            return {k: fix(v) for k, v in node.items()}
        if isinstance(node, list):
            return [fix(v) for v in node]
        if isinstance(node, str) and node.startswith("../shared/data/"):
            return str(DATA / node[len("../shared/data/"):])
        return node

    cfg = fix(yaml.safe_load((ROOT / "config" / "examples" / f"{name}.yaml").read_text(encoding="utf-8")))
    cfg.update(changes)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def snakemake(workdir: Path, *targets: str) -> None:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--cores", "2", *targets]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")


def shared_run(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """Run ``build`` once per session in a work directory shared by all xdist workers."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's directory, common to the workers
    workdir = root / f"realdata_{name}"
    workdir.mkdir(exist_ok=True)
    with open(root / f"realdata_{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = workdir / "DONE"
        if not done.exists():
            build(workdir)
            done.write_text("done\n")
    return workdir


def read_band(pattern: str, folder: Path) -> tuple[np.ndarray, rasterio.Affine, rasterio.coords.BoundingBox]:
    (path,) = sorted(folder.glob(pattern))
    with rasterio.open(path) as src:
        return src.read(1), src.transform, src.bounds


# ============================================================================= (a) Canberra


@pytest.fixture(scope="module")
def canberra(tmp_path_factory) -> Path:
    need(NBAR)
    need(CANBERRA / "zones" / "act_asgs_zones_gda94.gpkg")

    def build(workdir: Path) -> None:
        example_config("canberra", workdir)
        snakemake(workdir, "results/1992/ndvi.tif", "results/1992/fvc.tif", "results/1992/canopy.tif",
                  "results/zones/suburb_coverage.npz")

    return shared_run(tmp_path_factory, "canberra", build)


@pytest.fixture(scope="module")
def independent() -> dict:
    """NDVI of the raw scene computed here, without greensink: red B30, NIR B40 (int16 ×10000,
    nodata -999), clear where the PQ25 flags for red/NIR saturation (bits 2, 3), cloud (10, 11)
    and cloud shadow (12, 13) all say 'passed' (bit set)."""
    need(NBAR)
    red, transform, bounds = read_band("scene01/*_B30.tif", NBAR)
    nir, _, _ = read_band("scene01/*_B40.tif", NBAR)
    pq, _, _ = read_band("pq/scene01/*.tif", NBAR)
    passed = {bit: (pq.astype(np.int64) >> bit) & 1 == 1 for bit in range(14)}
    clear = passed[2] & passed[3] & passed[10] & passed[11] & passed[12] & passed[13]
    valid = (red != -999) & (nir != -999)
    r, n = red.astype(np.float64) / 10000, nir.astype(np.float64) / 10000
    ndvi = np.where(valid & clear, (n - r) / (n + r), np.nan)
    return {"ndvi": ndvi, "valid": valid, "clear": clear, "transform": transform, "bounds": bounds,
            "ndvi_unmasked": np.where(valid, (n - r) / (n + r), np.nan)}


def scene_window(run: Path, independent: dict) -> tuple[slice, slice]:
    """Where the scene lies in the analysis grid (both 25 m grids on multiples of 25 m: no resampling)."""
    grid = json.loads((run / "results/zones/grid.json").read_text())
    x0, y0 = grid["transform"][2], grid["transform"][5]
    col = (independent["bounds"].left - x0) / 25.0
    row = (y0 - independent["bounds"].top) / 25.0
    assert col == int(col) and row == int(row), "the example's grid should align with the scene's pixels"
    h, w = independent["ndvi"].shape
    return slice(int(row), int(row) + h), slice(int(col), int(col) + w)


def test_canberra_ingest_record_and_warnings(canberra, independent):
    record = json.loads((canberra / "results/1992/ingest/scenes.json").read_text())
    (scene,) = record["scenes"]
    assert scene["scene_id"] == "ga-landsat-nbar_090_084_19920323" and scene["datetime"] == "1992-03-23"
    assert scene["red"].endswith("_B30.tif") and scene["nir"].endswith("_B40.tif") and "/pq/" in scene["quality"]
    assert (scene["scale"], scene["offset"], scene["nodata"]) == (1e-4, 0.0, -999)
    # masked share: observed (red and NIR valid) pixels the PQ flags as not clear: 800 of 172,647 here
    observed = int(independent["valid"].sum())
    masked = int((independent["valid"] & ~independent["clear"]).sum())
    assert observed == 172_647  # PROVENANCE.md: 172,647 valid pixels
    summary = record["summary"]
    assert summary["observations"] == observed
    assert summary["masked_pct"] == pytest.approx(100 * masked / observed, abs=1e-9)
    # the zones span the whole ACT, the scene 11 km × 10 km of it: said, not hidden
    assert any("cover only" in w for w in record["warnings"]), record["warnings"]
    # the invalid suburb geometry (Throsby, SAL 80125) was repaired with a warning
    zones_log = (canberra / "logs/prepare_zones.log").read_text()
    assert "80125" in zones_log and "invalid geometry" in zones_log and "WARNING" in zones_log


def test_canberra_ndvi_equals_raw_bands_pixel_by_pixel(canberra, independent):
    ours = io.read_raster(canberra / "results/1992/ndvi.tif")
    rows, cols = scene_window(canberra, independent)
    inside = ours[rows, cols]
    np.testing.assert_array_equal(np.isnan(inside), np.isnan(independent["ndvi"]))
    np.testing.assert_allclose(inside, independent["ndvi"], atol=1e-6, equal_nan=True)
    outside = ours.copy()
    outside[rows, cols] = np.nan
    assert np.isnan(outside).all()  # no data is NaN, never 0


def test_canberra_grid_is_the_scenes_lattice_and_nothing_is_resampled(canberra, independent):
    """config/examples/canberra.yaml promises "no resampling": the grid follows the scene's pixel
    corners (grid.align: imagery), and the ingest records that red and NIR were not resampled."""
    grid = json.loads((canberra / "results/zones/grid.json").read_text())
    assert grid["align"]["align"] == "imagery" and "_B30.tif" in grid["align"]["source"]
    scene_t = independent["transform"]
    assert (grid["transform"][2] - scene_t.c) % 25 == 0 and (grid["transform"][5] - scene_t.f) % 25 == 0
    (scene,) = json.loads((canberra / "results/1992/ingest/scenes.json").read_text())["scenes"]
    assert scene["resampled"] is False
    assert [b["role"] for b in scene["resampling"]] == []  # PQ band too: same 25 m lattice
    # the NBAR values are reflectance ×10000 and the profile divides by 10000: no calibration warning
    assert scene["calibration_suspect"] is False and 0 < scene["reflectance_median"]["red"] < 0.3


def test_canberra_scene_median_ndvi(canberra, independent):
    ours = io.read_raster(canberra / "results/1992/ndvi.tif")
    ours_median = float(np.nanmedian(ours))
    assert ours_median == pytest.approx(float(np.nanmedian(independent["ndvi"])), abs=1e-6)
    # PROVENANCE.md: median 0.548 over all 172,647 valid pixels, before any cloud mask
    assert float(np.nanmedian(independent["ndvi_unmasked"])) == pytest.approx(0.548, abs=0.0005)
    assert ours_median == pytest.approx(0.548, abs=0.002)  # masking 0.5 % cloud moves it very little


def test_canberra_suburb_ndvi_order(canberra, independent):
    # the 19 suburbs fully inside the scene (PROVENANCE.md), in the scene's CRS
    suburbs = gpd.read_file(CANBERRA / "zones" / "act_asgs_zones_gda94.gpkg", layer="sal_2021_suburbs").to_crs("EPSG:28355")
    suburbs["geometry"] = shapely.make_valid(suburbs.geometry.values)
    inside = suburbs[suburbs.within(shapely.box(*independent["bounds"]))].reset_index(drop=True)
    assert len(inside) == 19
    # independent: pixel-centre rasterisation of each suburb on the raw grid, mean of clear NDVI
    labels = rasterize([(g, i + 1) for i, g in enumerate(inside.geometry)], out_shape=independent["ndvi"].shape,
                       transform=independent["transform"], fill=0)
    ref = {name: float(np.nanmean(independent["ndvi"][labels == i + 1])) for i, name in enumerate(inside["SAL_NAME21"])}
    # ours: the workflow's exact coverage of each suburb over its NDVI product
    zones = io.read_vector(canberra / "results/zones/suburb.gpkg")
    means = dict(zip(zones["zone_id"], zonal_mean(io.read_sparse(canberra / "results/zones/suburb_coverage.npz"),
                                                  io.read_raster(canberra / "results/1992/ndvi.tif")), strict=True))
    ours = {name: float(means[code]) for name, code in zip(inside["SAL_NAME21"], inside["SAL_CODE21"], strict=True)}
    for name in ref:
        assert ours[name] == pytest.approx(ref[name], abs=0.005), name  # exact coverage vs pixel centres
    for table in (ours, ref):
        order = sorted(table, key=table.get)
        assert set(order[:3]) == {"Barton", "City", "Parkes (ACT)"}, order  # CBD and the parliamentary zone
        assert set(order[-3:]) == {"Hughes (ACT)", "Garran", "Red Hill (ACT)"}, order  # leafy residential, Red Hill reserve
    # PROVENANCE.md: Barton 0.287, Red Hill 0.577 (no cloud mask there; none of their pixels is cloudy)
    assert ours["Barton"] == pytest.approx(0.287, abs=0.003) and ours["Red Hill (ACT)"] == pytest.approx(0.577, abs=0.003)


def test_canberra_vegetation_products_on_the_same_grid(canberra):
    grid = json.loads((canberra / "results/zones/grid.json").read_text())
    for name in ("ndvi", "fvc", "canopy"):
        with rasterio.open(canberra / f"results/1992/{name}.tif") as src:
            assert src.crs.to_epsg() == 28355 and src.res == (25.0, 25.0)
            assert (src.width, src.height) == (grid["width"], grid["height"])
            assert list(src.transform)[:6] == grid["transform"][:6]
    fvc = io.read_raster(canberra / "results/1992/fvc.tif")
    ok = np.isfinite(fvc)
    assert ok.any() and fvc[ok].min() >= 0 and fvc[ok].max() <= 1


# ============================================================================= (b) NAIP, several years


def naip_zones(path: Path) -> None:
    """The footprint common to every NAIP file, 10 m inside, as one 'area' zone and four 'quarter' zones."""
    bounds = [rasterio.open(f).bounds for f in sorted(NAIP.glob("m_*.tif"))]
    x0, y0 = max(b.left for b in bounds) + 10, max(b.bottom for b in bounds) + 10
    x1, y1 = min(b.right for b in bounds) - 10, min(b.top for b in bounds) - 10
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    quarters = [shapely.box(x0, ym, xm, y1), shapely.box(xm, ym, x1, y1), shapely.box(x0, y0, xm, ym), shapely.box(xm, y0, x1, ym)]
    path.parent.mkdir(parents=True, exist_ok=True)
    gpd.GeoDataFrame({"zone_id": ["A"]}, geometry=[shapely.box(x0, y0, x1, y1)], crs="EPSG:26914").to_file(path, layer="area")
    gpd.GeoDataFrame({"zone_id": ["NW", "NE", "SW", "SE"]}, geometry=quarters, crs="EPSG:26914").to_file(path, layer="quarter")


@pytest.fixture(scope="module")
def naip(tmp_path_factory) -> Path:
    need(NAIP)

    def build(workdir: Path) -> None:
        naip_zones(workdir / "resources/naip/zones.gpkg")
        example_config("naip", workdir, years=NAIP_YEARS)
        snakemake(workdir, *[f"results/{y}/composite.tif" for y in NAIP_YEARS], "results/2017/ndvi.tif")

    return shared_run(tmp_path_factory, "naip", build)


def test_naip_yearly_composites_share_one_grid(naip):
    grid = json.loads((naip / "results/zones/grid.json").read_text())
    assert grid["resolution_m"] == 5.0 and grid["crs"] == "EPSG:26914"
    raw = {}
    for year in NAIP_YEARS:
        with rasterio.open(naip / f"results/{year}/composite.tif") as src:
            assert (src.width, src.height) == (grid["width"], grid["height"]), year
            assert list(src.transform)[:6] == grid["transform"][:6], year
            assert src.crs.to_epsg() == 26914
        (path,) = NAIP.glob(f"m_*_{year}*.tif")
        with rasterio.open(path) as src:
            raw[year] = (src.bounds, src.height)
    # ... although the raw files do not: their bounds shift and their row counts differ between years
    assert len({b for b, _ in raw.values()}) > 1 and len({h for _, h in raw.values()}) > 1


def test_naip_grid_follows_the_first_year_and_later_shifts_are_named(naip):
    """grid.align imagery: the 5 m grid takes the first scene's (2009) pixel corners, so 2009 is read
    pixel for pixel; a year whose files sit 1-3 m off that lattice is recorded as resampled, with
    its shift (its corner minus the nearest grid corner, metres, within ±2.5 m) and a warning."""
    grid = json.loads((naip / "results/zones/grid.json").read_text())
    assert "20090818" in grid["align"]["source"]
    gx, gy = grid["transform"][2], grid["transform"][5]
    for year in NAIP_YEARS:
        record = json.loads((naip / f"results/{year}/ingest/scenes.json").read_text())
        (scene,) = record["scenes"]
        with rasterio.open(naip / scene["red"]) as src:  # relative to the run folder (portable records)
            t = src.transform
        expected = [((t.c - gx + 2.5) % 5) - 2.5, ((t.f - gy + 2.5) % 5) - 2.5]
        expected = [5 - 2.5 if e == -2.5 else e for e in expected]  # a half-pixel shift is given as +2.5
        if expected == [0.0, 0.0]:
            assert scene["resampled"] is False and scene["resampling"] == [], year
            continue
        assert scene["resampled"] is True and year != NAIP_YEARS[0]
        assert [b["shift_m"] for b in scene["resampling"]] == [pytest.approx(expected, abs=1e-6)] * 2, year  # red and NIR: one file
        assert any(scene["scene_id"] in w and "resampled onto the analysis grid" in w for w in record["warnings"]), year


def test_naip_ndvi_equals_bilinear_interpolation_of_the_raw_bands(naip):
    grid = json.loads((naip / "results/zones/grid.json").read_text())
    transform = rasterio.Affine(*grid["transform"][:6])
    rows, cols = np.mgrid[5:grid["height"] - 5:37, 5:grid["width"] - 5:41]  # ~500 pixels inside the footprint
    xs, ys = transform @ (cols + 0.5, rows + 0.5)
    for year in NAIP_YEARS:
        red, nir, count = io.read_raster(naip / f"results/{year}/composite.tif")
        ours = (nir - red) / (nir + red)
        (path,) = NAIP.glob(f"m_*_{year}*.tif")
        with rasterio.open(path) as src:
            bands = src.read().astype(np.float64)
            c, r = ~src.transform @ (xs, ys)
        # raw pixel (i, j) has its centre at (j + 0.5, i + 0.5): bilinear at fractional index (r - 0.5, c - 0.5)
        red_raw = map_coordinates(bands[0], [r - 0.5, c - 0.5], order=1)
        nir_raw = map_coordinates(bands[3], [r - 0.5, c - 0.5], order=1)
        expected = (nir_raw - red_raw) / (nir_raw + red_raw)
        # DN 0 is the files' declared nodata (2014 has 2,837 NIR pixels of 0 over water): compare where the
        # bilinear kernel holds no nodata pixel
        fill = map_coordinates(((bands[0] == 0) | (bands[3] == 0)).astype(float), [r - 0.5, c - 0.5], order=1) > 0
        assert fill.mean() < 0.02, year
        np.testing.assert_allclose(ours[rows, cols][~fill], expected[~fill], atol=1e-5, err_msg=str(year))
        np.testing.assert_allclose(red[rows, cols][~fill], red_raw[~fill] / 255, atol=1e-6, err_msg=str(year))  # DN / 255
        assert (count <= 1).all() and count.mean() > 0.99  # one clear observation per pixel, except nodata
        # and the whole-image median agrees with the raw file's (PROVENANCE.md lists it per date)
        raw_ndvi = np.where((bands[0] > 0) & (bands[3] > 0), (bands[3] - bands[0]) / (bands[3] + bands[0]), np.nan)
        assert float(np.nanmedian(ours)) == pytest.approx(float(np.nanmedian(raw_ndvi)), abs=0.01), year


def test_naip_ingest_reads_red_and_nir_from_one_file(naip):
    files = set()
    for year in NAIP_YEARS:
        (scene,) = json.loads((naip / f"results/{year}/ingest/scenes.json").read_text())["scenes"]
        assert scene["sensor"] == "naip" and scene["red"] == scene["nir"]
        assert (scene["red_band"], scene["nir_band"]) == (1, 4)
        assert scene["datetime"].startswith(str(year))
        files.add(scene["red"])
    assert len(files) == len(NAIP_YEARS)
    # the vegetation stage reads the aligned composite: its NDVI is the composite's
    red, nir, _ = io.read_raster(naip / "results/2017/composite.tif")
    np.testing.assert_allclose(io.read_raster(naip / "results/2017/ndvi.tif"), (nir - red) / (nir + red), atol=1e-6)


# ============================================================================= (c) Brandenburg, Sentinel-2 L1C


def test_brandenburg_sentinel2_l1c_jpeg2000():
    folder = need(DATA / "brandenburg-s2")
    (scene,) = ingest.scenes_from_files([{"red": str(folder / "*_B04.jp2"), "nir": str(folder / "*_B08.jp2"),
                                          "profile": "sentinel2-l1c"}])
    assert scene.date.isoformat() == "2017-02-16" and (scene.scale, scene.offset) == (1e-4, 0.0)  # before baseline 04.00
    with rasterio.open(scene.red) as src:
        grid = Grid(src.crs.to_string(), src.transform, src.width, src.height)
        red_dn = src.read(1).astype(np.float64)
    with rasterio.open(scene.nir) as src:
        nir_dn = src.read(1).astype(np.float64)
    record = ingest.ingest_year([scene], grid, 2017, {"start": "01-01", "end": "12-31"})
    assert record["summary"]["masked_pct"] == 0.0 and record["warnings"] == []  # no quality band, no fill
    stack, stats = composite_year([scene], grid)
    ours = (stack[1] - stack[0]) / (stack[1] + stack[0])
    raw = (nir_dn - red_dn) / (nir_dn + red_dn)
    np.testing.assert_allclose(ours, raw, atol=1e-6)
    # PROVENANCE.md: median 0.193, share > 0.3: 0.146 (a winter scene, top of atmosphere)
    assert float(np.median(ours)) == pytest.approx(0.193, abs=0.0005)
    assert float((ours > 0.3).mean()) == pytest.approx(0.146, abs=0.0005)
    assert stats["pixels_never_clear"] == 0
