"""Report time series (issue 12): stock over the years, the trend, the attribution of each change, land
transitions and "no net loss" of carbon-sink space.

:class:`SeriesProducts` holds what a run made for these sections (read from its files by
:func:`read_series`); :func:`series_section` turns it, with the yearly zone tables and the change tables
already read for the rest of the report, into the context the template's ``#series`` section renders.
Every part is left out when its products are not there (one year: no change, no trend). Values come
from the tables unchanged; a missing value is "—", never 0.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from greensink import io as gio
from greensink.change import ATTRIBUTION_CODES, ATTRIBUTION_PARTS
from greensink.report.charts import attribution_chart, stock_chart
from greensink.report.maps import (
    bilingual,
    class_map,
    diverging_choropleth,
    downsample,
    downsample_classes,
    raster_map,
    upper_limit,
)
from greensink.report.sinks import (
    PARTLY_MARK,
    PARTLY_TITLE,
    SINK_CLASS_LABELS,
    TREND_PARTLY_TITLE,
    partly_observed_count,
    partly_observed_of,
)
from greensink.report.tables import known_sum, observed_cells
from greensink.report.text import (
    DASH,
    LEVEL_NAMES_ZH,
    auto_decimals,
    cell,
    column,
    format_interval,
    format_number,
    is_missing,
    level_label,
    num_cell,
    text_or_dash,
    to_float,
)
from greensink.units import CO2_PER_C

log = logging.getLogger(__name__)

PART_LABELS = {"gain": ("新增植被", "gain"), "loss": ("植被清除", "loss"), "growth": ("持续植被生长", "growth"),
               "conversion": ("绿地类型转换", "conversion"), "other": ("其他", "other")}
"""Chinese and English names of the attribution parts (greensink.change.ATTRIBUTION_PARTS)."""
ATTRIBUTION_MAP_CLASSES = [
    (ATTRIBUTION_CODES["gain"], "#1b7837", "gain (vegetation or canopy appeared)"),
    (ATTRIBUTION_CODES["loss"], "#b2182b", "loss (cleared)"),
    (ATTRIBUTION_CODES["growth"], "#7fbf7b", "growth / decline on persistent vegetation"),
    (ATTRIBUTION_CODES["conversion"], "#9970ab", "conversion of green-space type"),
    (ATTRIBUTION_CODES["other"], "#f7f7f7", "other / no green space"),
]
VEGETATION_CLASSES_ZH = {"none": "无植被 none", "grass": "草 grass", "shrub": "灌木 shrub", "tree": "乔木 tree",
                         "no data": "无数据 no data", "total": "合计 total"}
STOCK_LEVELS = 2  # stock over time for the first two levels (city and districts)
TREND_MAP_LEVELS = (1, 2)  # trend maps of the second and third levels (districts and blocks)
TREND_TABLE_LEVELS = 3  # trend tables of the first three levels (city, districts, blocks); every zone in the files


@dataclass
class SeriesProducts:
    """A run's time-series products as the report reads them (any part may be empty)."""

    trend: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)  # level -> trend zone table
    trend_map: np.ndarray | None = None  # trend.tif band 1, trend_t_ha_yr (rows, cols)
    trend_record: dict[str, Any] | None = None  # trend.json
    matrices: dict[tuple[int, int], pd.DataFrame] = field(default_factory=dict)  # pair -> city matrix (ha)
    transitions: pd.DataFrame | None = None  # long transition table of the first level
    lost_patches: dict[tuple[int, int], pd.DataFrame] = field(default_factory=dict)  # pair -> lost_patches.csv
    attribution_maps: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)  # pair -> attribution class

    @property
    def empty(self) -> bool:
        return not (self.trend or self.matrices or self.lost_patches or self.attribution_maps)


_PAIR = re.compile(r"(\d{4})_(\d{4})")


def _pair_of(path: Path) -> tuple[int, int]:
    """(y0, y1) from a results/change/{y0}_{y1}/… path or a matrix_{y0}_{y1}.csv name."""
    for part in (path.stem, *(p.name for p in path.parents)):
        m = _PAIR.search(part)
        if m:
            return int(m.group(1)), int(m.group(2))
    raise ValueError(f"{path}: no {{y0}}_{{y1}} pair of years in the path (results/change/{{y0}}_{{y1}}/… or "
                     f"matrix_{{y0}}_{{y1}}.csv expected).")


