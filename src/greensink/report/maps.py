"""Report maps: carbon and sink rasters and zone choropleths as inline PNG data URIs.

Figures use matplotlib's object-oriented API (a :class:`~matplotlib.figure.Figure` saved through
the Agg canvas, no pyplot, so no global state and nothing left open). Their labels are English
only, because matplotlib's default fonts have no Chinese glyphs; the Chinese is in the HTML
captions. A large raster is block-averaged (:func:`downsample`) before it is drawn. (The model-fit
figures written beside the products are :mod:`greensink.figures`, a model-stage module.)
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Sequence
from io import BytesIO
from typing import Any

import geopandas as gpd
import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

FIG_SIZE_IN = (7.0, 6.0)
DPI = 100
MAP_MAX_PX = 800  # longest side of a raster as drawn; larger rasters are block-averaged first


def _png(fig: Figure) -> str:
    """The figure as a data: URI of a PNG (no Software/date metadata, so reruns are identical)."""
    canvas = FigureCanvasAgg(fig)
    buf = BytesIO()
    canvas.print_png(buf, metadata={"Software": None})
    fig.clear()
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _new_map(extent: tuple[float, float, float, float]) -> tuple[Figure, Any]:
    fig = Figure(figsize=FIG_SIZE_IN, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    xmin, ymin, xmax, ymax = extent
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    _scale_bar(ax, extent)
    return fig, ax


def _scale_bar(ax: Any, extent: tuple[float, float, float, float]) -> None:
    """A 1-2-5 scale bar (the longest no wider than a quarter of the map), bottom left."""
    xmin, ymin, xmax, ymax = extent
    width = xmax - xmin
    if not width > 0:
        return
    step = 10 ** math.floor(math.log10(width / 4))
    length = max(m * step for m in (1, 2, 5) if m * step <= width / 4)
    x0, y0 = xmin + 0.04 * width, ymin + 0.04 * (ymax - ymin)
    ax.plot([x0, x0 + length], [y0, y0], color="black", linewidth=3, solid_capstyle="butt", zorder=5)
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    ax.text(x0 + length / 2, y0 + 0.015 * (ymax - ymin), label, ha="center", va="bottom", fontsize=9, zorder=5,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.7, "pad": 1})


def _frame(ax: Any, extent: tuple[float, float, float, float]) -> None:
    """Limits to the report extent; no axis labels (geopandas adds CRS axis names; the caption says the CRS)."""
    xmin, ymin, xmax, ymax = extent
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.set_xlabel("")
    ax.set_ylabel("")


def downsample(band: np.ndarray, extent: tuple[float, float, float, float], max_px: int = MAP_MAX_PX,
               strip_rows: int = 64) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Block mean (NaN ignored) of a 2-D band to at most ``max_px`` cells on its longer side, and its extent.

    A figure 700 pixels wide cannot show more, and drawing a 10980² scene would cost gigabytes. The band
    is read in strips of ``strip_rows`` output rows, so memory is bounded by a strip, not the scene.
    It is padded with NaN to whole blocks: the returned extent may reach past the right and bottom
    edges by less than one block, which the map's axis limits crop. A block with no finite pixel is NaN."""
    band = np.asarray(band)
    rows, cols = band.shape
    f = max(1, math.ceil(max(rows, cols) / max_px))
    if f == 1:
        return band.astype(np.float32, copy=False), extent
    xmin, ymin, xmax, ymax = extent
    px, py = (xmax - xmin) / cols, (ymax - ymin) / rows
    out_r, out_c = math.ceil(rows / f), math.ceil(cols / f)
    out = np.full((out_r, out_c), np.nan, dtype=np.float32)
    for r0 in range(0, out_r, strip_rows):
        r1 = min(out_r, r0 + strip_rows)
        block = band[r0 * f:r1 * f].astype(np.float32)
        pad = ((0, (r1 - r0) * f - block.shape[0]), (0, out_c * f - cols))
        if pad[0][1] or pad[1][1]:
            block = np.pad(block, pad, constant_values=np.nan)
        block = block.reshape(r1 - r0, f, out_c, f)
        valid = np.isfinite(block)
        total = np.where(valid, block, 0.0).sum(axis=(1, 3), dtype=np.float64)
        count = valid.sum(axis=(1, 3))
        out[r0:r1] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return out, (xmin, ymax - out_r * f * py, xmin + out_c * f * px, ymax)


def raster_map(band: np.ndarray, band_extent: tuple[float, float, float, float],
               extent: tuple[float, float, float, float], boundaries: gpd.GeoDataFrame | None,
               *, title: str, label: str, cmap: str, vmin: float, vmax: float, extend: str) -> str:
    fig, ax = _new_map(extent)
    colours = colormaps[cmap].with_extremes(bad="#d9d9d9")
    bxmin, bymin, bxmax, bymax = band_extent
    image = ax.imshow(np.ma.masked_invalid(band), extent=(bxmin, bxmax, bymin, bymax), origin="upper", cmap=colours,
                      vmin=vmin, vmax=vmax)
    if boundaries is not None and len(boundaries):
        boundaries.boundary.plot(ax=ax, color="#555555", linewidth=0.9)
    _frame(ax, extent)
    fig.colorbar(image, ax=ax, label=label, shrink=0.85, extend=extend)
    ax.set_title(title)
    return _png(fig)


