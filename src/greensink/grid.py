"""The analysis grid: one projected CRS, one pixel size, one north-up extent.

Every raster product of a run lies on the same :class:`Grid`, so rasters can be
combined pixel by pixel and zone coverage computed once per zone layer is valid for
all of them. A grid is built from a bounding box snapped outward to whole pixels of a
*lattice*: the pixel corners lie at ``x0 + k × resolution``, ``y0 + k × resolution`` for a
lattice origin (x0, y0) (by default 0, 0: multiples of the resolution; the workflow takes the
imagery's own pixel-corner offset, so the imagery is read without resampling), so two runs over
the same area and lattice agree.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from affine import Affine
from pyproj import CRS

from greensink.errors import ConfigError
from greensink.units import m2_to_ha


class Tile(NamedTuple):
    """A rectangle of grid pixels: one ``{tile}`` job of a tiled run (see :meth:`Grid.tiles`)."""

    id: str
    row_off: int
    col_off: int
    height: int
    width: int

    @property
    def rows(self) -> slice:
        return slice(self.row_off, self.row_off + self.height)

    @property
    def cols(self) -> slice:
        return slice(self.col_off, self.col_off + self.width)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid. ``transform`` maps (col, row) to (x, y) in metres."""

    crs: str
    transform: Affine
    width: int
    height: int

    @property
    def resolution_m(self) -> float:
        """Pixel size in metres (square pixels)."""
        return float(self.transform.a)

    @property
    def pixel_area_ha(self) -> float:
        """Area of one pixel in hectares (1 ha = 10 000 m²)."""
        return m2_to_ha(self.resolution_m**2)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return (self.height, self.width)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) in metres."""
        xmin, ymax = self.transform.c, self.transform.f
        return (xmin, ymax - self.height * self.resolution_m, xmin + self.width * self.resolution_m, ymax)

    @classmethod
    def from_bounds(
        cls, bounds: tuple[float, float, float, float], resolution_m: float, crs: str,
        origin: tuple[float, float] = (0.0, 0.0),
    ) -> Grid:
        """Smallest grid of ``resolution_m`` pixels that contains ``bounds`` (xmin, ymin, xmax,
        ymax, metres), with its pixel corners on the lattice through ``origin`` (x0, y0, metres):
        at x0 + k × resolution and y0 + k × resolution for whole k. The default (0, 0) aligns
        the corners to multiples of the resolution."""
        check_projected(crs, "crs")
        if not resolution_m > 0:
            raise ConfigError(f"resolution must be a number of metres > 0. Got {resolution_m!r}.")
        xmin, ymin, xmax, ymax = bounds
        if not (xmax > xmin and ymax > ymin):
            raise ConfigError(f"Grid bounds must have xmax > xmin and ymax > ymin. Got {bounds!r}.")
        r = float(resolution_m)
        ox, oy = lattice_offset(origin, r)
        x0 = math.floor((xmin - ox) / r) * r + ox
        y1 = math.ceil((ymax - oy) / r) * r + oy
        width = int(math.ceil((xmax - x0) / r - 1e-9))
        height = int(math.ceil((y1 - ymin) / r - 1e-9))
        return cls(crs=crs, transform=Affine(r, 0.0, x0, 0.0, -r, y1), width=width, height=height)

    def to_dict(self) -> dict:
        t = self.transform
        return {
            "crs": self.crs,
            "transform": [t.a, t.b, t.c, t.d, t.e, t.f],
            "width": self.width,
            "height": self.height,
            "resolution_m": self.resolution_m,
            "bounds": list(self.bounds),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Grid:
        return cls(crs=d["crs"], transform=Affine(*d["transform"][:6]), width=int(d["width"]), height=int(d["height"]))

    @classmethod
    def read(cls, path: str | Path) -> Grid:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def windows(self, block_rows: int = 512) -> list[tuple[slice, slice]]:
        """Row strips of at most ``block_rows`` rows covering the grid, for streaming."""
        return [
            (slice(r, min(r + block_rows, self.height)), slice(0, self.width))
            for r in range(0, self.height, block_rows)
        ]

    def tiles(self, size_px: int | None = None) -> list[Tile]:
        """Fixed square tiles of ``size_px`` × ``size_px`` pixels covering the grid exactly once,
        row-major from the top-left corner; the last row and column of tiles are cut at the grid's
        edge. Ids are ``r{row}c{col}`` with the tile's row and column index, zero-padded to three
        digits (``r000c001`` is the second tile of the first row). ``size_px`` None gives one tile,
        ``r000c000``, that is the whole grid."""
        if size_px is None:
            return [Tile("r000c000", 0, 0, self.height, self.width)]
        if int(size_px) != size_px or size_px < 1:
            raise ConfigError(f"tiles.size_px must be a whole number of pixels >= 1. Got {size_px!r}.")
        size = int(size_px)
        n_rows, n_cols = -(-self.height // size), -(-self.width // size)
        digits = max(3, len(str(max(n_rows, n_cols) - 1)))
        return [
            Tile(f"r{i:0{digits}d}c{j:0{digits}d}", i * size, j * size,
                 min(size, self.height - i * size), min(size, self.width - j * size))
            for i in range(n_rows)
            for j in range(n_cols)
        ]

    def tile(self, tile_id: str, size_px: int | None = None) -> Tile:
        """The tile of :meth:`tiles` named ``tile_id``; ValueError if the tiling has none."""
        for t in self.tiles(size_px):
            if t.id == tile_id:
                return t
        raise ValueError(f"No tile {tile_id!r} in the {self.height} × {self.width} grid cut into tiles of {size_px} px.")

    def subgrid(self, tile: Tile) -> Grid:
        """The grid of the pixels of ``tile``: same CRS and pixel size, origin at the tile's corner."""
        if not (0 <= tile.row_off and 0 <= tile.col_off and tile.height > 0 and tile.width > 0
                and tile.row_off + tile.height <= self.height and tile.col_off + tile.width <= self.width):
            raise ValueError(f"Tile {tile!r} is not inside the {self.height} × {self.width} grid.")
        return Grid(crs=self.crs, transform=self.transform @ Affine.translation(tile.col_off, tile.row_off),
                    width=tile.width, height=tile.height)


