"""A small city greensink did not generate, written as a user would bring it.

Landsat Collection 2 L2-like band files (SR_B4, SR_B5, QA_PIXEL) at 30 m in UTM 50N whose pixel corners
lie at 15 m mod 30, as in every USGS Landsat file; zones in geographic EPSG:4326; a land-cover raster at
10 m in Web Mercator with a class table; no population and no plots. The land is drawn from rectangles in
UTM metres, so the typed area is known exactly (:data:`PARKS`, :data:`GRASS`), independent of any grid.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from affine import Affine
from pyproj import Transformer
from shapely.geometry import box

CRS = "EPSG:32650"
RES = 30.0
X0, Y1 = 400_015.0, 3_500_015.0  # the imagery's top-left corner: 15 m mod 30 on both axes
SIZE = 100  # 100 × 100 pixels, 3 km
# rectangles (xmin, ymin, xmax, ymax) in UTM metres, off the 30 m lattice on purpose
PARKS = [(X0 + 407, Y1 - 1_293, X0 + 1_151, Y1 - 611), (X0 + 1_703, Y1 - 2_488, X0 + 2_266, Y1 - 1_907)]
GRASS = [(X0 + 1_311, Y1 - 903, X0 + 2_540, Y1 - 488)]
ZONE_BOX = (X0 + 300, Y1 - 2_700, X0 + 2_700, Y1 - 300)  # inside the imagery
# reflectance (red, nir) of each cover
TREE, GRASS_REFL, BUILT = (0.04, 0.40), (0.06, 0.30), (0.15, 0.20)
CLEAR, CLOUD = 21824, 22280  # QA_PIXEL: clear land; cloud (bit 3 set)
SCALE, OFFSET = 2.75e-5, -0.2
DATES = {2022: ["20220615", "20220815"], 2023: ["20230614", "20230816"]}


def inside(x: np.ndarray, y: np.ndarray, rects) -> np.ndarray:
    hit = np.zeros(np.broadcast(x, y).shape, bool)
    for xmin, ymin, xmax, ymax in rects:
        hit |= (x >= xmin) & (x < xmax) & (y >= ymin) & (y < ymax)
    return hit


def cover_reflectance(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    red = np.full(x.shape, BUILT[0])
    nir = np.full(x.shape, BUILT[1])
    for rects, (r, n) in ((GRASS, GRASS_REFL), (PARKS, TREE)):
        m = inside(x, y, rects)
        red[m], nir[m] = r, n
    return red, nir


def dn(reflectance: np.ndarray) -> np.ndarray:
    return np.round((reflectance - OFFSET) / SCALE).astype(np.uint16)


def expected_ndvi() -> np.ndarray:
    """NDVI of each imagery pixel computed from its digital numbers, as a user would by hand."""
    cols, rows = np.meshgrid(np.arange(SIZE), np.arange(SIZE))
    x, y = X0 + (cols + 0.5) * RES, Y1 - (rows + 0.5) * RES
    red, nir = cover_reflectance(x, y)
    r = dn(red).astype(np.float64) * SCALE + OFFSET
    n = dn(nir).astype(np.float64) * SCALE + OFFSET
    return (n - r) / (n + r)


def _write(path: Path, array: np.ndarray, transform: Affine, crs: str, nodata) -> None:
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[1], height=array.shape[0], count=1,
                       dtype=array.dtype.name, crs=crs, transform=transform, nodata=nodata) as dst:
        dst.write(array, 1)


def write_city(folder: Path) -> None:
    """Write imagery/, zones.gpkg, landcover.tif and classes.csv under ``folder``."""
    img = folder / "imagery"
    img.mkdir(parents=True, exist_ok=True)
    cols, rows = np.meshgrid(np.arange(SIZE), np.arange(SIZE))
    x, y = X0 + (cols + 0.5) * RES, Y1 - (rows + 0.5) * RES
    red, nir = cover_reflectance(x, y)
    transform = Affine(RES, 0, X0, 0, -RES, Y1)
    for year, dates in DATES.items():
        for k, date in enumerate(dates):
            qa = np.full((SIZE, SIZE), CLEAR, np.uint16)
            cloud_red = red.copy()
            if k == 1:  # a cloud over the north-west corner of the second scene: masked by QA_PIXEL
                qa[:20, :20] = CLOUD
                cloud_red[:20, :20] = 0.5
            stem = f"LC08_L2SP_118038_{date}_{year + 1}0101_02_T1"
            _write(img / f"{stem}_SR_B4.TIF", dn(cloud_red), transform, CRS, 0)
            _write(img / f"{stem}_SR_B5.TIF", dn(nir), transform, CRS, 0)
            _write(img / f"{stem}_QA_PIXEL.TIF", qa, transform, CRS, 1)
    xmin, ymin, xmax, ymax = ZONE_BOX
    xm = (xmin + xmax) / 2
    districts = gpd.GeoDataFrame({"code": ["W", "E"], "label": ["West 西区", "East <东区>"]},
                                 geometry=[box(xmin, ymin, xm, ymax), box(xm, ymin, xmax, ymax)], crs=CRS)
    blocks, parents = [], []
    for d, (x_a, x_b) in zip("WE", ((xmin, xm), (xm, xmax)), strict=True):
        for j in range(3):
            y_a = ymin + j * (ymax - ymin) / 3
            blocks.append(box(x_a, y_a, x_b, y_a + (ymax - ymin) / 3))
            parents.append(d)
    block_gdf = gpd.GeoDataFrame({"code": [f"{p}{i}" for i, p in enumerate(parents)], "district": parents},
                                 geometry=blocks, crs=CRS)
    districts.to_crs("EPSG:4326").to_file(folder / "zones.gpkg", layer="district")
    block_gdf.to_crs("EPSG:4326").to_file(folder / "zones.gpkg", layer="block")
    # land cover at 10 m in Web Mercator over the zones, classes from the same rectangles
    to_merc = Transformer.from_crs(CRS, "EPSG:3857", always_xy=True)
    mx0, my0, mx1, my1 = to_merc.transform_bounds(X0 + 100, Y1 - 2_900, X0 + 2_900, Y1 - 100)
    w, h = int((mx1 - mx0) // 10), int((my1 - my0) // 10)
    mcols, mrows = np.meshgrid(np.arange(w), np.arange(h))
    ux, uy = Transformer.from_crs("EPSG:3857", CRS, always_xy=True).transform(mx0 + (mcols + 0.5) * 10, my1 - (mrows + 0.5) * 10)
    classes = np.full((h, w), 50, np.uint8)  # built
    classes[inside(ux, uy, GRASS)] = 30
    classes[inside(ux, uy, PARKS)] = 10
    _write(folder / "landcover.tif", classes, Affine(10, 0, mx0, 0, -10, my1), "EPSG:3857", 0)
    (folder / "classes.csv").write_text("class,type,name\n10,G1,tree cover park\n30,EG,grassland\n50,ignore,built-up\n",
                                        encoding="utf-8")


def typed_area_ha(rects) -> float:
    """Exact area of ``rects`` inside the zones, ha."""
    zone = box(*ZONE_BOX)
    return sum(zone.intersection(box(*r)).area for r in rects) / 10_000
