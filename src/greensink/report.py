"""Report: the planner's self-contained HTML report, Chinese and English side by side.

:func:`render_report` turns the products of a run (zone tables per year and level, change
tables per pair of years, the target evaluation, the fitted carbon models and the provenance)
into one HTML string. CSS is inline, every figure is an inline base64 PNG, there is no script
and no network resource, so ``results/report.html`` opens offline and prints on A4.

Every text that comes from input data (zone names and ids, model reasons, paths) goes through
Jinja2 autoescaping; nothing here marks input text as safe.

Numbers are formatted for reading, not for re-use (the GeoPackage/CSV tables are for that):
thousands separators, 1 decimal for percentages and m² per person, 2 for densities (t C/ha),
a true minus sign, and "—" for a missing value (NaN), never 0. Levels with more than
:data:`MAX_ROWS` zones (typically parcels) show the :data:`SHOW_EACH_END` highest and lowest
zones and point to the full table.

Figures use matplotlib's object-oriented API (a :class:`~matplotlib.figure.Figure` saved through
the Agg canvas, no pyplot, so no global state and nothing left open). Their labels are English
only, because matplotlib's default fonts have no Chinese glyphs; the Chinese is in the HTML
captions. Maps of the same quantity share one colour scale across years so they can be compared.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from io import BytesIO
from pathlib import Path
from typing import Any

import geopandas as gpd
import jinja2
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from greensink.change import SINK_CLASSES, sink_classes
from greensink.tiers import TIER_NAMES, TIER_NAMES_ZH
from greensink.uncertainty import SOURCES as VARIANCE_SOURCES
from greensink.units import CO2_PER_C

__all__ = ["MAX_ROWS", "SHOW_EACH_END", "TEMPLATE_NAME", "calibration_label", "dominant_source_text", "format_interval",
           "format_number", "formula", "interval_label", "largest_losses", "load_calibration", "predictor_label",
           "read_calibration", "render_report", "rivals_text", "sink_class_of", "type_predictors", "u_pct_summary",
           "variance_breakdown", "zone_headers"]

TEMPLATE_NAME = "report.html.j2"
MAX_ROWS = 60  # a level with more zones than this is shown as its top and bottom zones only
SHOW_EACH_END = 20  # zones shown at each end of a truncated level
INTERVAL_PCT = 90.0  # default width of the bootstrap intervals (carbon.interval_pct); render_report takes the configured one

DASH = "—"  # a missing value; never shown as 0
MINUS = "−"  # U+2212, so negative numbers do not read as dashes
FIG_SIZE_IN = (7.0, 6.0)
DPI = 100
MAP_MAX_PX = 800  # longest side of a raster as drawn; larger rasters are block-averaged first
MAX_FLAGS = 100  # plausibility flags listed per year and level

LEVEL_NAMES_ZH = {"city": "市域", "district": "城区", "block": "街区", "parcel": "地块"}
OPS = {">=": "≥", ">": ">", "<=": "≤", "<": "<"}
STATUS = {  # status -> (css class, symbol, label)
    "met": ("met", "✓", "达标 met"),
    "missed": ("missed", "✗", "未达标 missed"),
    "no data": ("nodata", DASH, "无数据 no data"),
}
SOURCES = {"plots": "样地回归 field plots", "coefficients": "系数表 coefficient table"}



def interval_label(interval_pct: float) -> str:
    """The width of an interval as shown, "90 %" or "97.5 %" (carbon.interval_pct)."""
    v = float(interval_pct)
    if not 0 < v < 100:
        raise ValueError(f"interval_pct must be a number between 0 and 100 (exclusive). Got {interval_pct!r} instead.")
    return f"{v:g} %"


def zone_headers(interval_pct: float = INTERVAL_PCT) -> tuple[str, ...]:
    """Column headers of the zone tables, the interval column labelled with its width."""
    return (
        "名称 Name", "编号 Zone ID", "面积 Area (ha)", "绿化覆盖率 Green coverage (%)", "绿地率 Green-space ratio (%)",
        "树冠覆盖率 Canopy cover (%)", "碳储量 Carbon (t C)", f"{interval_label(interval_pct)} 区间 interval (t C)",
        "不确定度 U (%)", "保守下限 Conservative (t C)", "碳密度 Density (t C/ha)", "二氧化碳当量 CO₂e (t)", "人均公园绿地 Park (m²/person)", "乔灌木占比 Tree + shrub (%)",
        "公园服务覆盖 Park service (% people)", "已观测 Observed (% typed land)", "填补 Filled (t C)", "层级 Tier",
    )


ZONE_HEADERS = zone_headers()  # with the default 90 % interval


# ---------------------------------------------------------------------------------------------
# Numbers and text


def format_number(value: Any, decimals: int | None = None, *, sign: bool = False) -> str:
    """``value`` for reading: thousands separators, "−" for negatives, "—" for None/NaN/inf.

    ``decimals`` None chooses by magnitude: 0 from 100 up, 1 from 10, else 2. ``sign`` adds "+"
    to positive values (for gaps and changes). A value that rounds to zero has no sign."""
    if _missing(value):
        return DASH
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return DASH
    if decimals is None:
        decimals = _auto_decimals(v)
    text = f"{abs(v):,.{decimals}f}"
    if float(text.replace(",", "")) == 0:
        return text
    if v < 0:
        return MINUS + text
    return "+" + text if sign else text


def format_interval(lo: Any, hi: Any, decimals: int | None = None) -> str:
    """"lo – hi" with :func:`format_number`; "—" if either end is missing."""
    a, b = format_number(lo, decimals), format_number(hi, decimals)
    return DASH if DASH in (a, b) else f"{a} – {b}"


PREDICTOR_LABELS = {"ndvi": "NDVI", "fvc": "FVC", "canopy": "canopy", "height": "height"}
"""How a predictor of results/{year}/model/models.json is written in equations; others as named."""
PREDICTOR_UNITS = {"fvc": "0–1", "canopy": "0–1", "height": "m"}
"""Units shown after a predictor in the model table's predictors column (NDVI has none)."""
PARAMETRIC_FORMS = ("linear", "logarithmic", "power", "exponential")
MAX_PARAMS_SHOWN = 8  # an unknown form lists this many parameters, then says how many more


def predictor_label(name: str, *, unit: bool = False) -> str:
    """A predictor as shown: "NDVI", "height", or with ``unit`` "height (m)"; an unknown name as given."""
    text = PREDICTOR_LABELS.get(str(name).lower(), str(name))
    return f"{text} ({PREDICTOR_UNITS[str(name).lower()]})" if unit and str(name).lower() in PREDICTOR_UNITS else text


def type_predictors(type_model: Mapping[str, Any]) -> list[str]:
    """The predictors of one type model of models.json; ["ndvi"] when absent (files written before the key)."""
    preds = type_model.get("predictors")
    if isinstance(preds, str):
        preds = [preds]
    return [str(q) for q in preds] if preds else ["ndvi"]


