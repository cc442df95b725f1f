"""Test helper: random S2 L2A-like scenes written on other lattices than the grid (shared by the
composite and lazy-engine tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import Affine

from greensink.ingest import Scene

# (CRS, transform, shape at full size): 20 m shifted by 3.3 m; another UTM zone at 15 m; 7 m (finer than 10 m)
LATTICES = [("EPSG:32651", Affine(20.0, 0.0, 349903.3, 0.0, -20.0, 3460107.7), (90, 100)),
            ("EPSG:32650", Affine(15.0, 0.0, 921300.0, 0.0, -15.0, 3467550.0), (120, 130)),
            ("EPSG:32651", Affine(7.0, 0.0, 350011.0, 0.0, -7.0, 3459990.0), (200, 230))]


def scenes_on_lattices(tmp_path: Path, which: list[int], rng: np.random.Generator, scale: int = 1) -> list[Scene]:
    """One scene per lattice in ``which`` (shapes divided by ``scale``): red, NIR uint16 DNs and an
    SCL with 20 % cloud (class 9), each a GeoTIFF in tmp_path."""
    scenes = []
    for i, k in enumerate(which):
        crs, transform, full = LATTICES[k]
        shape = (full[0] // scale, full[1] // scale)

        def tif(name: str, arr: np.ndarray, crs: str = crs, transform: Affine = transform) -> str:
            with rasterio.open(tmp_path / name, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=1,
                               dtype=arr.dtype, crs=crs, transform=transform) as dst:
                dst.write(arr, 1)
            return str(tmp_path / name)

        scl = np.where(rng.random(shape) < 0.2, 9, 4).astype(np.uint8)
        scenes.append(Scene(f"s{i}", f"2021-0{5 + i}-01", "sentinel2-l2a",
                            tif(f"red{i}.tif", rng.integers(300, 3000, shape).astype(np.uint16)),
                            tif(f"nir{i}.tif", rng.integers(2000, 6000, shape).astype(np.uint16)),
                            tif(f"scl{i}.tif", scl), 1e-4, 0.0))
    return scenes