def read_series(*, trend: Sequence[str | Path] = (), transitions: Sequence[str | Path] = (),
                lost_patches: Sequence[str | Path] = (), attribution: Sequence[str | Path] = (),
                first_level: str | None = None) -> SeriesProducts:
    """Read the time-series products of a run, each recognised by its file name (rule report lists them):
    ``trend``: results/change/trend/zones/{level}.gpkg, trend.tif, trend.json; ``transitions``:
    results/change/trend/transitions/matrix_{y0}_{y1}.csv and {first_level}.csv; ``lost_patches``:
    results/change/{y0}_{y1}/lost_patches.csv; ``attribution``: results/change/{y0}_{y1}/attribution.tif."""
    out = SeriesProducts()
    for p in map(Path, trend):
        if p.name == "trend.tif":
            out.trend_map = gio.read_raster(p, bands=1)
        elif p.name == "trend.json":
            out.trend_record = gio.read_json(p)
        elif p.parent.name == "zones":
            out.trend[p.stem] = gio.read_vector(p)
    for p in map(Path, transitions):
        if p.name.startswith("matrix_"):
            out.matrices[_pair_of(p)] = pd.read_csv(p, index_col=0)
        elif p.suffix == ".csv" and (first_level is None or p.stem == first_level):
            out.transitions = pd.read_csv(p, dtype={"zone_id": str})
    for p in map(Path, lost_patches):
        out.lost_patches[_pair_of(p)] = pd.read_csv(p)
    for p in map(Path, attribution):
        out.attribution_maps[_pair_of(p)] = gio.read_raster(p, bands=1)
    return out


def pair_order(pairs, years: Sequence[int]) -> list[tuple[int, int]]:
    """Consecutive pairs by their first year, then the period pair (first, last) when it is not one of them."""
    period = (min(years), max(years)) if years else None
    return sorted(pairs, key=lambda p: (tuple(p) == period and (p[1] - p[0]) > 0 and len(years) > 2, p[0], p[1]))


def _pair_text(pair: tuple[int, int]) -> str:
    return f"{pair[0]}–{pair[1]}"


# ---------------------------------------------------------------------------------------------
# Stock over time


def stock_table(years: Sequence[int], tables: Mapping[int, Mapping[str, pd.DataFrame]], level: str,
                interval: str) -> dict[str, Any]:
    """One row per zone of ``level``, per year the stock (t C) and its interval, as in the zone tables."""
    frames = {y: tables.get(y, {}).get(level) for y in years}
    order: list[tuple[str, str]] = []
    for y in years:  # zones in the order of the years' tables, each once
        df = frames[y]
        if df is None:
            continue
        for zid, name in zip(df["zone_id"].astype(str), df["name"], strict=True):
            if (zid, text_or_dash(name)) not in order and zid not in {z for z, _ in order}:
                order.append((zid, text_or_dash(name)))
    by_year = {y: (frames[y].assign(_id=frames[y]["zone_id"].astype(str)).set_index("_id") if frames[y] is not None
                   else None) for y in years}
    rows = []
    for zid, name in order:
        cells = [cell(name, "name"), cell(zid, "id")]
        for y in years:
            df = by_year[y]
            r = df.loc[zid] if df is not None and zid in df.index else {}
            c = to_float(r.get("carbon_t")) if len(r) else math.nan
            dec = auto_decimals(c) if math.isfinite(c) else None
            cells.append(num_cell(c))
            cells.append(cell(format_interval(r.get("carbon_t_lo") if len(r) else None,
                                              r.get("carbon_t_hi") if len(r) else None, dec), "num interval"))
        rows.append({"cls": "", "cells": cells})
    headers = ["名称 Name", "编号 Zone ID"]
    for y in years:
        headers += [f"{y} 碳储量 Carbon (t C)", f"{y} {interval} 区间 interval (t C)"]
    return {"id": f"series-stock-{level}", "headers": headers, "rows": rows, "note": None, "n": len(rows)}


def stock_series(years: Sequence[int], tables: Mapping[int, Mapping[str, pd.DataFrame]],
                 level: str) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """zone id -> (estimate, lower, upper) per year (NaN where unknown or the zone is absent that year)."""
    out: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for k, y in enumerate(years):
        df = tables.get(y, {}).get(level)
        if df is None:
            continue
        for zid, c, lo, hi in zip(df["zone_id"].astype(str), column(df, "carbon_t"), column(df, "carbon_t_lo"),
                                  column(df, "carbon_t_hi"), strict=True):
            est = out.setdefault(zid, tuple(np.full(len(years), np.nan) for _ in range(3)))  # type: ignore[arg-type]
            est[0][k], est[1][k], est[2][k] = c, lo, hi
    return out


