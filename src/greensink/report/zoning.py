"""Report zoning (issue 13): the carbon-sink importance classes, the potential space and the canopy gap of
the last year, as maps and as tables at the first two levels (city, districts).

:class:`ZoningProducts` holds the zoning products of one year (read by :func:`read_zoning`);
:func:`zoning_section` makes the context of the template's ``#zoning`` section. What a run did not compute
(a layer not given, a factor dropped) is named in words and its cells are "—", never 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from greensink import io as gio
from greensink.report.maps import bilingual, class_map, downsample_classes
from greensink.report.text import LEVEL_NAMES_ZH, cell, level_label, num_cell, text_or_dash
from greensink.zoning.importance import CLASS_NODATA, IMPORTANCE_CLASSES
from greensink.zoning.settings import MASK_LAYERS

TABLE_LEVELS = 2  # class areas, potential space and canopy gap of the first two levels (city, districts)
IMPORTANCE_COLOURS = {3: "#00441b", 2: "#41ab5d", 1: "#c7e9c0"}  # 极重要, 重要, 一般
POTENTIAL_CLASSES = [(1.0, "#fdae61", "potential space (≥ half the pixel)"), (0.0, "#ffffff", "not potential space")]
MASK_NAMES = {"construction": "建设用地 construction land", "cropland": "耕地 cropland",
              "red_line": "生态保护红线 ecological red line"}
GAP_STATUS_ZH = {"target met": "已达标", "closable": "可补足", "not closable: plantable land short": "可种植用地不足",
                 "not closable on vegetated land (open land not computed)": "仅植被用地无法补足（空地未计算）",
                 "unknown: no observation": "无观测，未知", "no target": "无目标"}


@dataclass
class ZoningProducts:
    """The zoning products of one year as the report reads them."""

    year: int
    importance: np.ndarray | None = None  # importance.tif band 1 (uint8 classes, 255 nodata)
    potential: np.ndarray | None = None  # potential.tif band 1 (1/0, 255 unknown)
    tables: dict[str, dict[str, pd.DataFrame]] = field(default_factory=dict)  # product -> level -> table
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)  # product -> its JSON summary


PRODUCTS = ("canopy_gap", "importance", "potential")


def read_zoning(paths: Sequence[str | Path]) -> ZoningProducts | None:
    """Read results/{year}/zoning/ files of one year, each recognised by name: importance.tif, potential.tif,
    {product}.json and {product}_{level}.csv (product canopy_gap, importance, potential). None without paths
    (zoning off)."""
    paths = [Path(p) for p in paths]
    if not paths:
        return None
    years = {p.parent.parent.name for p in paths}
    if len(years) != 1 or not next(iter(years)).isdigit():
        raise ValueError(f"zoning products of one year expected (results/{{year}}/zoning/…). Got {sorted(map(str, paths))}.")
    out = ZoningProducts(year=int(next(iter(years))))
    for p in paths:
        if p.name == "importance.tif":
            out.importance = gio.read_raster(p, bands=1)
        elif p.name == "potential.tif":
            out.potential = gio.read_raster(p, bands=1)
        elif p.suffix == ".json" and p.stem in PRODUCTS:
            out.summaries[p.stem] = gio.read_json(p)
        elif p.suffix == ".csv":
            product = next((n for n in PRODUCTS if p.stem.startswith(n + "_")), None)
            if product is not None:
                out.tables.setdefault(product, {})[p.stem[len(product) + 1:]] = pd.read_csv(
                    p, dtype={"zone_id": str, "parent_id": str})
    return out


def not_computed(summaries: Mapping[str, Mapping[str, Any]]) -> list[dict[str, str]]:
    """What the zoning did not compute, named (Chinese and English): the canopy gap's parts left out, the
    potential space's layers not subtracted, the importance factors dropped (with why)."""
    out = []
    for text in (summaries.get("canopy_gap") or {}).get("not_computed") or []:
        out.append({"zh": "树冠缺口 canopy gap", "en": str(text)})
    for name in (summaries.get("potential") or {}).get("not_subtracted") or []:
        out.append({"zh": "潜力空间 potential space",
                    "en": f"{MASK_NAMES.get(name, name)} ({name}) not given: not subtracted; its column "
                          f"{name}_ha is “—”"})
    for name, why in ((summaries.get("importance") or {}).get("dropped_factors") or {}).items():
        out.append({"zh": "重要性分区 importance", "en": f"factor {name} left out: {why}"})
    return out


