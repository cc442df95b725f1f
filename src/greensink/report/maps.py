"""Report maps: carbon and sink rasters and zone choropleths as inline PNG data URIs.

Figures use matplotlib's object-oriented API (a :class:`~matplotlib.figure.Figure` saved through
the Agg canvas, no pyplot, so no global state and nothing left open). Their text is bilingual
(:func:`bilingual`, "碳密度 Carbon density") where the machine has a font with Chinese glyphs
(:func:`cjk_font`: matplotlib's own font list, then fontconfig's ``fc-list :lang=zh``), and English
otherwise, because matplotlib's default fonts have no Chinese glyphs; the HTML captions are always
bilingual. Zones of small levels are labelled on the maps by name (by id without a Chinese font).
A large raster is block-averaged (:func:`downsample`) before it is drawn. (The model-fit figures
written beside the products are :mod:`greensink.figures`, a model-stage module.)
"""

from __future__ import annotations

import base64
import functools
import math
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from io import BytesIO
from typing import Any

import geopandas as gpd
import numpy as np
from matplotlib import colormaps, font_manager, rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

FIG_SIZE_IN = (7.0, 6.0)
DPI = 100
MAP_MAX_PX = 800  # longest side of a raster as drawn; larger rasters are block-averaged first
MAX_LABELS = 30  # a level with at most this many zones gets its zones' names written on its maps
CJK_FONTS = ("Noto Sans CJK SC", "Source Han Sans SC", "Noto Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei",
             "Microsoft YaHei", "PingFang SC", "SimHei", "AR PL UMing CN", "Droid Sans Fallback")
"""Fonts with Chinese glyphs matplotlib is asked for first (any other font fontconfig lists for zh is also taken)."""
CJK_PROBE = "碳汇绿地区"  # characters a font must have to draw the figure text


def _has_glyphs(path: str, text: str = CJK_PROBE) -> bool:
    from matplotlib.ft2font import FT2Font

    try:
        font = FT2Font(path)
    except (OSError, RuntimeError, ValueError):
        return False
    return all(font.get_char_index(ord(ch)) for ch in text)


