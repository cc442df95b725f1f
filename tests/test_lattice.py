"""The analysis grid follows the imagery's own pixel lattice (grid.align), and resampling is said.

A USGS Landsat file has its pixel corners at 15 m mod 30 (here the corner is at x 690015,
y 3520815 in UTM 51N, 30 m pixels). A grid snapped to multiples of 30 m would read it shifted by
half a pixel in x and y, blending four pixels into each: the reason for ``grid.align: imagery``.
Scenes are tiny GeoTIFFs written in ``tmp_path``; DNs follow the Landsat C2 L2 profile
(reflectance = DN × 0.0000275 − 0.2).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from affine import Affine
from rasterio.warp import transform_bounds

from greensink.composite import composite_year
from greensink.grid import Grid, lattice_offset
from greensink.ingest import file_alignment, ingest_year, load_scenes
from greensink.lattice import imagery_lattice

CRS = "EPSG:32651"
SEASON = {"start": "04-01", "end": "10-31"}
LANDSAT = Affine(30.0, 0.0, 690015.0, 0.0, -30.0, 3520815.0)  # corners at 15 m mod 30, as USGS delivers
ZONES_BOUNDS = (690100.0, 3520500.0, 690300.0, 3520760.0)  # inside the 12 × 12 px scene (690015–690375, 3520455–3520815)


def write_band(path: Path, arr: np.ndarray, transform: Affine, crs: str = CRS) -> str:
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=1, dtype=arr.dtype,
                       crs=crs, transform=transform, nodata=0) as dst:
        dst.write(arr, 1)
    return str(path)


def landsat_scene(folder: Path, date: str, transform: Affine = LANDSAT, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Red and NIR DNs (12 × 12, a random texture so a shift shows) written as LC08_<date>_SR_B4/B5.tif."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    red = rng.integers(8000, 12000, (12, 12)).astype(np.uint16)  # reflectance 0.02–0.13
    nir = rng.integers(12000, 26000, (12, 12)).astype(np.uint16)  # reflectance 0.13–0.515
    write_band(folder / f"LC08_{date}_SR_B4.tif", red, transform)
    write_band(folder / f"LC08_{date}_SR_B5.tif", nir, transform)
    return red, nir


def local_config(folder: Path, align="imagery", resolution: float = 30.0) -> dict:
    return {"years": [2023], "season": SEASON, "crs": CRS, "resolution": resolution, "grid": {"align": align},
            "imagery": {"source": "local", "files": [{"red": str(folder / "*_SR_B4.tif"), "nir": str(folder / "*_SR_B5.tif"),
                                                      "profile": "landsat-c2-l2"}]}}


def grid_of(cfg: dict) -> tuple[Grid, dict]:
    align = imagery_lattice(cfg, ZONES_BOUNDS)
    return Grid.from_bounds(ZONES_BOUNDS, cfg["resolution"], cfg["crs"], tuple(align["origin"])), align


def ndvi_of_dn(red: np.ndarray, nir: np.ndarray) -> np.ndarray:
    r, n = red * 2.75e-5 - 0.2, nir * 2.75e-5 - 0.2
    return (n - r) / (n + r)


# ----------------------------------------------------------------------------- the lattice


def test_lattice_offset_by_hand():
    assert lattice_offset((690015.0, 3520815.0), 30) == (15.0, 15.0)
    assert lattice_offset((-7.0, 12.5), 30) == (23.0, 12.5)  # −7 = −1 × 30 + 23
    assert lattice_offset((600000.0000000001, 30.0), 30) == (0.0, 0.0)  # float noise is no offset


def test_grid_from_bounds_on_a_shifted_lattice_by_hand():
    # xmin 690100: the lattice 15 + 30k just below is 690075 (k = 23002); ymax 3520760: just above is 3520785
    g = Grid.from_bounds(ZONES_BOUNDS, 30, CRS, origin=(15.0, 15.0))
    assert (g.transform.c, g.transform.f) == (690075.0, 3520785.0)
    # x 690075 … 690315 (8 px covers xmax 690300), y 3520785 … 3520485 (10 px covers ymin 3520500)
    assert (g.width, g.height) == (8, 10)
    # the default lattice is multiples of the resolution, as before
    g0 = Grid.from_bounds(ZONES_BOUNDS, 30, CRS)
    assert (g0.transform.c, g0.transform.f, g0.width, g0.height) == (690090.0, 3520770.0, 7, 9)


def test_grid_follows_the_scene_lattice_and_ndvi_equals_the_raw_bands(tmp_path):
    red, nir = landsat_scene(tmp_path / "img", "20230615")
    cfg = local_config(tmp_path / "img")
    grid, align = grid_of(cfg)
    assert align["origin"] == [15.0, 15.0] and "LC08_20230615_SR_B4.tif" in align["source"] and align["note"] is None
    # the grid's corners are the scene's corners: 690075 = 690015 + 2 × 30, 3520785 = 3520815 − 1 × 30
    assert grid.transform == Affine(30.0, 0.0, 690075.0, 0.0, -30.0, 3520785.0)
    col0, row0 = 2, 1
    scenes = load_scenes(cfg["imagery"])
    record = ingest_year(scenes, grid, 2023, SEASON)
    (rec,) = record["scenes"]
    assert rec["resampled"] is False and rec["resampling"] == []
    assert not [w for w in record["warnings"] if "resampled" in w]
    stack, _ = composite_year(scenes, grid)
    ours = (stack[1] - stack[0]) / (stack[1] + stack[0])
    window = (slice(row0, row0 + grid.height), slice(col0, col0 + grid.width))
    np.testing.assert_allclose(ours, ndvi_of_dn(red[window].astype(np.float64), nir[window].astype(np.float64)), atol=1e-6, rtol=0)
    np.testing.assert_allclose(stack[0], red[window] * 2.75e-5 - 0.2, atol=1e-6, rtol=0)  # reflectance copied, not interpolated


def test_a_grid_on_multiples_of_the_resolution_shifts_the_scene_and_says_so(tmp_path):
    red, nir = landsat_scene(tmp_path / "img", "20230615")
    cfg = local_config(tmp_path / "img", align="resolution")
    grid, align = grid_of(cfg)
    assert align["origin"] == [0.0, 0.0] and grid.transform.c == 690090.0
    scenes = load_scenes(cfg["imagery"])
    record = ingest_year(scenes, grid, 2023, SEASON)
    (rec,) = record["scenes"]
    # scene corners at 15 m mod 30, grid corners at 0 mod 30: shifted 15 m east, 15 m north
    assert rec["resampled"] is True
    assert [(b["role"], b["shift_m"]) for b in rec["resampling"]] == [("red", [15.0, 15.0]), ("nir", [15.0, 15.0])]
    (warning,) = [w for w in record["warnings"] if "resampled" in w]
    assert rec["scene_id"] in warning and "15 m east, 15 m north" in warning and "grid.align: [690015, 3520815]" in warning
    # and the shift is not harmless: NDVI moves pixel by pixel
    stack, _ = composite_year(scenes, grid)
    ours = (stack[1] - stack[0]) / (stack[1] + stack[0])
    raw = ndvi_of_dn(red.astype(np.float64), nir.astype(np.float64))
    # grid pixel (0, 0) spans x 690090–690120, y 3520770–3520740: centred on the raw pixels' common corner
    # of rows 1–2 and columns 2–3, so bilinear resampling gives their mean reflectance
    r = red[1:3, 2:4].astype(np.float64).mean() * 2.75e-5 - 0.2
    n = nir[1:3, 2:4].astype(np.float64).mean() * 2.75e-5 - 0.2
    assert ours[0, 0] == pytest.approx((n - r) / (n + r), abs=1e-6)
    assert np.abs(ours[0, 0] - raw[1:3, 2:4]).max() > 0.01


def test_scenes_on_two_lattices_the_first_defines_the_grid_the_other_is_warned_about(tmp_path):
    landsat_scene(tmp_path / "img", "20230615")
    landsat_scene(tmp_path / "img", "20230715", transform=Affine(30.0, 0.0, 690000.0, 0.0, -30.0, 3520800.0), seed=2)
    cfg = local_config(tmp_path / "img")
    grid, align = grid_of(cfg)
    assert align["origin"] == [15.0, 15.0]  # the first scene (June)
    record = ingest_year(load_scenes(cfg["imagery"]), grid, 2023, SEASON)
    june, july = record["scenes"]
    assert (june["resampled"], july["resampled"]) == (False, True)
    # July's corners at 0 mod 30 lie 15 m west and south of the grid's (15 mod 30): a shift of ±15 m, given as +15
    assert july["resampling"][0]["shift_m"] == [15.0, 15.0]
    warned = [w for w in record["warnings"] if "resampled" in w]
    assert len(warned) == 1 and july["scene_id"] in warned[0] and june["scene_id"] not in warned[0]


def test_align_to_a_given_point_and_imagery_of_another_resolution(tmp_path):
    landsat_scene(tmp_path / "img", "20230615")
    point = imagery_lattice(local_config(tmp_path / "img", align=[5.0, -2.5]), ZONES_BOUNDS)
    assert point["origin"] == [5.0, 27.5] and point["align"] == "point"
    # analysis at 10 m: the 30 m scene has no lattice at 10 m, so multiples of 10 m, with the reason
    fine = imagery_lattice(local_config(tmp_path / "img", resolution=10.0), ZONES_BOUNDS)
    assert fine["origin"] == [0.0, 0.0] and "pixel size 30 × 30 m" in fine["note"]


def test_file_alignment_reasons():
    grid = Grid(CRS, Affine(30.0, 0.0, 690075.0, 0.0, -30.0, 3520785.0), 8, 10)
    assert file_alignment(CRS, LANDSAT, grid) is None
    assert file_alignment(CRS, Affine(30.0, 0.0, 690020.0, 0.0, -30.0, 3520805.0), grid)["shift_m"] == [5.0, -10.0]
    assert "pixel size 20 × 20 m" in file_alignment(CRS, Affine(20.0, 0.0, 690015.0, 0.0, -20.0, 3520815.0), grid)["why"]
    assert "reprojected from EPSG:32650" in file_alignment("EPSG:32650", LANDSAT, grid)["why"]


def test_stac_grid_follows_proj_transform_of_the_first_item(tmp_path):
    landsat_scene(tmp_path / "img", "20230615")
    catalog = pystac.Catalog("c", "test catalog")
    w, s_, e, n = transform_bounds(CRS, "EPSG:4326", 690015.0, 3520455.0, 690375.0, 3520815.0)  # the scene's footprint
    for day in ("2023-06-15", "2023-07-15"):
        item = pystac.Item(f"LC08_{day}", geometry={"type": "Polygon", "coordinates": [[[w, s_], [e, s_], [e, n], [w, n], [w, s_]]]},
                           bbox=[w, s_, e, n], datetime=dt.datetime.fromisoformat(f"{day}T02:00:00+00:00"), properties={},
                           collection="landsat-c2-l2")
        # the first item says its lattice in proj:* (a corner at 15 m mod 30); the file itself is not read for it
        item.add_asset("red", pystac.Asset(str(tmp_path / "img" / "LC08_20230615_SR_B4.tif"), extra_fields={
            "proj:epsg": 32651, "proj:transform": [30.0, 0.0, 690045.0, 0.0, -30.0, 3520845.0]}))
        item.add_asset("nir08", pystac.Asset(str(tmp_path / "img" / "LC08_20230615_SR_B5.tif")))
        catalog.add_item(item)
    catalog.normalize_hrefs(str(tmp_path / "stac"))
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    cfg = {"years": [2023], "season": SEASON, "crs": CRS, "resolution": 30.0, "grid": {"align": "imagery"},
           "imagery": {"source": "stac", "stac": {"catalog": str(tmp_path / "stac" / "catalog.json"), "profile": "landsat-c2-l2",
                                                  "assets": {"quality": None}}}}
    align = imagery_lattice(cfg, ZONES_BOUNDS)
    assert align["origin"] == [15.0, 15.0] and "LC08_2023-06-15" in align["source"] and "proj:transform" in align["source"]
    json.dumps(align)  # goes into grid.json