def stock_sections(years: Sequence[int], tables: Mapping[int, Mapping[str, pd.DataFrame]], levels: Sequence[str],
                   interval: str) -> list[dict[str, Any]]:
    """Stock over time of the first two levels (city, districts): a chart and a table each."""
    out = []
    for level in list(levels)[:STOCK_LEVELS]:
        if not any(level in tables.get(y, {}) for y in years):
            continue
        series = stock_series(years, tables, level)
        out.append({
            "level": level_label(level),
            "figure": {"src": stock_chart(years, series, title=bilingual(f"{LEVEL_NAMES_ZH.get(level, level)}碳储量",
                                                                     f"Carbon stock by {level}, {years[0]}-{years[-1]}")),
                       "caption": f"{LEVEL_NAMES_ZH.get(level, level)}各年碳储量及 {interval} 区间（误差线）Carbon stock "
                                  f"per {level} and year with its {interval} interval (error bars), t C; lines "
                                  f"labelled by zone id (names in the table); a year without a known stock is left "
                                  f"out, never drawn as 0."},
            "table": stock_table(years, tables, level, interval),
        })
    return out


# ---------------------------------------------------------------------------------------------
# Trend


def _significance_cell(v: Any) -> dict[str, str]:
    if is_missing(v):
        return cell(DASH, "center nodata")
    return cell("✓ 显著 yes", "center met") if bool(v) else cell("✗ 不显著 no", "center")


TREND_PARTLY = {"flag": "trend_partly_observed", "pct_column": "observed_all_pct"}
"""How :func:`greensink.report.sinks.partly_observed_of` reads a trend-table row (greensink.trend)."""


def trend_observed_headers(interval: str) -> list[str]:
    """Headers of :func:`trend_observed_cells`: the share seen every year, the trend of that land, its interval."""
    return ["每年均看清 Seen every year (% of green space)",
            "每年均看清部分的趋势 Trend of the land seen every year (t C/yr)", f"该部分 {interval} 区间 its interval (t C/yr)"]


def trend_observed_cells(r: Mapping[str, Any]) -> list[dict[str, str]]:
    """The share of a zone's green space seen clearly in every year ("◐ 62.5 %" where the trend includes filled
    land, "100.0 %", "—" where unknown) and the trend of that land alone with its interval
    (``trend_observed_t_yr``; "—" where too little was seen every year): :func:`greensink.report.tables.observed_cells`."""
    return observed_cells(r, "trend_observed_t_yr", TREND_PARTLY_TITLE, **TREND_PARTLY)


def partly_count_text(df: pd.DataFrame) -> dict[str, str] | None:
    """How many zones of a trend table have a trend that includes filled land, of how many; None for a table
    written before ``trend_partly_observed`` and ``observed_all_pct`` existed (it does not say)."""
    if not set(TREND_PARTLY.values()) & set(df.columns):
        return None
    return {"n": f"{partly_observed_count(df, **TREND_PARTLY):,}", "zones": f"{len(df):,}", "mark": PARTLY_MARK}


def trend_row(r: pd.Series, years: Sequence[int]) -> dict[str, Any]:
    """A zone of a trend table; a zone whose trend includes filled land (``trend_partly_observed``) is marked ◐
    beside its trend, with its share seen every year and the trend of that land (:func:`trend_observed_cells`)."""
    t = to_float(r.get("trend_t_yr"))
    dec = auto_decimals(t) if math.isfinite(t) else None
    cls = r.get("trend_class")
    cls = cls if isinstance(cls, str) and cls in SINK_CLASS_LABELS else "unknown"
    partly = bool(partly_observed_of(r, **TREND_PARTLY))
    trend = num_cell(t, dec, sign=True)
    if partly and math.isfinite(t):
        trend = cell(f"{trend['text']} {PARTLY_MARK}", "num partly", TREND_PARTLY_TITLE)
    cells = [
        cell(text_or_dash(r.get("name")), "name"), cell(text_or_dash(r.get("zone_id")), "id"),
        num_cell(r.get("n_years"), 0), trend,
        cell(format_interval(r.get("trend_t_yr_lo"), r.get("trend_t_yr_hi"), dec), "num interval"),
        num_cell(r.get("trend_t_ha_yr"), 2, sign=True), _significance_cell(r.get("trend_significant")),
        cell(SINK_CLASS_LABELS[cls], f"sinkclass {cls.replace(' ', '-')}"),
    ]
    if TREND_PARTLY["flag"] in r or TREND_PARTLY["pct_column"] in r:  # tables written before the columns: left out
        cells += trend_observed_cells(r)
    cells.append(num_cell(r.get("trend_co2e_t_yr"), sign=True))
    cells += [num_cell(r.get(f"carbon_t_{y}")) for y in years]
    return {"cells": cells, "cls": " ".join(c for c in ("loss" if cls == "loss" else "", "partly" if partly else "") if c)}


