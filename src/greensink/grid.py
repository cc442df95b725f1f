"""The analysis grid: one projected CRS, one pixel size, one north-up extent.

Every raster product of a run lies on the same :class:`Grid`, so rasters can be
combined pixel by pixel and zone coverage computed once per zone layer is valid for
all of them. A grid is built from a bounding box snapped outward to whole pixels
(the origin is a multiple of the resolution), so two runs over the same area agree.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from affine import Affine
from pyproj import CRS

from greensink.errors import ConfigError


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
        return self.resolution_m**2 / 10_000.0

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
        cls, bounds: tuple[float, float, float, float], resolution_m: float, crs: str
    ) -> Grid:
        """Smallest grid of ``resolution_m`` pixels aligned to multiples of the resolution
        that contains ``bounds`` (xmin, ymin, xmax, ymax, metres)."""
        check_projected(crs, "crs")
        if not resolution_m > 0:
            raise ConfigError(f"resolution must be a number of metres > 0. Got {resolution_m!r}.")
        xmin, ymin, xmax, ymax = bounds
        if not (xmax > xmin and ymax > ymin):
            raise ConfigError(f"Grid bounds must have xmax > xmin and ymax > ymin. Got {bounds!r}.")
        r = float(resolution_m)
        x0 = math.floor(xmin / r) * r
        y1 = math.ceil(ymax / r) * r
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