def choropleth(table: gpd.GeoDataFrame, column: str, extent: tuple[float, float, float, float], *,
               title: str, label: str, vmax: float) -> str:
    fig, ax = _new_map(extent)
    norm = Normalize(vmin=0.0, vmax=vmax)
    edge = 0.3 if len(table) <= 2000 else 0.0
    table.plot(column=column, ax=ax, cmap="YlGn", norm=norm, edgecolor="#666666", linewidth=edge,
               missing_kwds={"color": "#d9d9d9", "hatch": "///", "edgecolor": "#999999", "linewidth": edge})
    _frame(ax, extent)
    fig.colorbar(ScalarMappable(norm=norm, cmap="YlGn"), ax=ax, label=label, shrink=0.85)
    ax.set_title(title)
    return _png(fig)


def upper_limit(values: Iterable[np.ndarray], q: float) -> float:
    """The q-th percentile of the finite values of all arrays, or 1 when there are none or it is 0."""
    finite = [v[np.isfinite(v)] for v in (np.asarray(a).ravel() for a in values)]
    finite = [f for f in finite if f.size]
    if not finite:
        return 1.0
    top = float(np.percentile(np.concatenate(finite), q))
    return top if top > 0 else 1.0


def downsample_classes(band: np.ndarray, extent: tuple[float, float, float, float], max_px: int = MAP_MAX_PX,
                       ) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A class raster reduced to at most ``max_px`` cells on its longer side by taking each block's top-left
    pixel (a class has no mean), and the extent of the result (as :func:`downsample`'s)."""
    band = np.asarray(band)
    rows, cols = band.shape
    f = max(1, math.ceil(max(rows, cols) / max_px))
    if f == 1:
        return band, extent
    xmin, ymin, xmax, ymax = extent
    px, py = (xmax - xmin) / cols, (ymax - ymin) / rows
    out = band[::f, ::f]
    return out, (xmin, ymax - out.shape[0] * f * py, xmin + out.shape[1] * f * px, ymax)


def class_map(band: np.ndarray, band_extent: tuple[float, float, float, float],
              extent: tuple[float, float, float, float], boundaries: gpd.GeoDataFrame | None,
              classes: Sequence[tuple[float, str, str]], *, title: str) -> str:
    """A class raster drawn with one colour per class: ``classes`` (value, colour, English label); any other
    value (nodata, NaN) grey. The legend lists the classes in the given order, then "no data"."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    fig, ax = _new_map(extent)
    band = np.asarray(band, dtype=float)
    index = np.full(band.shape, np.nan)
    for k, (value, _, _) in enumerate(classes):
        index[band == value] = k
    cmap = ListedColormap([colour for _, colour, _ in classes]).with_extremes(bad="#d9d9d9")
    bxmin, bymin, bxmax, bymax = band_extent
    ax.imshow(np.ma.masked_invalid(index), extent=(bxmin, bxmax, bymin, bymax), origin="upper", cmap=cmap,
              vmin=-0.5, vmax=len(classes) - 0.5, interpolation="nearest")
    if boundaries is not None and len(boundaries):
        boundaries.boundary.plot(ax=ax, color="#555555", linewidth=0.9)
    _frame(ax, extent)
    handles = [Patch(facecolor=colour, edgecolor="#666666", label=label) for _, colour, label in classes]
    handles.append(Patch(facecolor="#d9d9d9", edgecolor="#666666", label="no data"))
    ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.85)
    ax.set_title(title)
    return _png(fig)


def diverging_choropleth(table: gpd.GeoDataFrame, column: str, extent: tuple[float, float, float, float], *,
                         title: str, label: str, vmax: float, outlined: np.ndarray | None = None,
                         cmap: str = "BrBG") -> str:
    """Zones coloured on a scale symmetric about 0 (−vmax … vmax, shared by the maps of the same quantity);
    zones where ``outlined`` is True get a bold black outline (e.g. significant); no data grey, hatched."""
    fig, ax = _new_map(extent)
    norm = Normalize(vmin=-vmax, vmax=vmax)
    edge = 0.3 if len(table) <= 2000 else 0.0
    table.plot(column=column, ax=ax, cmap=cmap, norm=norm, edgecolor="#666666", linewidth=edge,
               missing_kwds={"color": "#d9d9d9", "hatch": "///", "edgecolor": "#999999", "linewidth": edge})
    if outlined is not None and np.asarray(outlined, dtype=bool).any():
        table[np.asarray(outlined, dtype=bool)].boundary.plot(ax=ax, color="black", linewidth=2.0)
    _frame(ax, extent)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=label, shrink=0.85, extend="both")
    ax.set_title(title)
    return _png(fig)