def lattice_offset(corner: tuple[float, float], resolution_m: float) -> tuple[float, float]:
    """The offset (ox, oy), each in [0, resolution), of the pixel-corner lattice through ``corner``
    (x, y, metres) from multiples of ``resolution_m``: a Landsat file with its corner at
    (690015, 3520815) and 30 m pixels has offset (15, 15). An offset within 1e-6 m of a whole
    pixel is 0, so float noise in a file's transform does not move the grid."""
    r = float(resolution_m)
    out = []
    for v in corner:
        o = math.fmod(float(v), r)
        if o < 0:
            o += r
        if min(o, r - o) < 1e-6:
            o = 0.0
        out.append(o)
    return out[0], out[1]


def check_projected(crs: str, where: str) -> CRS:
    """Return ``crs`` parsed, or raise if it is not a projected CRS in metres."""
    try:
        parsed = CRS.from_user_input(crs)
    except Exception as exc:  # pyproj raises CRSError with a long text
        raise ConfigError(f"{where}: {crs!r} is not a CRS pyproj understands ({exc}). Use e.g. 'EPSG:32651'.") from exc
    if not parsed.is_projected:
        raise ConfigError(
            f"{where}: {crs!r} is a geographic CRS (degrees); greensink needs a projected CRS in metres. "
            "Use the local UTM zone, e.g. 'EPSG:32651' for 120–126°E north of the equator."
        )
    unit = parsed.axis_info[0].unit_name if parsed.axis_info else ""
    if unit not in ("metre", "meter"):
        raise ConfigError(f"{where}: {crs!r} has axis unit {unit!r}; greensink needs metres. Use a UTM or national metric CRS.")
    return parsed
