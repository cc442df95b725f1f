"""Zones for the North Dakota NAIP series (config/examples/north-dakota-series.yaml), made from the imagery's footprint.

No planning zones exist for this rural quarter-quad, so this script makes a nested set of its own: the
"city" is the footprint common to every NAIP file minus a margin (``--margin-m``, default 50 m), cut into
2 × 2 districts, each district into 4 × 3 blocks and each block into 3 × 3 parcels (1 + 4 + 48 + 432
rectangles that tile their parents exactly). They are illustrative units for exercising the multi-year
workflow (sums nest, every year is aggregated over the same polygons), not real administrative areas.

Inputs: the NAIP GeoTIFFs (``--data``, default ../shared/data/north-dakota-naip, relative to the folder the
script runs in, the checkout). Output: one GeoPackage (``--out``, default resources/north-dakota/zones.gpkg)
with layers city, district, block and parcel, each with zone_id, name and parent_id, in EPSG:26914 (the
files' CRS). Run it from the checkout before the workflow:

    .venv/bin/python config/examples/north_dakota_zones.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import geopandas as gpd
import rasterio
import shapely

CRS = "EPSG:26914"
DISTRICTS = (2, 2)  # columns, rows of districts in the city
BLOCKS = (4, 3)  # columns, rows of blocks in a district
PARCELS = (3, 3)  # columns, rows of parcels in a block


def common_footprint(data: Path, margin_m: float) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) in metres of the area every NAIP file in ``data`` covers, ``margin_m`` inside."""
    files = sorted(data.glob("m_*.tif"))
    if not files:
        raise SystemExit(f"no NAIP files (m_*.tif) found in {data}: give the data folder with --data")
    bounds = []
    for f in files:
        with rasterio.open(f) as src:
            if src.crs is None or src.crs.to_epsg() != 26914:
                raise SystemExit(f"{f}: CRS must be EPSG:26914 (NAD83 / UTM 14N). Got {src.crs} instead.")
            bounds.append(src.bounds)
    left, bottom = max(b.left for b in bounds) + margin_m, max(b.bottom for b in bounds) + margin_m
    right, top = min(b.right for b in bounds) - margin_m, min(b.top for b in bounds) - margin_m
    if right <= left or top <= bottom:
        raise SystemExit(f"the files in {data} share no area {margin_m} m inside their edges: use a smaller --margin-m")
    return left, bottom, right, top


def split(box: tuple[float, float, float, float], cols: int, rows: int) -> list[tuple[float, float, float, float]]:
    """``box`` cut into cols × rows equal rectangles, row by row from the top left (north-west)."""
    left, bottom, right, top = box
    w, h = (right - left) / cols, (top - bottom) / rows
    return [(left + c * w, top - (r + 1) * h, left + (c + 1) * w, top - r * h) for r in range(rows) for c in range(cols)]


def make_zones(city: tuple[float, float, float, float]) -> dict[str, gpd.GeoDataFrame]:
    """The four nested levels over the ``city`` rectangle, coarsest first."""
    levels: dict[str, list[tuple[str, str, str | None, tuple]]] = {"city": [("C", "city", None, city)]}
    quarter_names = ["north-west", "north-east", "south-west", "south-east"]
    levels["district"] = [(f"D{i + 1}", quarter_names[i], "C", b) for i, b in enumerate(split(city, *DISTRICTS))]
    levels["block"] = [(f"{d}-B{j + 1:02d}", f"block {d}-{j + 1}", d, b)
                       for d, _, _, db in levels["district"] for j, b in enumerate(split(db, *BLOCKS))]
    levels["parcel"] = [(f"{k}-P{j + 1}", f"parcel {k}-{j + 1}", k, b)
                        for k, _, _, kb in levels["block"] for j, b in enumerate(split(kb, *PARCELS))]
    return {
        level: gpd.GeoDataFrame({"zone_id": [r[0] for r in rows], "name": [r[1] for r in rows],
                                 "parent_id": [r[2] for r in rows]},
                                geometry=[shapely.box(*r[3]) for r in rows], crs=CRS)
        for level, rows in levels.items()
    }


def write_zones(data: Path, out: Path, margin_m: float = 50.0) -> dict[str, gpd.GeoDataFrame]:
    """Make the zones over the common footprint of the files in ``data`` and write them to ``out``."""
    zones = make_zones(common_footprint(data, margin_m))
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    for level, gdf in zones.items():
        gdf.to_file(out, layer=level, driver="GPKG")
    return zones


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/north-dakota-naip"), help="folder of the NAIP files")
    parser.add_argument("--out", type=Path, default=Path("resources/north-dakota/zones.gpkg"), help="GeoPackage written")
    parser.add_argument("--margin-m", type=float, default=50.0, help="margin inside the common footprint, metres")
    args = parser.parse_args(argv)
    zones = write_zones(args.data, args.out, args.margin_m)
    city = zones["city"].geometry.iloc[0]
    print(f"{args.out}: city {city.area / 1e4:.1f} ha, " + ", ".join(f"{len(g)} {lvl}" for lvl, g in zones.items()))


if __name__ == "__main__":
    main()