def _zone_cells(r: Mapping[str, Any]) -> list[dict[str, str]]:
    return [cell(text_or_dash(r.get("name")), "name"), cell(text_or_dash(r.get("zone_id")), "id")]


def importance_table(df: pd.DataFrame, table_id: str) -> dict[str, Any]:
    headers = ["名称 Name", "编号 Zone ID", "已观测 Observed (ha)", "已分级 Classified (ha)", "未分级 Unclassified (ha)"]
    for _, (_key, zh, en) in IMPORTANCE_CLASSES.items():
        headers += [f"{zh} {en} (ha)", f"{zh} {en} (%)", f"{zh} {en} 碳储量 carbon (t C)"]
    rows = []
    for r in df.to_dict("records"):
        cells = [*_zone_cells(r), num_cell(r.get("observed_ha"), 2), num_cell(r.get("classified_ha"), 2),
                 num_cell(r.get("unclassified_ha"), 2)]
        for _, (key, _, _) in IMPORTANCE_CLASSES.items():
            cells += [num_cell(r.get(f"area_ha_{key}"), 2), num_cell(r.get(f"share_pct_{key}"), 1),
                      num_cell(r.get(f"carbon_t_{key}"))]
        rows.append({"cls": "", "cells": cells})
    return {"id": table_id, "headers": headers, "rows": rows, "note": None, "n": len(rows)}


def potential_table(df: pd.DataFrame, table_id: str) -> dict[str, Any]:
    headers = ["名称 Name", "编号 Zone ID", "网格面积 Grid area (ha)",
               *[f"{MASK_NAMES[n]} (ha)" for n in MASK_LAYERS], "扣除合计 Excluded (ha)",
               "潜力空间 Potential space (ha)", "潜力占比 Potential (%)", "现有碳储量 Carbon now (t C)",
               "潜在增汇 Potential added (t C)", "未扣除 Not subtracted"]
    rows = []
    for r in df.to_dict("records"):
        missing = r.get("not_subtracted")
        missing = "" if missing is None or (isinstance(missing, float) and np.isnan(missing)) else str(missing)
        rows.append({"cls": "", "cells": [
            *_zone_cells(r), num_cell(r.get("grid_area_ha"), 2), *[num_cell(r.get(f"{n}_ha"), 2) for n in MASK_LAYERS],
            num_cell(r.get("excluded_ha"), 2), num_cell(r.get("potential_ha"), 2), num_cell(r.get("potential_pct"), 1),
            num_cell(r.get("current_carbon_t")), num_cell(r.get("potential_added_t")),
            cell(missing or "无 none")]})
    return {"id": table_id, "headers": headers, "rows": rows, "note": None, "n": len(rows)}


def canopy_gap_table(df: pd.DataFrame, table_id: str) -> dict[str, Any]:
    headers = ["名称 Name", "编号 Zone ID", "树冠覆盖率 Canopy cover (%)", "目标 Target (%)", "缺口 Gap (pp)",
               "需种植 Planting needed (ha)", "可种植（已知）Plantable known (ha)", "可种植 Plantable (ha)",
               "可种植量 Planting (ha)", "不足 Shortfall (ha)", "状态 Status", "增汇 Carbon added (t C)"]
    rows = []
    for r in df.to_dict("records"):
        status = text_or_dash(r.get("gap_status"))
        cls = "missed" if status.startswith("not closable") else ""
        rows.append({"cls": cls, "cells": [
            *_zone_cells(r), num_cell(r.get("canopy_cover_pct"), 1), num_cell(r.get("canopy_target_pct"), 1),
            num_cell(r.get("canopy_gap_pct"), 1), num_cell(r.get("planting_needed_ha"), 2),
            num_cell(r.get("plantable_known_ha"), 2), num_cell(r.get("plantable_ha"), 2),
            num_cell(r.get("planting_ha"), 2), num_cell(r.get("planting_shortfall_ha"), 2),
            cell(f"{GAP_STATUS_ZH.get(status, '')} {status}".strip()), num_cell(r.get("carbon_added_t"))]})
    return {"id": table_id, "headers": headers, "rows": rows, "note": None, "n": len(rows)}


