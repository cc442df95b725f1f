"""Report interactive map: the zones of every level over the last year's carbon map, as inline SVG.

No map library and no network: the carbon raster is an inline PNG ``<image>`` in an ``<svg>``, each level
a group of ``<path>`` elements (one per zone, simplified to about one screen pixel and written in whole
units of a 2000-unit frame with relative coordinates), and a small script of the template (``report.html.j2``,
``#webmap``) switches levels, zooms and pans (Pointer Events: mouse drag and Ctrl + wheel; on a touch screen one
finger pans, two pinch-zoom, ``touch-action: none`` on the map alone), and shows a clicked or tapped zone's
indicators in a panel. The
indicators are the zone tables' values formatted as the tables format them (:mod:`greensink.report.text`),
carried in a JSON block (``<script type="application/json">``, every ``<``, ``>`` and ``&`` escaped by
Jinja2's ``tojson``), which the script reads and writes with ``textContent`` only: zone names are never
parsed as HTML.

:func:`webmap_section` builds the template's context from the last year's zone tables, its carbon band and
the evaluated targets.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from io import BytesIO
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from matplotlib import colormaps
from matplotlib.colors import Normalize, to_hex
from matplotlib.image import imsave

from greensink.report.maps import TARGET_STATUS_COLOURS, downsample, zone_labels
from greensink.report.tables import zone_target_status
from greensink.report.text import (
    DASH,
    OPS,
    STATUS,
    auto_decimals,
    column,
    format_interval,
    format_number,
    indicator_decimals,
    level_label,
    text_or_dash,
    to_float,
)

FRAME_UNITS = 2000  # the longer side of the extent in SVG units; coordinates are whole units
IMAGE_MAX_PX = 500  # the carbon raster's longer side in the inline PNG
MAX_ZONES = 5000  # a level with more zones is left out of the interactive map (the report says so)
LABEL_FONT_UNITS = 34  # zone-name labels, in SVG units (about 12 px when the map is 700 px wide)


def _transform(extent: tuple[float, float, float, float]) -> tuple[float, float, float, float, float]:
    """(scale in metres per unit, xmin, ymax, width units, height units) of the SVG frame of ``extent``."""
    xmin, ymin, xmax, ymax = extent
    scale = max(xmax - xmin, ymax - ymin) / FRAME_UNITS
    return scale, xmin, ymax, math.ceil((xmax - xmin) / scale), math.ceil((ymax - ymin) / scale)


def _ring_path(coords: np.ndarray) -> str:
    """One closed ring as "M x y l dx dy … z" in whole units; repeated points after rounding dropped."""
    pts = np.rint(coords[:, :2]).astype(np.int64)
    if len(pts) > 1 and (pts[0] == pts[-1]).all():
        pts = pts[:-1]
    keep = np.ones(len(pts), dtype=bool)
    keep[1:] = (np.diff(pts, axis=0) != 0).any(axis=1)
    pts = pts[keep]
    if len(pts) < 3:
        return ""
    d = np.diff(pts, axis=0)
    return f"M{pts[0, 0]} {pts[0, 1]}l" + " ".join(f"{dx} {dy}" for dx, dy in d) + "z"


def svg_path(geom: Any, extent: tuple[float, float, float, float]) -> str:
    """The SVG path data of a (multi)polygon in the frame of ``extent``: x right from xmin, y down from ymax,
    in units of :data:`FRAME_UNITS` over the longer side, simplified to one unit (holes kept, even-odd)."""
    if geom is None or geom.is_empty:
        return ""
    scale, xmin, ymax, _, _ = _transform(extent)
    simple = shapely.simplify(geom, scale, preserve_topology=True)
    parts = []
    polys = getattr(simple, "geoms", [simple])
    for poly in polys:
        if poly.geom_type != "Polygon" or poly.is_empty:
            continue
        for ring in (poly.exterior, *poly.interiors):
            xy = np.asarray(ring.coords)
            local = np.column_stack([(xy[:, 0] - xmin) / scale, (ymax - xy[:, 1]) / scale])
            parts.append(_ring_path(local))
    return "".join(parts)


def carbon_image(band: np.ndarray, extent: tuple[float, float, float, float], *, vmax: float,
                 cmap: str = "YlGn", max_px: int = IMAGE_MAX_PX) -> tuple[str, tuple[float, float, float, float]]:
    """The carbon band as a PNG data URI (block mean to ``max_px``, colours as the report's carbon maps:
    ``cmap`` from 0 to ``vmax``, no data grey) and the extent it covers."""
    shown, shown_extent = downsample(np.asarray(band), extent, max_px=max_px)
    colours = colormaps[cmap].with_extremes(bad="#d9d9d9", over=colormaps[cmap](1.0))
    rgba = colours(Normalize(0.0, vmax)(np.ma.masked_invalid(shown)), bytes=True)
    buf = BytesIO()
    imsave(buf, np.ascontiguousarray(rgba[..., :3]), format="png", metadata={"Software": None},
           pil_kwargs={"optimize": True})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii"), shown_extent


def _target_cells(targets: pd.DataFrame | None, level: str) -> dict[str, list[list[str]]]:
    """zone id -> [[status, indicator label, value, "≥ target", gap], ...] of the level's targets, as the
    target tables show them."""
    if targets is None or len(targets) == 0 or not {"status", "level", "zone_id"} <= set(targets.columns):
        return {}
    out: dict[str, list[list[str]]] = {}
    for r in targets[targets["level"].astype(str) == level].to_dict("records"):
        dec = indicator_decimals(str(r.get("indicator", "")))
        status = str(r.get("status"))
        out.setdefault(str(r.get("zone_id")), []).append([
            status, text_or_dash(r.get("label", r.get("indicator"))), format_number(r.get("value"), dec),
            f"{OPS.get(str(r.get('op')), text_or_dash(r.get('op')))} {format_number(r.get('target'), dec)}",
            format_number(r.get("gap"), dec, sign=True)])
    return out


def zone_record(r: Mapping[str, Any], targets: Sequence[Sequence[str]] = ()) -> list[Any]:
    """A zone's indicators as the panel shows them, formatted as in the zone tables
    (:func:`greensink.report.tables.zone_row`): [name, zone id, carbon (t C), interval, density (t C/ha),
    green coverage %, green-space ratio %, canopy cover %, U %, targets]."""
    carbon = to_float(r.get("carbon_t"))
    dec = auto_decimals(carbon) if math.isfinite(carbon) else None
    return [text_or_dash(r.get("name")), text_or_dash(r.get("zone_id")), format_number(carbon),
            format_interval(r.get("carbon_t_lo"), r.get("carbon_t_hi"), dec), format_number(r.get("carbon_t_ha"), 2),
            format_number(r.get("green_coverage_pct"), 1), format_number(r.get("green_space_ratio_pct"), 1),
            format_number(r.get("canopy_cover_pct"), 1), format_number(r.get("carbon_u_pct"), 1),
            [list(t) for t in targets]]


def webmap_section(tables: Mapping[str, gpd.GeoDataFrame], band: np.ndarray | None,
                   extent: tuple[float, float, float, float], levels: Sequence[str], *, year: int,
                   targets: pd.DataFrame | None, density_max: float, interval: str) -> dict[str, Any] | None:
    """The interactive map's context: ``tables[level]`` the zone tables of ``year`` (the last), ``band`` its
    carbon estimate (t C/ha) on ``extent``, ``targets`` the evaluated targets (of that year). Each level with
    1 to :data:`MAX_ZONES` zones is a layer; a larger one is named in ``left_out``. None when no level has zones."""
    scale, xmin, ymax, width, height = _transform(extent)
    image = None
    if band is not None:
        src, (bx0, by0, bx1, by1) = carbon_image(band, extent, vmax=density_max)
        image = {"src": src, "x": round((bx0 - xmin) / scale, 2), "y": round((ymax - by1) / scale, 2),
                 "width": round((bx1 - bx0) / scale, 2), "height": round((by1 - by0) / scale, 2)}
    norm = Normalize(0.0, density_max)
    cmap = colormaps["YlGn"]
    layers, data, left_out = [], {}, []
    for level in levels:
        df = tables.get(level)
        if df is None or not len(df):
            continue
        if len(df) > MAX_ZONES:
            left_out.append({"level": level_label(level), "n": f"{len(df):,}"})
            continue
        ids = [str(z) for z in df["zone_id"]]
        status = zone_target_status(targets, level, ids)
        target_cells = _target_cells(targets, level)
        density = column(df, "carbon_t_ha")
        fills = [to_hex(cmap(norm(v))) if math.isfinite(v) else "#d9d9d9" for v in density]
        paths = [{"d": svg_path(g, extent), "k": k} for k, g in enumerate(df.geometry)]
        labels = [{"x": round((x - xmin) / scale), "y": round((ymax - y) / scale), "text": t}
                  for x, y, t in zone_labels(df)]
        layers.append({"level": level, "label": level_label(level), "n": f"{len(df):,}", "paths": paths,
                       "labels": labels})
        data[level] = {
            "label": level_label(level),
            "zones": [zone_record(r, target_cells.get(z, ())) for r, z in zip(df.to_dict("records"), ids, strict=True)],
            "status": status, "fill": fills,
        }
    if not layers:
        return None
    default = layers[1]["level"] if len(layers) > 1 else layers[0]["level"]
    return {
        "year": year, "width": width, "height": height, "image": image, "layers": layers, "default": default,
        "left_out": left_out, "font": LABEL_FONT_UNITS, "stroke": round(FRAME_UNITS / 1000, 2),
        "data": {"levels": data, "interval": interval, "dash": DASH,
                 "status_colours": dict(TARGET_STATUS_COLOURS),
                 "status_labels": {s: f"{sym} {label}".strip() for s, (_, sym, label) in STATUS.items()}},
        "density_max": format_number(density_max, 1),
    }