def trend_section(products: SeriesProducts, years: Sequence[int], levels: Sequence[str], interval: str,
                  extent: tuple[float, float, float, float], boundaries: gpd.GeoDataFrame | None,
                  sink_max: float, crs: str) -> dict[str, Any] | None:
    """Trend tables of every level with a trend table, the pixel trend map and the zone trend maps of the
    districts and blocks, on the sink maps' colour scale (t C/ha/yr, symmetric about 0)."""
    from greensink.report.tables import level_table

    if not products.trend:
        return None
    headers = ["名称 Name", "编号 Zone ID", "年数 Years used", "趋势 Trend (t C/yr)",
               f"{interval} 区间 interval (t C/yr)", "单位面积 Trend (t C/ha/yr)", "显著 Significant", "类别 Class"]
    tail = ["CO₂e (t/yr)", *[f"{y} 碳储量 Carbon (t C)" for y in years]]
    tables, maps = [], []
    if products.trend_map is not None:
        band, band_extent = downsample(np.asarray(products.trend_map), extent)
        maps.append({"src": raster_map(band, band_extent, extent, boundaries, title=bilingual("碳密度趋势", f"Trend {years[0]}-{years[-1]}"),
                                       label="t C/ha/yr", cmap="BrBG", vmin=-sink_max, vmax=sink_max, extend="both"),
                     "caption": f"{years[0]}–{years[-1]} 碳密度趋势（Theil–Sen 斜率，像元）Trend of carbon density per pixel "
                                f"(Theil–Sen slope over every year), t C/ha/yr ({crs}); same colour scale as the "
                                f"yearly sink maps; grey: no data."})
    mapped = [levels[k] for k in TREND_MAP_LEVELS if k < len(levels) and levels[k] in products.trend
              and len(products.trend[levels[k]]) >= 2 and "geometry" in products.trend[levels[k]].columns]
    # one scale for the zone maps (zone means are far smaller than the pixels' extremes)
    zone_max = upper_limit((np.abs(column(products.trend[lv], "trend_t_ha_yr")) for lv in mapped), 100)
    for level in mapped:
        df = products.trend[level]
        sig = df["trend_significant"] if "trend_significant" in df.columns else pd.Series([None] * len(df))
        significant = np.array([(not is_missing(v)) and bool(v) for v in sig], dtype=bool)
        maps.append({"src": diverging_choropleth(df, "trend_t_ha_yr", extent, vmax=zone_max, outlined=significant,
                                                 title=bilingual(f"{LEVEL_NAMES_ZH.get(level, level)}趋势",
                                                                 f"Trend by {level}, {years[0]}-{years[-1]}"),
                                                 label="t C/ha/yr"),
                     "caption": f"{LEVEL_NAMES_ZH.get(level, level)}碳储量趋势（每公顷）Trend of the stock per "
                                f"{level}, t C/ha/yr of zone area (one colour scale for the zone maps); bold outline: "
                                f"significant 显著 (the {interval} interval excludes 0); hatched grey: no data."})
    for level in list(levels)[:TREND_TABLE_LEVELS]:
        df = products.trend.get(level)
        if df is None:
            continue
        files = [f"results/change/trend/zones/{level}.gpkg", f"results/change/trend/zones/{level}.csv"]
        observed = trend_observed_headers(interval) if set(TREND_PARTLY.values()) & set(df.columns) else []
        tables.append({"level": level_label(level), "table": level_table(
            f"trend-{level}", [*headers, *observed, *tail], df, lambda r: trend_row(r, years), "trend_t_ha_yr", files,
            ("单位面积趋势", "trend per hectare (t C/ha/yr)")),
            "partly": partly_count_text(df)})
    city = products.trend.get(levels[0]) if levels else None
    summary = None
    if city is not None and len(city) == 1:
        r = city.iloc[0]
        t = to_float(r.get("trend_t_yr"))
        dec = auto_decimals(t) if math.isfinite(t) else None
        cls = r.get("trend_class") if isinstance(r.get("trend_class"), str) else "unknown"
        summary = {"name": text_or_dash(r.get("name")), "trend": format_number(t, dec, sign=True),
                   "interval": format_interval(r.get("trend_t_yr_lo"), r.get("trend_t_yr_hi"), dec),
                   "co2e": format_number(t * CO2_PER_C, sign=True), "class": SINK_CLASS_LABELS.get(cls, cls)}
    pixels = (products.trend_record or {}).get("pixels") or {}
    return {"period": f"{years[0]}–{years[-1]}", "maps": maps, "tables": tables, "summary": summary,
            "pixels": {str(k): format_number(v, 0) for k, v in pixels.items()} if isinstance(pixels, Mapping) else {}}