def zoning_section(products: ZoningProducts | None, *, levels: Sequence[str], extent: tuple[float, float, float, float],
                   boundaries: gpd.GeoDataFrame | None, outline_level: str, crs: str) -> dict[str, Any] | None:
    """The context of the report's ``#zoning`` section, or None when zoning is off."""
    if products is None:
        return None
    year = products.year
    maps = []
    if products.importance is not None:
        band, band_extent = downsample_classes(products.importance, extent)
        classes = [(float(c), IMPORTANCE_COLOURS.get(c, "#999999"), en) for c, (_, _, en) in IMPORTANCE_CLASSES.items()]
        maps.append({"src": class_map(band, band_extent, extent, boundaries, classes,
                                      title=bilingual(f"{year} 年碳汇重要性", f"Carbon-sink importance {year}")),
                     "caption": f"{year} 年碳汇重要性分区：极重要（深绿）、重要、一般（浅绿）Carbon-sink importance classes "
                                f"(weighted overlay): extremely important (dark green), important, general (pale); grey: "
                                f"no class (unobserved, or a factor without a value, code {CLASS_NODATA}) ({crs}); lines: "
                                f"{level_label(outline_level)} boundaries."})
    if products.potential is not None:
        band, band_extent = downsample_classes(products.potential, extent)
        missing = (products.summaries.get("potential") or {}).get("not_subtracted") or []
        maps.append({"src": class_map(band, band_extent, extent, boundaries, POTENTIAL_CLASSES,
                                      title=bilingual(f"{year} 年碳汇潜力空间", f"Carbon-sink potential space {year}")),
                     "caption": f"{year} 年碳汇潜力空间（全部用地扣除建设用地、耕地和生态保护红线）Carbon-sink potential space: "
                                f"all land minus construction land, cropland and the ecological red line (orange: at "
                                f"least half the pixel); grey: unknown."
                                + (f" 未扣除 Not subtracted (layer not given): {', '.join(map(str, missing))}." if missing
                                   else "")})
    sections = []
    for product, maker, title in (("importance", importance_table, "碳汇重要性分级面积 Importance classes"),
                                  ("potential", potential_table, "碳汇潜力空间 Potential space"),
                                  ("canopy_gap", canopy_gap_table, "树冠缺口与可种植空间 Canopy gap and plantable space")):
        tables = []
        for level in list(levels)[:TABLE_LEVELS]:
            df = products.tables.get(product, {}).get(level)
            if df is not None:
                tables.append({"level": level_label(level),
                               "table": maker(df, f"zoning-{product}-{level}"),
                               "files": [f"results/{year}/zoning/{product}_{level}.gpkg",
                                         f"results/{year}/zoning/{product}_{level}.csv"]})
        if tables:
            sections.append({"product": product, "title": title, "tables": tables})
    summaries = products.summaries
    factors = [{"name": str(f.get("name")), "weight": f"{100 * float(f.get('weight_normalised', 0)):.0f} %"}
               for f in (summaries.get("importance") or {}).get("factors") or []]
    gap = summaries.get("canopy_gap") or {}
    return {"year": year, "maps": maps, "sections": sections, "not_computed": not_computed(summaries),
            "factors": factors, "levels_zh": "、".join(LEVEL_NAMES_ZH.get(lv, lv) for lv in list(levels)[:TABLE_LEVELS]),
            "tree_density": text_or_dash(gap.get("tree_density_t_ha")),
            "density_source": text_or_dash(gap.get("density_source"))}