def formula(form: str, params: Mapping[str, Any], x: str | Sequence[str] = "NDVI") -> str:
    """The fitted model as a readable equation of carbon density C (t C/ha), parameters to 4 digits.

    ``x`` is the predictor (a label such as "NDVI") or the list of predictor names of the model
    (``predictors`` of models.json). One predictor: parameters a, b; several: a and b_<predictor>
    each (C = a + b_ndvi × NDVI + b_height × height, ...). A form this function does not know, or a
    known form with other parameter names, is written as its name and its parameters, name = value."""
    names = [x] if isinstance(x, str) else [str(q) for q in x] or ["ndvi"]
    xs = [predictor_label(q) for q in names]
    p = {str(k): v for k, v in (params or {}).items()}

    def g(v: Any) -> str:
        f = _float(v)
        if math.isfinite(f):
            return f"{f:.4g}".replace("-", MINUS)
        return DASH if _missing(v) else str(v)[:40]

    def plus(v: float) -> str:
        return f"{MINUS if v < 0 else '+'} {g(abs(v))}"

    b_names = ["b"] if len(names) == 1 else [f"b_{q}" for q in names]
    if form in PARAMETRIC_FORMS and set(p) == {"a", *b_names}:
        a, bs = _float(p["a"]), [_float(p[k]) for k in b_names]
        if form == "linear":
            return f"C = {g(a)} " + " ".join(f"{plus(b)} × {xl}" for b, xl in zip(bs, xs, strict=True))
        if form == "logarithmic":
            return f"C = {g(a)} " + " ".join(f"{plus(b)} × ln({xl})" for b, xl in zip(bs, xs, strict=True))
        if form == "power":
            return f"C = {g(a)} × " + " × ".join(f"{xl}^{g(b)}" for b, xl in zip(bs, xs, strict=True))
        terms = [f"{g(bs[0])} × {xs[0]}", *(f"{plus(b)} × {xl}" for b, xl in zip(bs[1:], xs[1:], strict=True))]
        return f"C = {g(a)} × exp({' '.join(terms)})"
    if form == "constant" and set(p) == {"c"}:
        return f"C = {g(p['c'])} (t C/ha, {' + '.join(xs)} not used)"
    if form == "ensemble":
        return f"gradient-boosted trees (lookup over {' + '.join(xs)})"
    shown = ", ".join(f"{k} = {g(v)}" for k, v in list(p.items())[:MAX_PARAMS_SHOWN])
    more = f", … ({len(p)} parameters)" if len(p) > MAX_PARAMS_SHOWN else ""
    return f"{form}: {shown}{more}" if p else f"{form} (no parameters)"


def _auto_decimals(v: float) -> int:
    a = abs(v)
    return 0 if a >= 100 else 1 if a >= 10 else 2


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _missing(v: Any) -> bool:
    """None, NaN, NaT or pd.NA (a scalar whose value is not there)."""
    return v is None or (pd.api.types.is_scalar(v) and bool(pd.isna(v)))


def _text(v: Any) -> str:
    return DASH if _missing(v) else str(v)


def _level_label(level: str) -> str:
    zh = LEVEL_NAMES_ZH.get(level)
    return f"{zh} {level}" if zh else level


def _indicator_decimals(indicator: str) -> int | None:
    if indicator.endswith(("_pct", "_m2")):
        return 1
    if indicator.endswith(("_t_ha", "_t_ha_yr")):
        return 2
    return None


def _cell(text: str, cls: str = "", title: str = "") -> dict[str, str]:
    return {"text": text, "cls": cls, "title": title}


def _num(value: Any, decimals: int | None = None, *, sign: bool = False) -> dict[str, str]:
    text = format_number(value, decimals, sign=sign)
    return _cell(text, "num nodata" if text == DASH else "num")


def _col(df: pd.DataFrame, name: str) -> np.ndarray:
    """A numeric column as float, all NaN when the column is absent."""
    if name not in df.columns:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)


# ---------------------------------------------------------------------------------------------
# Figures


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