# ---------------------------------------------------------------------------------------------
# Attribution


def attribution_parts(df: pd.DataFrame) -> list[str]:
    """The attribution parts the change table has, in greensink.change's order."""
    return [p for p in ATTRIBUTION_PARTS if f"change_{p}_t" in df.columns]


def attribution_sentence(r: Mapping[str, Any], parts: Sequence[str], pair: tuple[int, int]) -> dict[str, str]:
    """The city's stock change and its parts in words, Chinese and English, t C."""
    net = format_number(r.get("stock_change_t"), sign=True)
    zh = "；".join(f"{PART_LABELS[p][0]} {format_number(r.get(f'change_{p}_t'), sign=True)} t C" for p in parts)
    en = "; ".join(f"{PART_LABELS[p][1]} {format_number(r.get(f'change_{p}_t'), sign=True)} t C" for p in parts)
    name = text_or_dash(r.get("name"))
    return {"zh": f"{name} {_pair_text(pair)} 碳储量净变化 {net} t C，其中{zh}。",
            "en": f"{name}'s net stock change {_pair_text(pair)} is {net} t C: {en} (the parts add up to the net change)."}


def attribution_table(df: pd.DataFrame, parts: Sequence[str], table_id: str) -> dict[str, Any]:
    rows = []
    for _, r in df.iterrows():
        net = num_cell(r.get("stock_change_t"), sign=True)
        partly = bool(partly_observed_of(r)) and net["text"] != DASH
        if partly:  # the net change includes filled land, like the sink (report.tables.sink_cells)
            net = cell(f"{net['text']} {PARTLY_MARK}", "num partly", PARTLY_TITLE)
        rows.append({"cls": "partly" if partly else "", "cells": [cell(text_or_dash(r.get("name")), "name"),
                                                                  cell(text_or_dash(r.get("zone_id")), "id"), net,
                                                                  *[num_cell(r.get(f"change_{p}_t"), sign=True)
                                                                    for p in parts]]})
    headers = ["名称 Name", "编号 Zone ID", "净变化 Net stock change (t C)",
               *[f"{PART_LABELS[p][0]} {PART_LABELS[p][1].capitalize()} (t C)" for p in parts]]
    return {"id": table_id, "headers": headers, "rows": rows, "note": None, "n": len(rows)}