@functools.cache
def cjk_font() -> str | None:
    """The family name of a font that draws Chinese, or None: one of :data:`CJK_FONTS` in matplotlib's font list,
    else the first font ``fc-list :lang=zh`` names (added to matplotlib's list; its cache may predate the font).
    Each candidate must have the glyphs of :data:`CJK_PROBE`."""
    by_name = {f.name: f.fname for f in font_manager.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in by_name and _has_glyphs(by_name[name]):
            return name
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return None
    try:
        listed = subprocess.run([fc_list, ":lang=zh", "-f", "%{file}\n"], capture_output=True, text=True,
                                timeout=30, check=False).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    for path in sorted(set(listed)):
        if path.lower().endswith((".ttf", ".otf", ".ttc")) and _has_glyphs(path):
            before = {f.fname for f in font_manager.fontManager.ttflist}
            if path not in before:
                font_manager.fontManager.addfont(path)
            names = [f.name for f in font_manager.fontManager.ttflist if f.fname == path]
            if names:
                return names[0]
    return None


def bilingual(zh: str, en: str) -> str:
    """Figure text: "zh en" where a Chinese font is available (:func:`cjk_font`), else the English alone."""
    return f"{zh} {en}" if cjk_font() else en


def _font_rc() -> dict[str, Any]:
    """rcParams that draw text in DejaVu Sans and fall back to the Chinese font glyph by glyph (matplotlib's
    fallback works on a list of named families, not on the generic "sans-serif")."""
    cjk = cjk_font()
    return {"font.family": ["DejaVu Sans", *([cjk] if cjk else [])]}


def figure_fonts(func: Callable[..., str]) -> Callable[..., str]:
    """Decorate a function that makes a figure: its text is created under :func:`_font_rc` (a text's font
    family is fixed when the text is made), so Chinese text is drawn where :func:`cjk_font` found a font."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> str:
        with rc_context(_font_rc()):
            return func(*args, **kwargs)

    return wrapper


def png_uri(fig: Figure) -> str:
    """The figure as a data: URI of a PNG (no Software/date metadata, so reruns are identical)."""
    canvas = FigureCanvasAgg(fig)
    buf = BytesIO()
    canvas.print_png(buf, metadata={"Software": None})
    fig.clear()
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def zone_labels(table: gpd.GeoDataFrame | None, max_labels: int = MAX_LABELS) -> list[tuple[float, float, str]]:
    """(x, y, text) of each zone of a level with 2 to ``max_labels`` zones, at a point inside the zone: its name
    where a Chinese font draws it (:func:`cjk_font`) or the name is ASCII, else its zone id; none otherwise."""
    if table is None or not 2 <= len(table) <= max_labels:
        return []
    cjk = cjk_font() is not None
    out = []
    for (_, row), geom in zip(table.iterrows(), table.geometry, strict=True):
        if geom is None or geom.is_empty:
            continue
        name = row.get("name")
        name = "" if name is None or (isinstance(name, float) and math.isnan(name)) else str(name).strip()
        text = name if name and (cjk or name.isascii()) else str(row.get("zone_id", ""))
        p = geom.representative_point()
        out.append((float(p.x), float(p.y), text))
    return out


def _draw_labels(ax: Any, labels: Sequence[tuple[float, float, str]]) -> None:
    from matplotlib import patheffects

    for x, y, text in labels:
        ax.text(x, y, text, ha="center", va="center", fontsize=8, color="#111111", zorder=6,
                path_effects=[patheffects.withStroke(linewidth=2.5, foreground="white")])


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


@figure_fonts
def raster_map(band: np.ndarray, band_extent: tuple[float, float, float, float],
               extent: tuple[float, float, float, float], boundaries: gpd.GeoDataFrame | None,
               *, title: str, label: str, cmap: str, vmin: float, vmax: float, extend: str,
               labels: Sequence[tuple[float, float, str]] = ()) -> str:
    fig, ax = _new_map(extent)
    colours = colormaps[cmap].with_extremes(bad="#d9d9d9")
    bxmin, bymin, bxmax, bymax = band_extent
    image = ax.imshow(np.ma.masked_invalid(band), extent=(bxmin, bxmax, bymin, bymax), origin="upper", cmap=colours,
                      vmin=vmin, vmax=vmax)
    if boundaries is not None and len(boundaries):
        boundaries.boundary.plot(ax=ax, color="#555555", linewidth=0.9)
    _draw_labels(ax, labels)
    _frame(ax, extent)
    fig.colorbar(image, ax=ax, label=label, shrink=0.85, extend=extend)
    ax.set_title(title)
    return png_uri(fig)


@figure_fonts
def choropleth(table: gpd.GeoDataFrame, column: str, extent: tuple[float, float, float, float], *,
               title: str, label: str, vmax: float, labels: Sequence[tuple[float, float, str]] = ()) -> str:
    fig, ax = _new_map(extent)
    norm = Normalize(vmin=0.0, vmax=vmax)
    edge = 0.3 if len(table) <= 2000 else 0.0
    table.plot(column=column, ax=ax, cmap="YlGn", norm=norm, edgecolor="#666666", linewidth=edge,
               missing_kwds={"color": "#d9d9d9", "hatch": "///", "edgecolor": "#999999", "linewidth": edge})
    _draw_labels(ax, labels)
    _frame(ax, extent)
    fig.colorbar(ScalarMappable(norm=norm, cmap="YlGn"), ax=ax, label=label, shrink=0.85)
    ax.set_title(title)
    return png_uri(fig)


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


@figure_fonts
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
    return png_uri(fig)


@figure_fonts
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
    return png_uri(fig)


TARGET_STATUS_COLOURS = {"met": "#4daf4a", "missed": "#e41a1c", "no data": "#bdbdbd", "no target": "#ffffff"}
"""The colour of a zone's target status (:func:`greensink.report.tables.zone_target_status`) on every map."""
TARGET_STATUS_LABELS = {"met": ("全部达标", "all targets met"), "missed": ("有未达标", "a target missed"),
                        "no data": ("无数据", "no data"), "no target": ("无目标", "no target")}


@figure_fonts
def target_status_map(table: gpd.GeoDataFrame, status: Sequence[str], extent: tuple[float, float, float, float], *,
                      title: str, labels: Sequence[tuple[float, float, str]] = ()) -> str:
    """Zones filled by their target status (``status`` one of :data:`TARGET_STATUS_COLOURS` per zone of ``table``),
    with a legend of the statuses present and how many zones each has."""
    from matplotlib.patches import Patch

    fig, ax = _new_map(extent)
    status = [str(s) for s in status]
    colours = [TARGET_STATUS_COLOURS.get(s, "#ffffff") for s in status]
    edge = 0.3 if len(table) <= 2000 else 0.0
    table.plot(ax=ax, color=colours, edgecolor="#666666", linewidth=max(edge, 0.05))
    _draw_labels(ax, labels)
    _frame(ax, extent)
    handles = [Patch(facecolor=c, edgecolor="#666666",
                     label=f"{bilingual(*TARGET_STATUS_LABELS[s])} ({status.count(s):,})")
               for s, c in TARGET_STATUS_COLOURS.items() if s in status]
    ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.85)
    ax.set_title(title)
    return png_uri(fig)