def _downsample(band: np.ndarray, extent: tuple[float, float, float, float], max_px: int = MAP_MAX_PX,
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


def _raster_map(band: np.ndarray, band_extent: tuple[float, float, float, float],
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


def _choropleth(table: gpd.GeoDataFrame, column: str, extent: tuple[float, float, float, float], *,
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


def _upper(values: Iterable[np.ndarray], q: float) -> float:
    """The q-th percentile of the finite values of all arrays, or 1 when there are none or it is 0."""
    finite = [v[np.isfinite(v)] for v in (np.asarray(a).ravel() for a in values)]
    finite = [f for f in finite if f.size]
    if not finite:
        return 1.0
    top = float(np.percentile(np.concatenate(finite), q))
    return top if top > 0 else 1.0


# ---------------------------------------------------------------------------------------------
# Tables


def _ranked(df: pd.DataFrame, key: str) -> tuple[pd.DataFrame, pd.DataFrame | None, int]:
    """(rows to show first, rows after a gap or None, number of rows hidden)."""
    if len(df) <= MAX_ROWS:
        return df, None, 0
    values = _col(df, key)
    order = np.argsort(-np.where(np.isfinite(values), values, -np.inf), kind="stable")
    finite = order[np.isfinite(values[order])]
    top = finite[:SHOW_EACH_END]
    bottom = np.setdiff1d(finite[::-1][:SHOW_EACH_END], top)  # the lowest, ascending index order
    bottom = bottom[np.argsort(-values[bottom], kind="stable")]  # listed from higher to lowest
    shown = len(top) + len(bottom)
    return df.iloc[top], df.iloc[bottom], len(df) - shown


def _zone_row(r: pd.Series) -> dict[str, Any]:
    flag = str(r.get("plausibility_flag") or "")
    flag = "" if flag == "nan" else flag
    name = _text(r.get("name"))
    carbon = _float(r.get("carbon_t"))
    dec = _auto_decimals(carbon) if math.isfinite(carbon) else None
    conservative = r.get("carbon_t_conservative", r.get("carbon_t_lo"))  # = carbon_t_lo (docs/outputs.md)
    cells = [
        _cell(name + (" ⚠" if flag else ""), "name flagged" if flag else "name", flag),
        _cell(_text(r.get("zone_id")), "id"),
        _num(r.get("area_ha")),
        _num(r.get("green_coverage_pct"), 1),
        _num(r.get("green_space_ratio_pct"), 1),
        _num(r.get("canopy_cover_pct"), 1),
        _num(carbon),
        _cell(format_interval(r.get("carbon_t_lo"), r.get("carbon_t_hi"), dec), "num interval"),
        _num(r.get("carbon_u_pct"), 1),
        _num(conservative, dec),
        _num(r.get("carbon_t_ha"), 2),
        _num(r.get("co2e_t")),
        _num(r.get("park_area_per_capita_m2"), 1),
        _num(r.get("tree_shrub_share_pct"), 1),
        _num(r.get("park_service_population_pct"), 1),
        _num(r.get("carbon_observed_pct"), 1),
        _num(r.get("carbon_t_filled")),
        _cell(_tier_cell(r.get("carbon_tier")), "tier"),
    ]
    return {"cells": cells, "cls": "flagged" if flag else ""}


def _tier_cell(value: Any) -> str:
    """"T3", "T2+T3" (the zone's carbon_tier) as shown; "—" when missing or the zone has no typed land."""
    text = "" if _missing(value) else str(value).strip()
    return text if text and text != "nan" else DASH


def tiers_summary(tables: Iterable[pd.DataFrame]) -> str:
    """The tiers that produced the carbon of these zone tables, in words (Chinese and English)."""
    tiers: set[int] = set()
    for df in tables:
        for v in (df["carbon_tier"] if "carbon_tier" in df.columns else []):
            if isinstance(v, str) and v.strip():
                tiers.update(int(x.strip()[1:]) for x in v.split("+") if x.strip()[1:].isdigit())
    if not tiers:
        return DASH
    return "; ".join(f"{TIER_NAMES_ZH[t]} {TIER_NAMES[t]}" for t in sorted(tiers))


NESTING_TOLERANCE_HA = 0.01


def _nesting(nesting: pd.DataFrame | None) -> list[dict[str, Any]]:
    """One row per level and its parent level: how far the level is from tiling its parents."""
    rows = []
    if nesting is None or nesting.empty:
        return rows
    for r in nesting.to_dict("records"):
        off = [float(r.get(k, 0) or 0) for k in ("outside_parents_ha", "parent_gaps_ha", "overlap_ha")]
        straddle = int(r.get("straddling_zones", 0) or 0)
        tiles = r.get("tiles_parents")  # nesting.csv states its own tolerance (greensink.zones); older tables do not
        exact = bool(tiles) if tiles is not None and not _missing(tiles) else (
            all(v <= NESTING_TOLERANCE_HA for v in off) and straddle == 0)
        rows.append({
            "level": _level_label(str(r["level"])), "parent": _level_label(str(r["parent_level"])),
            "zones": format_number(r.get("zones"), 0), "outside": format_number(off[0], 2),
            "gaps": format_number(off[1], 2), "overlap": format_number(off[2], 2),
            "straddling": format_number(straddle, 0), "ids": _text(r.get("straddling_ids", "")),
            "exact": exact,
            "verdict": ("完全嵌套，合计逐级相加 tiles its parents: sums add up exactly" if exact else
                        "未完全嵌套，逐级合计相差上述面积 does not tile its parents: sums differ by the areas shown"),
        })
    return rows


def _change_row(r: pd.Series) -> dict[str, Any]:
    """A zone of a change table. The row is red only for a significant loss (sink_class "loss"); a zone whose
    interval includes 0 reads "no significant change". Two "no net loss" checks: of carbon, from the sink's
    significance (no_net_carbon_loss), and of vegetated area (no_net_loss)."""
    change = _float(r.get("green_area_change_ha"))
    if not math.isfinite(change) or _missing(r.get("no_net_loss")):
        nnl = _cell(DASH, "center nodata")
    elif bool(r.get("no_net_loss")):
        nnl = _cell("✓", "center met", "绿量无净损失 no net loss of vegetated area")
    else:
        nnl = _cell("✗", "center missed", "绿量减少 vegetated area decreased")
    sink_class = sink_class_of(r)
    carbon_ok = no_net_carbon_loss_of(r)
    if carbon_ok is None:
        nncl = _cell(DASH, "center nodata")
    elif carbon_ok:
        nncl = _cell("✓", "center met", "无碳净损失：无显著损失 no net carbon loss: no significant loss")
    else:
        nncl = _cell("✗", "center missed", "显著碳损失：区间全部小于 0 significant carbon loss: the interval lies below 0")
    sink = _float(r.get("sink_t_yr"))
    dec = _auto_decimals(sink) if math.isfinite(sink) else None
    cells = [
        _cell(_text(r.get("name")), "name"),
        _cell(_text(r.get("zone_id")), "id"),
        _num(r.get("area_ha")),
        _num(r.get("carbon_t_from")),
        _num(r.get("carbon_t_to")),
        _num(sink, sign=True),
        _cell(format_interval(r.get("sink_t_yr_lo"), r.get("sink_t_yr_hi"), dec), "num interval"),
        _cell(SINK_CLASS_LABELS[sink_class], f"sinkclass {sink_class.replace(' ', '-')}"),
        _num(r.get("sink_u_pct"), 1),
        _num(r.get("sink_t_yr_conservative", r.get("sink_t_yr_lo")), dec, sign=True),
        _num(r.get("sink_t_ha_yr"), 2, sign=True),
        _num(r.get("sink_co2e_t_yr"), sign=True),
        nncl,
        _num(change, 2, sign=True),
        nnl,
    ]
    return {"cells": cells, "cls": "loss" if sink_class == "loss" else ""}


def _loss_row(r: pd.Series) -> dict[str, Any]:
    sink = _float(r.get("sink_t_yr"))
    dec = _auto_decimals(sink) if math.isfinite(sink) else None
    return {"cls": "loss", "cells": [
        _cell(_text(r.get("name")), "name"), _cell(_text(r.get("zone_id")), "id"), _num(sink, sign=True),
        _cell(format_interval(r.get("sink_t_yr_lo"), r.get("sink_t_yr_hi"), dec), "num interval"),
        _num(r.get("sink_u_pct"), 1), _num(r.get("sink_t_ha_yr"), 2, sign=True),
    ]}


def _losses(table_id: str, df: pd.DataFrame, interval: str) -> dict[str, Any]:
    """The largest significant losses of a level (only zones classed "loss") and the class counts."""
    classes = pd.Series(sink_class_list(df), dtype=object)
    counts = {c: int((classes == c).sum()) for c in SINK_CLASSES}
    shown = largest_losses(df)
    headers = ["名称 Name", "编号 Zone ID", "年碳汇 Sink (t C/yr)", f"{interval} 区间 interval (t C/yr)", "U (%)",
               "单位面积 Sink (t C/ha/yr)"]
    table = {"id": table_id, "headers": headers, "rows": [_loss_row(r) for _, r in shown.iterrows()], "note": None,
             "n": len(shown)}
    return {"table": table if len(shown) else None, "counts": counts, "shown": len(shown),
            "counts_text": class_counts_text(counts)}


def class_counts_text(counts: Mapping[str, int]) -> str:
    """"净吸收 gain 3 · 损失 loss 1 · 无显著变化 no significant change 36" (unknown only when there is one)."""
    return " · ".join(f"{SINK_CLASS_LABELS[c]} {counts.get(c, 0):,}" for c in SINK_CLASSES
                      if c != "unknown" or counts.get(c, 0))


def _table(table_id: str, headers: Sequence[str], df: pd.DataFrame, row_fn: Any, key: str,
           note_files: Sequence[str], what: tuple[str, str]) -> dict[str, Any]:
    """A level table; with more than MAX_ROWS zones only the top and bottom by ``key``, and a note."""
    first, second, hidden = _ranked(df, key)
    rows = [row_fn(r) for _, r in first.iterrows()]
    note = None
    if second is not None:
        rows.append({"gap": f"… {hidden:,} 个单元未列出 zones not shown …"})
        rows.extend(row_fn(r) for _, r in second.iterrows())
        note = {"n": f"{len(df):,}", "each": SHOW_EACH_END, "what_zh": what[0], "what_en": what[1],
                "files": list(note_files)}
    return {"id": table_id, "headers": list(headers), "rows": rows, "note": note, "n": len(df)}


def _type_codes(df: pd.DataFrame, type_names: Mapping[str, str]) -> list[str]:
    """Green-space types with both carbon_t_<T> and green_space_area_ha_<T> columns, type_names order first."""
    found = {c[len("carbon_t_"):] for c in df.columns if c.startswith("carbon_t_")}
    found &= {c[len("green_space_area_ha_"):] for c in df.columns if c.startswith("green_space_area_ha_")}
    return [t for t in type_names if t in found] + sorted(found - set(type_names))


def _type_table(year: int, df: pd.DataFrame, type_names: Mapping[str, str]) -> dict[str, Any]:
    total = float(np.nansum(_col(df, "carbon_t")))
    rows = []
    for code in _type_codes(df, type_names):
        c = float(np.nansum(_col(df, f"carbon_t_{code}")))
        area = float(np.nansum(_col(df, f"green_space_area_ha_{code}")))
        rows.append({"cls": "", "cells": [
            _cell(code, "id"), _cell(type_names.get(code, code), "name"), _num(c),
            _num(100.0 * c / total if total > 0 else math.nan, 1), _num(area),
            _num(c / area if area > 0 else math.nan, 2),
        ]})
    gs_area = float(np.nansum(_col(df, "green_space_area_ha")))
    rows.append({"cls": "total", "cells": [
        _cell("", "id"), _cell("合计 Total", "name"), _num(total), _num(100.0 if total > 0 else math.nan, 1),
        _num(gs_area), _num(total / gs_area if gs_area > 0 else math.nan, 2),
    ]})
    headers = ["代码 Code", "绿地类型 Green-space type", "碳储量 Carbon (t C)", "占比 Share (%)",
               "绿地面积 Green-space area (ha)", "单位绿地碳密度 t C/ha of green space"]
    return {"id": f"types-{year}", "headers": headers, "rows": rows, "note": None, "n": len(rows)}


def _target_tables(targets: pd.DataFrame | None, levels: Sequence[str], years: Sequence[int]) -> dict[str, Any]:
    if targets is None or len(targets) == 0 or "status" not in targets.columns:
        return {"tables": [], "counts": {"met": 0, "missed": 0, "no data": 0, "total": 0}, "year": None}
    status = targets["status"].astype(str)
    counts = {s: int((status == s).sum()) for s in STATUS}
    counts["total"] = len(targets)
    order = list(levels) + sorted(set(targets["level"].astype(str)) - set(levels))
    headers = ["指标 Indicator", "名称 Zone", "编号 Zone ID", "数值 Value", "目标 Target", "结果 Result",
               "差距 Gap (value − target)"]
    tables = []
    for level in order:
        sub = targets[targets["level"].astype(str) == level]
        if sub.empty:
            continue
        st = sub["status"].astype(str)
        level_counts = {s: int((st == s).sum()) for s in STATUS}
        shown, note = sub, None
        if len(sub) > MAX_ROWS:
            missed = sub[st == "missed"]
            rel = np.abs(_col(missed, "gap")) / np.maximum(np.abs(_col(missed, "target")), 1e-12)
            shown = missed.iloc[np.argsort(-rel, kind="stable")[: 2 * SHOW_EACH_END]]
            note = {"n": f"{len(sub):,}", "shown": len(shown)}
        rows = []
        for _, r in shown.iterrows():
            s = str(r["status"])
            cls, symbol, label = STATUS.get(s, ("", "", s))
            dec = _indicator_decimals(str(r.get("indicator", "")))
            rows.append({"cls": cls, "cells": [
                _cell(_text(r.get("label", r.get("indicator"))), "name"),
                _cell(_text(r.get("name")), "name"),
                _cell(_text(r.get("zone_id")), "id"),
                _num(r.get("value"), dec),
                _cell(f"{OPS.get(str(r.get('op')), _text(r.get('op')))} {format_number(r.get('target'), dec)}", "num"),
                _cell(f"{symbol} {label}", f"status {cls}"),
                _num(r.get("gap"), dec, sign=True),
            ]})
        tables.append({"level": _level_label(level), "counts": level_counts, "note": note,
                       "table": {"id": f"targets-{level}", "headers": headers, "rows": rows, "note": None,
                                 "n": len(rows)}})
    year = None
    if "year" in targets.columns:
        year = ", ".join(str(y) for y in sorted(set(targets["year"].tolist())))
    elif years:
        year = str(max(years))
    return {"tables": tables, "counts": counts, "year": year}


def rivals_text(type_model: Mapping[str, Any]) -> str:
    """The model table's rivals cell: the candidates within one standard error of the lowest CV error
    (models.json "rivals") with their largest difference from the chosen curve at the plots;
    "无 none" when the CV decided, the anchor year when the form was kept from it, a dash otherwise."""
    rivals = type_model.get("rivals")
    if isinstance(rivals, list):
        if not rivals:
            return "无 none"
        return "; ".join(f"{_text(r.get('form'))}"
                         + (f" [{'+'.join(map(str, r['predictors']))}]" if r.get("predictors") not in (None, ["ndvi"]) else "")
                         + f" (≤ {format_number(r.get('max_difference_pct'), 1)} %)" for r in rivals)
    selection = type_model.get("selection") or {}
    if selection.get("mode") == "first_year" and selection.get("anchor_year") is not None:
        return f"见 see {selection['anchor_year']}"
    return DASH


def _model_section(year: int, model: Mapping[str, Any], type_names: Mapping[str, str]) -> dict[str, Any]:
    listed = model.get("predictors") or str(model.get("predictor", "ndvi")).split("+")
    x = " + ".join(predictor_label(q, unit=True) for q in ([listed] if isinstance(listed, str) else listed))
    rows, warnings = [], []
    for code, tm in (model.get("types") or {}).items():
        cv = tm.get("cv") or {}
        source = str(tm.get("source", ""))
        name = type_names.get(code, code)
        fallback = source == "coefficients"
        preds = type_predictors(tm)
        params = tm.get("params") if isinstance(tm.get("params"), Mapping) else {}
        tier = tm.get("tier")
        source_text = SOURCES.get(source, source) + (f" · {TIER_NAMES_ZH.get(tier, '')} tier {tier}" if tier else "")
        rows.append({"cls": "fallback" if fallback else "", "cells": [
            _cell(str(code), "id"), _cell(name, "name"), _cell(source_text),
            _cell(_text(tm.get("form"))), _cell(" + ".join(predictor_label(q, unit=True) for q in preds), "predictors"),
            _cell(formula(str(tm.get("form")), params, preds), "formula"),
            _num(tm.get("n"), 0), _num(cv.get("r2"), 2), _num(cv.get("rmse_t_ha"), 2),
            _num(cv.get("bias_t_ha"), 2, sign=True), _num(cv.get("n_folds"), 0), _cell(rivals_text(tm), "rivals"),
        ]})
        if fallback:
            warnings.append({"code": str(code), "name": name, "reason": _text(tm.get("reason")),
                             "uncertainty": format_number(tm.get("uncertainty_pct"), 0),
                             "worse_than_mean": bool(tm.get("cv_worse_than_mean")), "kept": False})
        elif tm.get("cv_worse_than_mean"):  # kept (no table row): say so beside the table
            warnings.append({"code": str(code), "name": name, "kept": True,
                             "reason": "; ".join(_text(w) for w in (tm.get("warnings") or []))})
    headers = ["代码 Code", "绿地类型 Type", "来源 Source", "形式 Form", "预测变量 Predictors",
               "公式 Formula (C in t C/ha)", "样地数 n", "交叉验证 CV R²", "CV RMSE (t C/ha)", "CV 偏差 bias (t C/ha)", "折数 folds",
               "难以区分的形式 Rivals within 1 SE (max. difference)"]
    table = {"id": f"models-{year}", "headers": headers, "rows": rows, "note": None, "n": len(rows)}
    return {"year": year, "table": table, "warnings": warnings, "predictor": x,
            "notes": [_text(n) for n in (model.get("notes") or [])],
            "anchor_year": next((tm.get("selection", {}).get("anchor_year") for tm in (model.get("types") or {}).values()
                                 if isinstance(tm, Mapping) and (tm.get("selection") or {}).get("mode") == "first_year"), None),
            "n_bootstrap": model.get("n_bootstrap"), "min_plots": model.get("min_plots"),
            "plot_carbon": plot_carbon_text(model.get("plot_carbon"))}


def plot_carbon_text(record: Mapping[str, Any] | None) -> str | None:
    """One sentence (Chinese and English) on where the plots' carbon came from when a tree inventory gave it, else None."""
    if not isinstance(record, Mapping) or record.get("source") != "tree_inventory":
        return None
    e = record.get("errors") or {}
    allometric = ("allometric model error per tree (ln-scale sd 0.357 for Chave et al. 2014; Jenkins et al. 2003 group RMSE)"
                  if e.get("allometric") else "no allometric model error")
    return (f"样地碳密度由树木清查计算（{record.get('n_trees')} 株树，{record.get('equation')}），区间包含异速生长模型误差和胸径、树高测量误差。"
            f"Plot carbon was computed from a tree inventory ({record.get('n_trees')} trees in {record.get('n_measured')} "
            f"plot-years, {record.get('equation')}); every bootstrap draw refits the curves to the plots' carbon drawn with the "
            f"{allometric} and tree measurement error (DBH sd {format_number(e.get('dbh_sd_cm'), 4)} cm + "
            f"{format_number(e.get('dbh_sd_pct'), 2)} %, height sd {format_number(e.get('height_sd_pct'), 1)} %), paired across years, "
            "so the intervals include them.")


# ---------------------------------------------------------------------------------------------
# Uncertainty: U %, conservative bounds, variance shares, plots needed, sink classes, calibration


UNCERTAINTY_SOURCES: dict[str, tuple[str, str, str, str]] = {
    # source: (what, zh; what, en; action, zh; action, en) — docs/method.md §6 and docs/outputs.md
    "curve": ("模型曲线系数", "the fitted curves' coefficients",
              "增加样地最能缩小区间", "more field plots of the types concerned would narrow the intervals most"),
    "residual": ("样地残差（林分自身偏离曲线的变异）", "the plot residuals (the stands' own scatter about the curves)",
                 "在全区分散增加样地，但只能缓慢缩小区间（这是林分自身的变异，随分区增大而减小，而非随样地数减小）；"
                 "更好的预测变量（如冠层高度模型）可能缩小它",
                 "more plots spread over the area, though they narrow it only slowly (it is the stands' own "
                 "variation, which shrinks with the zone's size, not with the number of plots); a better "
                 "predictor such as a canopy height model may narrow it"),
    "ndvi": ("NDVI 合成误差（无云观测少）", "the NDVI composite error (few clear observations)",
             "更多无云影像最能缩小区间", "more clear imagery would narrow the intervals most"),
    "edges": ("绿地边界位置误差", "the position of green-space polygon edges",
              "更精确的绿地多边形最能缩小区间", "better green-space polygons would narrow the intervals most"),
    "table": ("系数表不确定性", "the coefficient table's uncertainty",
              "本地系数或本地样地最能缩小区间", "local coefficients or local field plots would narrow the intervals most"),
}
"""What each variance source is and what would narrow it, Chinese and English (keys: greensink.uncertainty.SOURCES)."""

SINK_CLASS_LABELS = {
    "gain": "净吸收 gain",
    "loss": "损失 loss",
    "no significant change": "无显著变化 no significant change",
    "unknown": "未知 unknown",
}
"""How each ``sink_class`` of the change tables (greensink.change.sink_classes) is shown."""
MAX_LOSSES = 10  # zones listed per level under "largest significant losses"
CALIBRATION_RESOURCE = "data/calibration.json"  # inside the greensink package (benchmarks/calibration.py's summary)
CALIBRATION_TOLERANCE = 0.05  # measured coverage further than this from nominal (0.85–0.95 for 90 %) is labelled


def u_pct_summary(values: Any) -> dict[str, str]:
    """Median and range (min – max) of U % values as shown (1 decimal), over the finite ones; "—" if none."""
    v = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=float)
    v = v[np.isfinite(v)]
    if not v.size:
        return {"median": DASH, "range": DASH, "n": "0"}
    return {"median": format_number(float(np.median(v)), 1), "range": format_interval(v.min(), v.max(), 1),
            "n": f"{v.size:,}"}


def variance_breakdown(df: pd.DataFrame | None) -> dict[str, float] | None:
    """Mean share (%) of each source's variance over the zones of a table (``var_share_<source>_pct``), the
    share in a typical zone of the level; None when the table has no variance shares."""
    if df is None:
        return None
    cols = {s: f"var_share_{s}_pct" for s in VARIANCE_SOURCES}
    if not any(c in df.columns for c in cols.values()):
        return None
    shares = np.column_stack([_col(df, c) for c in cols.values()])
    known = np.isfinite(shares).any(axis=1)
    if not known.any():
        return None
    means = np.nanmean(np.where(np.isfinite(shares[known]), shares[known], 0.0), axis=0)
    return dict(zip(VARIANCE_SOURCES, (float(m) for m in means), strict=True)) | {"_zones": float(known.sum())}


def dominant_source_text(level: str, breakdown: Mapping[str, float] | None, *, what: str = "stock") -> dict[str, Any]:
    """The source with the largest mean variance share at a level and what would narrow it, in one bilingual
    sentence: "在街区层面，样地残差…占碳储量方差的 71 %：… / At block level (on average over its 4 zones), 71 % of the
    variance comes from the plot residuals …: …". ``breakdown`` is :func:`variance_breakdown`'s; ``what`` is
    "stock" or "sink". Returns {"source", "share", "zh", "en"}; source None without a breakdown."""
    zh_level, en_level = LEVEL_NAMES_ZH.get(level, level), level
    zh_what, en_what = ("碳汇", "of the sink ") if what == "sink" else ("碳储量", "")
    shares = {s: v for s, v in (breakdown or {}).items() if s in UNCERTAINTY_SOURCES and math.isfinite(v)}
    if not shares or max(shares.values()) <= 0:
        return {"source": None, "share": DASH,
                "zh": f"{zh_level}层面{zh_what}的方差构成未记录。",
                "en": f"At {en_level} level the tables record no variance breakdown {en_what}(a run before greensink kept it)."}
    source = max(shares, key=lambda s: (shares[s], -VARIANCE_SOURCES.index(s)))
    zh_src, en_src, zh_act, en_act = UNCERTAINTY_SOURCES[source]
    share = format_number(shares[source], 0)
    n = int((breakdown or {}).get("_zones", 0))
    zones = f" (on average over its {n:,} zones)" if n > 1 else ""
    return {"source": source, "share": share,
            "zh": f"在{zh_level}层面，{zh_src}占{zh_what}方差的 {share} %：{zh_act}。",
            "en": f"At {en_level} level{zones}, {share} % of the variance {en_what}comes from {en_src}: {en_act}."}


def sink_class_of(r: Mapping[str, Any]) -> str:
    """A change-table row's ``sink_class``; derived from its interval (greensink.change.sink_classes) for
    tables written before the column existed. A zone whose interval includes 0 is never a loss."""
    cls = r.get("sink_class")
    if isinstance(cls, str) and cls in SINK_CLASSES:
        return cls
    return sink_classes(np.array([_float(r.get("sink_t_yr"))]), np.array([_float(r.get("sink_t_yr_lo"))]),
                        np.array([_float(r.get("sink_t_yr_hi"))]))[0]


def sink_class_list(df: pd.DataFrame) -> list[str]:
    """:func:`sink_class_of` for every row of a change table."""
    return [sink_class_of(r) for r in df.to_dict("records")]


def no_net_carbon_loss_of(r: Mapping[str, Any]) -> bool | None:
    """``no_net_carbon_loss`` of a change-table row (False only for a significant loss), None where unknown."""
    v = r.get("no_net_carbon_loss")
    if not _missing(v):
        return bool(v)
    cls = sink_class_of(r)
    return None if cls == "unknown" else cls != "loss"


def largest_losses(df: pd.DataFrame, n: int = MAX_LOSSES) -> pd.DataFrame:
    """The zones classed "loss" (interval wholly below 0), largest loss first, at most ``n``; never a zone
    whose interval includes 0."""
    classes = np.array(sink_class_list(df), dtype=object)
    losses = df[classes == "loss"]
    order = np.argsort(_col(losses, "sink_t_yr"), kind="stable")
    return losses.iloc[order[:n]]


def load_calibration() -> dict[str, Any] | None:
    """The calibration benchmark's latest measured coverage shipped with greensink (package data
    ``greensink/data/calibration.json``, the JSON summary of benchmarks/calibration.py), normalised by
    :func:`read_calibration`; None when greensink ships none."""
    resource = resources.files("greensink").joinpath(CALIBRATION_RESOURCE)
    if not resource.is_file():
        return None
    return read_calibration(json.loads(resource.read_text(encoding="utf-8")))


def read_calibration(data: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """{"date", "realisations", "nominal", "levels": {level: {"stock", "sink"}}} from benchmarks/calibration.py's
    JSON summary (``date_utc``, ``settings.realisations_done``, ``settings.nominal``, ``levels.<level>.
    stock_coverage`` / ``sink_coverage``) or from that shape itself. None when it holds no coverage."""
    if not isinstance(data, Mapping):
        return None
    settings = data.get("settings") if isinstance(data.get("settings"), Mapping) else {}
    n = data.get("realisations")
    if not isinstance(n, int | float) or isinstance(n, bool):
        n = settings.get("realisations_done", len(n) if isinstance(n, list) else None)
    nominal = _float(data.get("nominal", settings.get("nominal", 0.9)))
    levels = {}
    for level, rec in (data.get("levels") or {}).items():
        if isinstance(rec, Mapping):
            stock, sink = (_float(rec.get(k, rec.get(f"{k}_coverage"))) for k in ("stock", "sink"))
            if math.isfinite(stock) or math.isfinite(sink):
                levels[str(level)] = {"stock": stock, "sink": sink}
    if not levels:
        return None
    return {"date": _text(data.get("date", data.get("date_utc")))[:10], "realisations": n,
            "nominal": nominal if math.isfinite(nominal) else 0.9, "levels": levels}


def calibration_label(calibration: Mapping[str, Any] | None, level: str, what: str) -> str | None:
    """The label of a level's stock or sink intervals (``what``) where the benchmark's measured coverage is
    further than :data:`CALIBRATION_TOLERANCE` from nominal (outside 0.85–0.95 for 90 %), else None."""
    if not calibration:
        return None
    cov = _float(((calibration.get("levels") or {}).get(level) or {}).get(what))
    nominal = float(calibration.get("nominal", 0.9))
    if not math.isfinite(cov) or abs(cov - nominal) <= CALIBRATION_TOLERANCE + 1e-9:
        return None
    n = calibration.get("realisations")
    over = f"over {n} simulated cities" if n else "over simulated cities"
    over_zh = f"{n} 个模拟城市" if n else "模拟城市"
    kind_zh, kind_en = ("碳汇", "sink") if what == "sink" else ("碳储量", "stock")
    if cov < nominal:
        zh = "区间偏窄，实际不确定性大于所示"
        en = "treat these intervals as narrower than stated: the true uncertainty is larger"
    else:
        zh = "区间偏宽（保守）"
        en = "these intervals are wider than stated (conservative)"
    return (f"⚠ {LEVEL_NAMES_ZH.get(level, level)}{kind_zh}区间实测覆盖率 {cov:.2f}（名义 {nominal:.2f}，{over_zh}）：{zh}。"
            f" {level.capitalize()} {kind_en} intervals: measured coverage {cov:.2f} of nominal {nominal:.2f} {over} "
            f"(benchmarks/calibration.py, {calibration.get('date') or DASH}): {en}.")


# ---------------------------------------------------------------------------------------------
# Summary and provenance


SINK_VERDICTS = {
    "unknown": "无数据 no data",
    "no significant change": "无显著变化：区间包含零，与无变化难以区分 no significant change: the interval includes zero",
    "gain": "净吸收 net uptake: the green space took up carbon (the interval lies above zero)",
    "loss": "净损失 net loss: the green space lost carbon (the interval lies below zero)",
}


def _summary(years: Sequence[int], tables: Mapping[int, Mapping[str, pd.DataFrame]],
             change: Mapping[tuple[int, int], Mapping[str, pd.DataFrame]], city: str,
             levels: Sequence[str] = ()) -> dict[str, Any]:
    stocks = []
    for year in years:
        df = tables.get(year, {}).get(city)
        if df is None:
            continue
        for key, r in df.iterrows():
            c = _float(r.get("carbon_t"))
            dec = _auto_decimals(c) if math.isfinite(c) else None
            co2 = _float(r.get("co2e_t"))
            dec2 = _auto_decimals(co2) if math.isfinite(co2) else None
            stocks.append({
                "year": year, "name": _text(r.get("name")),
                "carbon": format_number(c), "carbon_iv": format_interval(r.get("carbon_t_lo"), r.get("carbon_t_hi"), dec),
                "co2e": format_number(co2), "co2e_iv": format_interval(r.get("co2e_t_lo"), r.get("co2e_t_hi"), dec2),
                "density": format_number(r.get("carbon_t_ha"), 2),
                "tier": tiers_summary([df.loc[[key]]]),
                "filled": format_number(r.get("carbon_t_filled")),
                "observed": format_number(r.get("carbon_observed_pct"), 1),
                "coverage": format_number(r.get("green_coverage_pct"), 1),
                "ratio": format_number(r.get("green_space_ratio_pct"), 1),
                "canopy": format_number(r.get("canopy_cover_pct"), 1),
                "per_capita": format_number(r.get("park_area_per_capita_m2"), 1),
            })
    sinks = []
    for (y0, y1) in sorted(change):
        df = change[(y0, y1)].get(city)
        if df is None:
            continue
        for _, r in df.iterrows():
            s, lo, hi = _float(r.get("sink_t_yr")), _float(r.get("sink_t_yr_lo")), _float(r.get("sink_t_yr_hi"))
            dec = _auto_decimals(s) if math.isfinite(s) else None
            verdict = SINK_VERDICTS[sink_class_of(r)]
            sinks.append({
                "pair": f"{y0}–{y1}", "name": _text(r.get("name")),
                "sink": format_number(s, dec, sign=True), "sink_iv": format_interval(lo, hi, dec),
                "co2e": format_number(s * CO2_PER_C, sign=True),
                "co2e_iv": format_interval(lo * CO2_PER_C, hi * CO2_PER_C,
                                           _auto_decimals(s * CO2_PER_C) if math.isfinite(s) else None),
                "density": format_number(r.get("sink_t_ha_yr"), 2, sign=True),
                "conservative": format_number(r.get("sink_t_yr_conservative", lo), dec, sign=True),
                "u_pct": format_number(r.get("sink_u_pct"), 1),
                "verdict": verdict,
            })
    checks = []  # per pair and level: sink classes and the no-net-carbon-loss check from the significance
    for (y0, y1) in sorted(change):
        for level in levels:
            df = change[(y0, y1)].get(level)
            if df is None or not len(df):
                continue
            ok = [no_net_carbon_loss_of(r) for r in df.to_dict("records")]
            known = [v for v in ok if v is not None]
            checks.append({"pair": f"{y0}–{y1}", "level": _level_label(level),
                           "classes": class_counts_text({c: n for c, n in
                                                         pd.Series(sink_class_list(df)).value_counts().items()}),
                           "met": f"{sum(known):,}", "known": f"{len(known):,}", "missed": f"{len(known) - sum(known):,}"})
    return {"stocks": stocks, "sinks": sinks, "checks": checks}


def _provenance(provenance: Mapping[str, Any]) -> dict[str, Any]:
    prov = dict(provenance or {})
    packages = prov.pop("packages", None) or {}
    inputs = prov.pop("inputs", None) or []
    items = []
    for key, label in (("greensink_version", "greensink 版本 version"), ("config_sha256", "配置 config SHA-256")):
        if key in prov:
            items.append({"key": label, "value": _text(prov.pop(key))})
    for key in sorted(prov):
        value = prov[key]
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
        items.append({"key": str(key), "value": text if len(text) <= 400 else text[:400] + " …"})
    files = []
    for entry in inputs:
        if isinstance(entry, Mapping):
            files.append({"path": _text(entry.get("path")), "sha256": _text(entry.get("sha256"))})
        else:
            files.append({"path": _text(entry), "sha256": DASH})
    pkgs = [{"name": str(k), "version": _text(v)} for k, v in sorted(packages.items())] \
        if isinstance(packages, Mapping) else []
    return {"entries": items, "packages": pkgs, "inputs": files}


def _flags(years: Sequence[int], tables: Mapping[int, Mapping[str, pd.DataFrame]],
           levels: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    """Zones with a plausibility flag, at most MAX_FLAGS per year and level, and notes on the rest."""
    rows, more = [], []
    for year in years:
        for level in levels:
            df = tables.get(year, {}).get(level)
            if df is None or "plausibility_flag" not in df.columns:
                continue
            flags = df["plausibility_flag"]
            flagged = df[flags.map(lambda f: isinstance(f, str) and bool(f.strip()))]
            for _, r in flagged.head(MAX_FLAGS).iterrows():
                rows.append({"year": str(year), "level": _level_label(level), "name": _text(r.get("name")),
                             "zone_id": _text(r.get("zone_id")), "flag": str(r["plausibility_flag"])})
            if len(flagged) > MAX_FLAGS:
                more.append({"year": str(year), "level": _level_label(level), "n": f"{len(flagged):,}",
                             "shown": MAX_FLAGS, "file": f"results/{year}/zones/{level}.gpkg"})
    return {"rows": rows, "more": more}


def _uncertainty(years: Sequence[int], tables: Mapping[int, Mapping[str, pd.DataFrame]],
                 change: Mapping[tuple[int, int], Mapping[str, pd.DataFrame]], models: Mapping[int, Mapping],
                 levels: Sequence[str], type_names: Mapping[str, str],
                 calibration: Mapping[str, Any] | None) -> dict[str, Any]:
    """The uncertainty section: per level U % (median and range) of stock and sink, the dominant variance
    source in words, the variance shares, the plots needed per type, and the calibration benchmark's labels."""
    pairs = sorted(change)
    latest, last_pair = (years[-1] if years else None), (pairs[-1] if pairs else None)
    cal_levels = (calibration or {}).get("levels") or {}
    stock_headers = ["层级 Level", "年份 Year", "有 U 的分区 Zones with U", "U % 中位数 median", "U % 范围 range (min – max)",
                     "主要方差来源 Dominant source of variance"]
    sink_headers = ["层级 Level", "年份 Years", "有 U 的分区 Zones with U", "U % 中位数 median", "U % 范围 range (min – max)",
                    "类别 Classes", "主要方差来源 Dominant source of variance"]
    if calibration:
        stock_headers.append("实测覆盖率 Measured coverage (benchmark)")
        sink_headers.append("实测覆盖率 Measured coverage (benchmark)")

    def source_cell(b: Mapping[str, float] | None, level: str, what: str) -> dict[str, str]:
        d = dominant_source_text(level, b, what=what)
        return _cell(DASH if d["source"] is None else f"{d['source']} ({d['share']} %)", "nodata" if d["source"] is None else "")

    def coverage_cell(level: str, what: str) -> dict[str, str]:
        cov = _float((cal_levels.get(level) or {}).get(what))
        label = calibration_label(calibration, level, what)
        return _cell(format_number(cov, 2) + (" ⚠" if label else ""), "num missed" if label else "num", label or "")

    stock_rows, sink_rows, share_rows, levels_out = [], [], [], []
    for level in levels:
        for year in years:
            df = tables.get(year, {}).get(level)
            if df is None:
                continue
            u = u_pct_summary(_col(df, "carbon_u_pct"))
            cells = [_cell(_level_label(level), "name"), _cell(str(year)), _cell(u["n"], "num"), _cell(u["median"], "num"),
                     _cell(u["range"], "num interval"), source_cell(variance_breakdown(df), level, "stock")]
            if calibration:
                cells.append(coverage_cell(level, "stock"))
            stock_rows.append({"cls": "", "cells": cells})
        for y0, y1 in pairs:
            df = change[(y0, y1)].get(level)
            if df is None:
                continue
            u = u_pct_summary(_col(df, "sink_u_pct"))
            classes = {c: n for c, n in pd.Series(sink_class_list(df)).value_counts().items()}
            cells = [_cell(_level_label(level), "name"), _cell(f"{y0}–{y1}"), _cell(u["n"], "num"), _cell(u["median"], "num"),
                     _cell(u["range"], "num interval"), _cell(class_counts_text(classes)),
                     source_cell(variance_breakdown(df), level, "sink")]
            if calibration:
                cells.append(coverage_cell(level, "sink"))
            sink_rows.append({"cls": "", "cells": cells})
        stock_b = variance_breakdown(tables.get(latest, {}).get(level)) if latest is not None else None
        sink_b = variance_breakdown(change[last_pair].get(level)) if last_pair is not None else None
        for label, b in ((f"碳储量 stock {latest}", stock_b),
                         (f"碳汇 sink {last_pair[0]}–{last_pair[1]}" if last_pair else "", sink_b)):
            if b is not None:
                share_rows.append({"cls": "", "cells": [_cell(_level_label(level), "name"), _cell(label)]
                                   + [_num(b[s], 0) for s in VARIANCE_SOURCES]})
        latest_df = tables.get(latest, {}).get(level)
        if latest_df is None:
            continue
        stock_u = u_pct_summary(_col(latest_df, "carbon_u_pct"))
        levels_out.append({
            "level": _level_label(level), "year": latest, "u": stock_u,
            "stock": dominant_source_text(level, stock_b, what="stock"),
            "sink": dominant_source_text(level, sink_b, what="sink") if last_pair else None,
            "labels": [t for t in (calibration_label(calibration, level, "stock"),
                                   calibration_label(calibration, level, "sink")) if t],
        })
    share_headers = ["层级 Level", "对象 Of"] + [f"{UNCERTAINTY_SOURCES[s][0]} {s} (%)" for s in VARIANCE_SOURCES]

    plots_rows, target = [], None
    model = (models or {}).get(latest) or {}
    if isinstance(model, Mapping):
        target = model.get("target_u_pct")
        for code, tm in (model.get("types") or {}).items():
            if not isinstance(tm, Mapping):
                continue
            fitted = tm.get("source") == "plots"
            n, need = _float(tm.get("n")), _float(tm.get("plots_needed"))
            more = max(0.0, need - n) if math.isfinite(need) and math.isfinite(n) else math.nan
            plots_rows.append({"cls": "" if fitted else "fallback", "cells": [
                _cell(str(code), "id"), _cell(type_names.get(code, code), "name"),
                _cell(SOURCES.get(str(tm.get("source")), _text(tm.get("source")))),
                _num(n if fitted else tm.get("n"), 0), _num(tm.get("curve_u_pct"), 1), _num(target, 1),
                _num(need, 0) if fitted else _cell(f"{DASH}（系数表，需先有至少 {_text(model.get('min_plots'))} 个样地才能拟合 "
                                                   f"coefficient table: at least {_text(model.get('min_plots'))} plots to fit a curve)"),
                _num(more, 0) if fitted else _cell(DASH, "num nodata"),
            ]})
    plots_headers = ["代码 Code", "绿地类型 Type", "来源 Source", "现有样地 Plots now (n)", "曲线 U Curve U now (%)",
                     "目标 U Target U (%)", "所需样地 Plots needed", "需增加 Plots to add"]
    cal = None
    if calibration:
        cal = {"date": _text(calibration.get("date")), "realisations": _text(calibration.get("realisations")),
               "nominal": format_number(calibration.get("nominal"), 2)}
    return {
        "stock": {"id": "uncertainty-stock", "headers": stock_headers, "rows": stock_rows, "note": None, "n": len(stock_rows)},
        "sink": ({"id": "uncertainty-sink", "headers": sink_headers, "rows": sink_rows, "note": None, "n": len(sink_rows)}
                 if sink_rows else None),
        "shares": ({"id": "variance-shares", "headers": share_headers, "rows": share_rows, "note": None,
                    "n": len(share_rows)} if share_rows else None),
        "plots": ({"id": "plots-needed", "headers": plots_headers, "rows": plots_rows, "note": None, "n": len(plots_rows)}
                  if plots_rows else None),
        "plots_year": latest, "target": format_number(target, 1), "levels": levels_out, "calibration": cal,
        "actions": [{"source": s, "zh": v[0], "en": v[1], "action_zh": v[2], "action_en": v[3][:1].upper() + v[3][1:]}
                    for s, v in UNCERTAINTY_SOURCES.items()],
    }


# ---------------------------------------------------------------------------------------------
# The report


def render_report(
    *,
    years: list[int],
    tables: dict[int, dict[str, gpd.GeoDataFrame]],
    change: dict[tuple[int, int], dict[str, gpd.GeoDataFrame]],
    models: dict[int, dict],
    targets: pd.DataFrame,
    provenance: dict,
    carbon_maps: dict[int, np.ndarray],
    sink_maps: dict[tuple[int, int], np.ndarray],
    extent: tuple[float, float, float, float],
    crs: str,
    levels: list[str],
    type_names: dict[str, str],
    template_dir: str | Path,
    nesting: pd.DataFrame | None = None,
    interval_pct: float = INTERVAL_PCT,
    calibration: Mapping[str, Any] | None = None,
) -> str:
    """The whole self-contained HTML report as a string (no external resources: images are inline base64 PNG,
    CSS inline, no JS from the network).

    ``tables[year][level]`` zone tables and ``change[(y0, y1)][level]`` change tables as written by
    :mod:`greensink.aggregate` and :mod:`greensink.change`; ``models[year]`` the dict of
    :func:`greensink.model.fit_models`; ``targets`` the frame of :func:`greensink.targets.evaluate`
    (evaluated on the latest year unless it has a ``year`` column); ``carbon_maps[year]`` (3, rows, cols)
    t C/ha (estimate, lower, upper) and ``sink_maps[(y0, y1)]`` the same in t C/ha/yr, both on ``extent``
    (xmin, ymin, xmax, ymax) in metres of ``crs``; ``levels`` coarsest first; ``type_names`` code -> label.
    ``interval_pct`` is the width of the bootstrap intervals of the tables and rasters (config
    carbon.interval_pct), used in every interval label. ``calibration`` is the calibration benchmark's
    measured coverage (:func:`load_calibration`, :func:`read_calibration`): a level whose coverage is far from
    nominal gets its intervals labelled; None (the default) says nothing about calibration.
    The template ``report.html.j2`` is read from ``template_dir``; nothing is written."""
    interval = interval_label(interval_pct)
    years = sorted(int(y) for y in years)
    extent = tuple(float(v) for v in extent)  # type: ignore[assignment]
    levels = list(levels)
    city = levels[0] if levels else "city"
    outline_level = levels[1] if len(levels) > 1 else city
    pairs = sorted(change)

    # maps: one colour scale per quantity, shared by all years
    shown = {y: _downsample(np.asarray(carbon_maps[y])[0], extent) for y in years if y in carbon_maps}
    density_max = _upper((band for band, _ in shown.values()), 99)
    year_sections = []
    for year in years:
        level_tables = tables.get(year, {})
        maps = []
        if year in shown:
            maps.append({
                "src": _raster_map(*shown[year], extent, level_tables.get(outline_level),
                                   title=f"Carbon density {year}", label="t C/ha", cmap="YlGn", vmin=0.0,
                                   vmax=density_max, extend="max"),
                "caption": f"{year} 年碳密度（像元）Carbon density per pixel, {year}, t C/ha ({crs}); grey lines: "
                           f"{_level_label(outline_level)} boundaries; grey fill: no clear observation 无有效观测.",
            })
        for level in levels:
            df = level_tables.get(level)
            if df is None or len(df) < 2:
                continue
            vmax = _upper((_col(tables[y][level], "carbon_t_ha") for y in years if level in tables.get(y, {})), 100)
            maps.append({
                "src": _choropleth(df, "carbon_t_ha", extent, title=f"Carbon density by {level}, {year}",
                                   label="t C/ha", vmax=vmax),
                "caption": f"{year} 年{LEVEL_NAMES_ZH.get(level, level)}碳密度 Mean carbon density per {level} "
                           f"(t C per ha of zone area); hatched: no data 无数据.",
            })
        zone_tables = []
        for level in levels:
            df = level_tables.get(level)
            if df is None:
                continue
            files = [f"results/{year}/zones/{level}.gpkg", f"results/{year}/zones/{level}.csv"]
            zone_tables.append({"level": _level_label(level), "table": _table(
                f"zones-{year}-{level}", zone_headers(interval_pct), df, _zone_row, "carbon_t_ha", files,
                ("碳密度", "carbon density (t C/ha)")), "calibration": calibration_label(calibration, level, "stock")})
        city_df = level_tables.get(city)
        year_sections.append({
            "year": year, "maps": maps, "tables": zone_tables,
            "types": _type_table(year, city_df, type_names) if city_df is not None else None,
        })

    shown_sink = {p: _downsample(np.asarray(sink_maps[p])[0], extent) for p in pairs if p in sink_maps}
    sink_max = _upper((np.abs(band) for band, _ in shown_sink.values()), 98)
    change_headers = ["名称 Name", "编号 Zone ID", "面积 Area (ha)", "期初碳储量 Carbon start (t C)",
                      "期末碳储量 Carbon end (t C)", "年碳汇 Sink (t C/yr)", f"{interval} 区间 interval (t C/yr)",
                      "类别 Class", "不确定度 U (%)", "保守下限 Conservative (t C/yr)",
                      "单位面积 Sink (t C/ha/yr)", "CO₂e (t/yr)", "无碳净损失 No net carbon loss",
                      "绿量变化 Green-area change (ha)", "绿量无净损失 No net loss of green area"]
    change_sections = []
    for y0, y1 in pairs:
        maps = []
        if (y0, y1) in shown_sink:
            maps.append({
                "src": _raster_map(*shown_sink[(y0, y1)], extent,
                                   tables.get(y1, {}).get(outline_level), title=f"Yearly sink {y0}-{y1}",
                                   label="t C/ha/yr", cmap="BrBG", vmin=-sink_max, vmax=sink_max, extend="both"),
                "caption": f"{y0}–{y1} 年均碳汇 Yearly net sink per pixel, t C/ha/yr: green = carbon taken up 吸收, "
                           f"brown = carbon lost 损失, white ≈ no change; grey fill: no data.",
            })
        level_tables = []
        for level in levels:
            df = change[(y0, y1)].get(level)
            if df is None:
                continue
            files = [f"results/change/{y0}_{y1}/zones/{level}.gpkg", f"results/change/{y0}_{y1}/zones/{level}.csv"]
            level_tables.append({"level": _level_label(level), "table": _table(
                f"change-{y0}-{y1}-{level}", change_headers, df, _change_row, "sink_t_ha_yr", files,
                ("单位面积年碳汇", "sink per hectare (t C/ha/yr)")),
                "losses": _losses(f"losses-{y0}-{y1}-{level}", df, interval),
                "calibration": calibration_label(calibration, level, "sink")})
        change_sections.append({"pair": f"{y0}–{y1}", "y0": y0, "y1": y1, "maps": maps, "tables": level_tables})

    context = {
        "years": years,
        "years_text": ", ".join(str(y) for y in years),
        "crs": str(crs),
        "levels": [_level_label(level) for level in levels],
        "interval": interval,
        "summary": _summary(years, tables, change, city, levels),
        "uncertainty": _uncertainty(years, tables, change, models, levels, type_names, calibration),
        "max_losses": MAX_LOSSES,
        "year_sections": year_sections,
        "change_sections": change_sections,
        "targets": _target_tables(targets, levels, years),
        "models": [_model_section(y, models[y], type_names) for y in years if y in models],
        "residual_bootstrap": any((models[y] or {}).get("bootstrap") == "residuals" for y in years if y in models),
        "flags": _flags(years, tables, levels),
        "nesting": _nesting(nesting),
        "provenance": _provenance(provenance),
        "version": _text((provenance or {}).get("greensink_version", "")),
        "type_names": [{"code": str(k), "name": str(v)} for k, v in type_names.items()],
        "max_rows": MAX_ROWS,
    }
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "htm", "xml", "j2"), default_for_string=True,
                                            default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env.get_template(TEMPLATE_NAME).render(**context)