def attribution_sections(change: Mapping[tuple[int, int], Mapping[str, pd.DataFrame]], levels: Sequence[str],
                         products: SeriesProducts, extent: tuple[float, float, float, float],
                         boundaries: Mapping[tuple[int, int], gpd.GeoDataFrame | None],
                         pairs: Sequence[tuple[int, int]] | None = None) -> list[dict[str, Any]]:
    """Per pair with attribution columns: the city sentence, a stacked bar per district, the city and district
    table and the pixel attribution map."""
    out = []
    city = levels[0] if levels else "city"
    sub = levels[1] if len(levels) > 1 else city
    for pair in (pairs if pairs is not None else sorted(change)):
        tables = change[pair]
        city_df, sub_df = tables.get(city), tables.get(sub)
        if city_df is None or "stock_change_t" not in city_df.columns:
            continue
        parts = attribution_parts(city_df)
        sentences = [attribution_sentence(r, parts, pair) for r in city_df.to_dict("records")]
        figures = []
        if sub_df is not None and len(sub_df):
            figures.append({"src": attribution_chart(list(sub_df["zone_id"].astype(str)),
                                                     {p: column(sub_df, f"change_{p}_t") for p in parts},
                                                     column(sub_df, "stock_change_t"),
                                                     title=bilingual("碳储量变化归因", f"Attribution of the stock change by {sub}, "
                                                                   f"{pair[0]}-{pair[1]}")),
                            "caption": f"{_pair_text(pair)} 各{LEVEL_NAMES_ZH.get(sub, sub)}碳储量变化的归因（t C）"
                                       f"Attribution of each {sub}'s stock change, t C: bars are the parts (gain, "
                                       f"loss, growth, conversion, other) stacked above and below 0, the diamond the "
                                       f"net change; zones by id (names in the table)."})
        if pair in products.attribution_maps:
            band, band_extent = downsample_classes(products.attribution_maps[pair], extent)
            figures.append({"src": class_map(band, band_extent, extent, boundaries.get(pair), ATTRIBUTION_MAP_CLASSES,
                                             title=bilingual("变化归因", f"Attribution {pair[0]}-{pair[1]}")),
                            "caption": f"{_pair_text(pair)} 像元变化归因 What each pixel's stock change is attributed to "
                                       f"(results/change/{pair[0]}_{pair[1]}/attribution.tif): 新增 gain, 清除 loss, "
                                       f"生长 growth, 类型转换 conversion; grey: no data."})
        shown = [(city, city_df)] + ([(sub, sub_df)] if sub != city and sub_df is not None else [])
        out.append({"pair": _pair_text(pair), "sentences": sentences, "figures": figures,
                    "tables": [{"level": level_label(lv), "table": attribution_table(
                        df, parts, f"attribution-{pair[0]}-{pair[1]}-{lv}")} for lv, df in shown]})
    return out


# ---------------------------------------------------------------------------------------------
# No net loss of carbon-sink space


def sink_space_rows(change: Mapping[tuple[int, int], Mapping[str, pd.DataFrame]], levels: Sequence[str],
                    pairs: Sequence[tuple[int, int]] | None = None) -> list[dict[str, Any]]:
    """Per pair and level: zones meeting "no net loss" of carbon-sink space, not meeting it and unknown;
    the net change and the gross loss of sink space (ha, "—" when a zone's is unknown); and the pair's
    lost patches (count, ha, file)."""
    rows = []
    for pair in (pairs if pairs is not None else sorted(change)):
        for level in levels:
            df = change[pair].get(level)
            if df is None or "no_net_loss_sink_space" not in df.columns:
                continue
            flags = [None if is_missing(v) else bool(v) for v in df["no_net_loss_sink_space"]]
            met = sum(1 for v in flags if v is True)
            missed = sum(1 for v in flags if v is False)
            rows.append({
                "pair": _pair_text(pair), "level": level_label(level), "zones": f"{len(df):,}", "met": f"{met:,}",
                "missed": f"{missed:,}", "unknown": f"{len(df) - met - missed:,}",
                "change_ha": format_number(known_sum(column(df, "sink_space_change_ha")), 2, sign=True),
                "lost_ha": format_number(known_sum(column(df, "sink_space_lost_ha")), 2),
                "missed_cls": "missed" if missed else "",
            })
    return rows


def lost_patch_rows(lost_patches: Mapping[tuple[int, int], pd.DataFrame],
                    pairs: Sequence[tuple[int, int]]) -> list[dict[str, str]]:
    """Per pair with a lost-patches table: the number of patches, their lost sink space (ha), the carbon lost
    ("—" where a patch's is unknown) and the GeoPackage a planner opens."""
    rows = []
    for pair in pairs:
        df = lost_patches.get(pair)
        if df is None:
            continue
        rows.append({"pair": _pair_text(pair), "patches": format_number(len(df), 0),
                     "area_ha": format_number(known_sum(column(df, "area_ha")), 2),
                     "carbon_lost_t": format_number(known_sum(column(df, "carbon_lost_t"))),
                     "file": f"results/change/{pair[0]}_{pair[1]}/lost_patches.gpkg"})
    return rows


# ---------------------------------------------------------------------------------------------
# Land transitions


def transition_section(products: SeriesProducts, pair: tuple[int, int], first_level: str = "city",
                       ) -> dict[str, Any] | None:
    """The city's vegetation transition matrix of ``pair`` (ha) and, per transition with land, its area and
    carbon change (from the first level's long table, all its zones together)."""
    m = products.matrices.get(pair)
    if m is None:
        return None
    names = [str(c) for c in m.columns]
    rows = []
    for name, r in m.iterrows():
        cls = "total" if str(name) == "total" else ""
        rows.append({"cls": cls, "cells": [cell(VEGETATION_CLASSES_ZH.get(str(name), str(name)), "name"),
                                           *[num_cell(r[c], 2) for c in m.columns]]})
    matrix = {"id": f"transitions-{pair[0]}-{pair[1]}", "rows": rows, "note": None, "n": len(rows),
              "headers": [f"{pair[0]} \\ {pair[1]} (ha)", *[VEGETATION_CLASSES_ZH.get(c, c) for c in names]]}
    carbon = None
    long = products.transitions
    if long is not None and len(long):
        sel = long[(long["y0"] == pair[0]) & (long["y1"] == pair[1]) & (long["kind"] == "vegetation")]
        if len(sel):
            g = sel.groupby(["from_class", "to_class"], sort=False)
            agg = pd.DataFrame({
                "area_ha": g["area_ha"].sum(),
                # a transition's carbon change is unknown where any zone's is (a partial sum is not the total)
                "carbon_change_t": g["carbon_change_t"].apply(lambda v: known_sum(v.to_numpy(dtype=float))),
                "carbon_known_ha": g["carbon_known_ha"].sum(),
            }).reset_index()
            agg = agg[agg["area_ha"] > 0].sort_values("area_ha", ascending=False, kind="stable")
            crow = []
            for r in agg.to_dict("records"):
                changed = r["from_class"] != r["to_class"]
                crow.append({"cls": "" if changed else "unchanged", "cells": [
                    cell(VEGETATION_CLASSES_ZH.get(r["from_class"], r["from_class"]), "name"),
                    cell(VEGETATION_CLASSES_ZH.get(r["to_class"], r["to_class"]), "name"),
                    num_cell(r["area_ha"], 2), num_cell(r["carbon_change_t"], sign=True),
                    num_cell(r["carbon_known_ha"], 2)]})
            carbon = {"id": f"transition-carbon-{pair[0]}-{pair[1]}", "rows": crow, "note": None, "n": len(crow),
                      "headers": [f"{pair[0]} 类别 From", f"{pair[1]} 类别 To", "面积 Area (ha)",
                                  "碳储量变化 Carbon change (t C)", "碳变化已知面积 Known-carbon area (ha)"]}
    return {"pair": _pair_text(pair), "matrix": matrix, "carbon": carbon,
            "files": [f"results/change/trend/transitions/matrix_{pair[0]}_{pair[1]}.csv",
                      f"results/change/trend/transitions/{first_level}.csv"],
            "other_pairs": [_pair_text(p) for p in sorted(products.matrices) if p != pair]}


# ---------------------------------------------------------------------------------------------
# The whole section


def series_section(products: SeriesProducts | None, *, years: Sequence[int],
                   tables: Mapping[int, Mapping[str, pd.DataFrame]],
                   change: Mapping[tuple[int, int], Mapping[str, pd.DataFrame]], levels: Sequence[str],
                   interval: str, extent: tuple[float, float, float, float], crs: str, sink_max: float,
                   outline_level: str) -> dict[str, Any] | None:
    """The context of the report's ``#series`` section, or None with fewer than two years (nothing to show
    over time). ``sink_max`` is the yearly sink maps' colour limit (t C/ha/yr), shared by the trend maps."""
    years = sorted(int(y) for y in years)
    if len(years) < 2:
        return None
    products = products or SeriesProducts()
    last = tables.get(years[-1], {}).get(outline_level)
    period = (years[0], years[-1])
    pairs = pair_order(list(change), years)
    return {
        "period": _pair_text(period),
        "stock": stock_sections(years, tables, levels, interval),
        "trend": trend_section(products, years, levels, interval, extent, last, sink_max, crs),
        "attribution": attribution_sections(change, levels, products, extent,
                                            {p: tables.get(p[1], {}).get(outline_level) for p in change}, pairs),
        "sink_space": sink_space_rows(change, levels, pairs),
        "lost_patches": lost_patch_rows(products.lost_patches, pairs),
        "transitions": transition_section(products, period, levels[0] if levels else "city"),
    }
