"""Report tables: the rows of the zone, sink, loss, type, target, model, nesting and flag tables.

Each table is a dict the template renders: ``{"id", "headers", "rows", "note", "n"}``, a row
``{"cells": [...], "cls": ...}`` with cells from :func:`greensink.report.text.cell`. Levels with
more than :data:`MAX_ROWS` zones (typically parcels) show the :data:`SHOW_EACH_END` highest and
lowest zones and point to the full table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from greensink.change import SINK_CLASSES
from greensink.report.sinks import (
    PARTLY_MARK,
    PARTLY_TITLE,
    SINK_CLASS_LABELS,
    class_counts_text,
    largest_losses,
    no_net_carbon_loss_of,
    partly_observed_of,
    seen_both_text,
    sink_class_list,
    sink_class_of,
)
from greensink.report.text import (
    DASH,
    OPS,
    SOURCES,
    STATUS,
    auto_decimals,
    cell,
    column,
    format_interval,
    format_number,
    formula,
    indicator_decimals,
    is_missing,
    level_label,
    num_cell,
    plot_carbon_text,
    predictor_label,
    rivals_text,
    text_or_dash,
    to_float,
    type_predictors,
)
from greensink.tiers import TIER_NAMES_ZH

MAX_ROWS = 60  # a level with more zones than this is shown as its top and bottom zones only
SHOW_EACH_END = 20  # zones shown at each end of a truncated level
MAX_FLAGS = 100  # plausibility flags listed per year and level


def without_green_space(df: pd.DataFrame) -> np.ndarray:
    """True for the zones with no green space: no typed green-space land (``green_space_area_ha`` 0) in a zone
    table; no carbon in either year (``carbon_t_from`` and ``carbon_t_to`` 0) in a change table. Their carbon
    (or sink) is 0 by construction, so they tell nothing at the low end of a ranking. All False when the
    table has neither (nothing is known to be empty); an unknown value (NaN) is not "no green space"."""
    if "green_space_area_ha" in df.columns:
        return column(df, "green_space_area_ha") == 0
    if {"carbon_t_from", "carbon_t_to"} <= set(df.columns):
        return (column(df, "carbon_t_from") == 0) & (column(df, "carbon_t_to") == 0)
    return np.zeros(len(df), dtype=bool)


def _ranked(df: pd.DataFrame, key: str) -> tuple[pd.DataFrame, pd.DataFrame | None, int, int]:
    """(rows to show first, rows after a gap or None, number of rows hidden, zones without green space left
    out of the lowest). The lowest are chosen among zones with green space (:func:`without_green_space`):
    twenty zones of 0 t C with no green land would hide the zones that have green space and little carbon."""
    if len(df) <= MAX_ROWS:
        return df, None, 0, 0
    values = column(df, key)
    order = np.argsort(-np.where(np.isfinite(values), values, -np.inf), kind="stable")
    finite = order[np.isfinite(values[order])]
    top = finite[:SHOW_EACH_END]
    empty = without_green_space(df)
    candidates = finite[~empty[finite]]
    bottom = np.setdiff1d(candidates[::-1][:SHOW_EACH_END], top)  # the lowest, ascending index order
    bottom = bottom[np.argsort(-values[bottom], kind="stable")]  # listed from higher to lowest
    shown = len(top) + len(bottom)
    skipped = int(np.count_nonzero(np.delete(empty, top)))
    return df.iloc[top], df.iloc[bottom], len(df) - shown, skipped


def zone_row(r: pd.Series) -> dict[str, Any]:
    flag = str(r.get("plausibility_flag") or "")
    flag = "" if flag == "nan" else flag
    name = text_or_dash(r.get("name"))
    carbon = to_float(r.get("carbon_t"))
    dec = auto_decimals(carbon) if math.isfinite(carbon) else None
    conservative = r.get("carbon_t_conservative", r.get("carbon_t_lo"))  # = carbon_t_lo (docs/outputs.md)
    cells = [
        cell(name + (" ⚠" if flag else ""), "name flagged" if flag else "name", flag),
        cell(text_or_dash(r.get("zone_id")), "id"),
        num_cell(r.get("area_ha")),
        num_cell(r.get("green_coverage_pct"), 1),
        num_cell(r.get("green_space_ratio_pct"), 1),
        num_cell(r.get("canopy_cover_pct"), 1),
        num_cell(carbon),
        cell(format_interval(r.get("carbon_t_lo"), r.get("carbon_t_hi"), dec), "num interval"),
        num_cell(r.get("carbon_u_pct"), 1),
        num_cell(conservative, dec),
        num_cell(r.get("carbon_t_ha"), 2),
        num_cell(r.get("co2e_t")),
        num_cell(r.get("park_area_per_capita_m2"), 1),
        num_cell(r.get("tree_shrub_share_pct"), 1),
        num_cell(r.get("park_service_population_pct"), 1),
        num_cell(r.get("carbon_observed_pct"), 1),
        num_cell(r.get("carbon_t_filled")),
        cell(_tier_cell(r.get("carbon_tier")), "tier"),
    ]
    return {"cells": cells, "cls": "flagged" if flag else ""}


def _tier_cell(value: Any) -> str:
    """"T3", "T2+T3" (the zone's carbon_tier) as shown; "—" when missing or the zone has no typed land."""
    text = "" if is_missing(value) else str(value).strip()
    return text if text and text != "nan" else DASH


NESTING_TOLERANCE_HA = 0.01


def nesting_rows(nesting: pd.DataFrame | None) -> list[dict[str, Any]]:
    """One row per level and its parent level: how far the level is from tiling its parents."""
    rows = []
    if nesting is None or nesting.empty:
        return rows
    for r in nesting.to_dict("records"):
        off = [float(r.get(k, 0) or 0) for k in ("outside_parents_ha", "parent_gaps_ha", "overlap_ha")]
        straddle = int(r.get("straddling_zones", 0) or 0)
        tiles = r.get("tiles_parents")  # nesting.csv states its own tolerance (greensink.zones); older tables do not
        exact = bool(tiles) if tiles is not None and not is_missing(tiles) else (
            all(v <= NESTING_TOLERANCE_HA for v in off) and straddle == 0)
        rows.append({
            "level": level_label(str(r["level"])), "parent": level_label(str(r["parent_level"])),
            "zones": format_number(r.get("zones"), 0), "outside": format_number(off[0], 2),
            "gaps": format_number(off[1], 2), "overlap": format_number(off[2], 2),
            "straddling": format_number(straddle, 0), "ids": text_or_dash(r.get("straddling_ids", "")),
            "exact": exact,
            "verdict": ("完全嵌套，合计逐级相加 tiles its parents: sums add up exactly" if exact else
                        "未完全嵌套，逐级合计相差上述面积 does not tile its parents: sums differ by the areas shown"),
        })
    return rows


def sink_cells(r: Mapping[str, Any]) -> list[dict[str, str]]:
    """A change-table row's sink as shown: the sink (t C/yr) marked ◐ where it includes filled land
    (:func:`greensink.report.sinks.partly_observed_of`), and its interval."""
    sink = to_float(r.get("sink_t_yr"))
    dec = auto_decimals(sink) if math.isfinite(sink) else None
    shown = num_cell(sink, sign=True)
    if partly_observed_of(r) and math.isfinite(sink):
        shown = cell(f"{shown['text']} {PARTLY_MARK}", "num partly", PARTLY_TITLE)
    return [shown, cell(format_interval(r.get("sink_t_yr_lo"), r.get("sink_t_yr_hi"), dec), "num interval")]


def observed_cells(r: Mapping[str, Any], estimate: str = "sink_observed_t_yr", title: str = PARTLY_TITLE,
                   flag: str = "sink_partly_observed", pct_column: str = "observed_both_pct") -> list[dict[str, str]]:
    """The share of a zone's green-space land seen clearly (``pct_column``: "◐ 62.5 %" where ``flag`` says the value
    includes filled land, "100.0 %", "—" where the zone has no typed land) and the value of that land alone
    (``estimate``) with its interval (``estimate``_lo/_hi; "—" where too little was seen)."""
    seen = seen_both_text(r.get(pct_column))
    if partly_observed_of(r, flag=flag, pct_column=pct_column):
        cells = [cell(f"{PARTLY_MARK} {seen}", "num partly", title)]
    else:
        cells = [cell(seen, "num nodata" if seen == DASH else "num")]
    obs = to_float(r.get(estimate))
    dec = auto_decimals(obs) if math.isfinite(obs) else None
    return [*cells, num_cell(obs, dec, sign=True),
            cell(format_interval(r.get(f"{estimate}_lo"), r.get(f"{estimate}_hi"), dec), "num interval")]


def seen_both_cells(r: Mapping[str, Any]) -> list[dict[str, str]]:
    """A change-table row's share seen in both years and its sink over that land (:func:`observed_cells`)."""
    return observed_cells(r)


def change_row(r: pd.Series) -> dict[str, Any]:
    """A zone of a change table. The row is red only for a significant loss (sink_class "loss"); a zone whose
    interval includes 0 reads "no significant change". Two "no net loss" checks: of carbon, from the sink's
    significance (no_net_carbon_loss), and of vegetated area (no_net_loss), the latter over the land both
    years saw (``green_area_change_compared_ha``; ``green_area_change_ha`` in tables written before it). A
    zone whose sink includes filled land is marked ◐ with its share seen in both years and the sink of that
    land beside (:func:`seen_both_cells`)."""
    change = to_float(r.get("green_area_change_compared_ha", r.get("green_area_change_ha")))
    if not math.isfinite(change) or is_missing(r.get("no_net_loss")):
        nnl = cell(DASH, "center nodata")
    elif bool(r.get("no_net_loss")):
        nnl = cell("✓", "center met", "绿量无净损失 no net loss of vegetated area")
    else:
        nnl = cell("✗", "center missed", "绿量减少 vegetated area decreased")
    sink_class = sink_class_of(r)
    carbon_ok = no_net_carbon_loss_of(r)
    if carbon_ok is None:
        nncl = cell(DASH, "center nodata")
    elif carbon_ok:
        nncl = cell("✓", "center met", "无碳净损失：无显著损失 no net carbon loss: no significant loss")
    else:
        nncl = cell("✗", "center missed", "显著碳损失：区间全部小于 0 significant carbon loss: the interval lies below 0")
    sink = to_float(r.get("sink_t_yr"))
    dec = auto_decimals(sink) if math.isfinite(sink) else None
    cells = [
        cell(text_or_dash(r.get("name")), "name"),
        cell(text_or_dash(r.get("zone_id")), "id"),
        num_cell(r.get("area_ha")),
        num_cell(r.get("carbon_t_from")),
        num_cell(r.get("carbon_t_to")),
        *sink_cells(r),
        cell(SINK_CLASS_LABELS[sink_class], f"sinkclass {sink_class.replace(' ', '-')}"),
        *seen_both_cells(r),
        num_cell(r.get("sink_u_pct"), 1),
        num_cell(r.get("sink_t_yr_conservative", r.get("sink_t_yr_lo")), dec, sign=True),
        num_cell(r.get("sink_t_ha_yr"), 2, sign=True),
        num_cell(r.get("sink_co2e_t_yr"), sign=True),
        nncl,
        num_cell(change, 2, sign=True),
        nnl,
    ]
    cls = " ".join(c for c in ("loss" if sink_class == "loss" else "", "partly" if partly_observed_of(r) else "") if c)
    return {"cells": cells, "cls": cls}


def _loss_row(r: pd.Series) -> dict[str, Any]:
    return {"cls": "loss partly" if partly_observed_of(r) else "loss", "cells": [
        cell(text_or_dash(r.get("name")), "name"), cell(text_or_dash(r.get("zone_id")), "id"), *sink_cells(r),
        num_cell(r.get("sink_u_pct"), 1), num_cell(r.get("sink_t_ha_yr"), 2, sign=True),
        *seen_both_cells(r),
    ]}


def seen_both_headers(interval: str) -> list[str]:
    """Headers of :func:`seen_both_cells`: the share seen in both years, the sink of that land and its interval."""
    return ["两年均看清 Seen both years (% of green space)", "两年均看清部分的年碳汇 Sink of the land seen both years (t C/yr)",
            f"该部分 {interval} 区间 its interval (t C/yr)"]


def losses_section(table_id: str, df: pd.DataFrame, interval: str) -> dict[str, Any]:
    """The largest significant losses of a level (only zones classed "loss") and the class counts."""
    classes = pd.Series(sink_class_list(df), dtype=object)
    counts = {c: int((classes == c).sum()) for c in SINK_CLASSES}
    shown = largest_losses(df)
    headers = ["名称 Name", "编号 Zone ID", "年碳汇 Sink (t C/yr)", f"{interval} 区间 interval (t C/yr)", "U (%)",
               "单位面积 Sink (t C/ha/yr)", *seen_both_headers(interval)]
    table = {"id": table_id, "headers": headers, "rows": [_loss_row(r) for _, r in shown.iterrows()], "note": None,
             "n": len(shown)}
    return {"table": table if len(shown) else None, "counts": counts, "shown": len(shown),
            "counts_text": class_counts_text(counts)}


def level_table(table_id: str, headers: Sequence[str], df: pd.DataFrame, row_fn: Any, key: str,
                note_files: Sequence[str], what: tuple[str, str]) -> dict[str, Any]:
    """A level table; with more than MAX_ROWS zones only the top and bottom by ``key``, and a note."""
    first, second, hidden, skipped = _ranked(df, key)
    rows = [row_fn(r) for _, r in first.iterrows()]
    note = None
    if second is not None:
        rows.append({"gap": f"… {hidden:,} 个单元未列出 zones not shown …"})
        rows.extend(row_fn(r) for _, r in second.iterrows())
        note = {"n": f"{len(df):,}", "each": SHOW_EACH_END, "what_zh": what[0], "what_en": what[1],
                "files": list(note_files), "skipped": f"{skipped:,}" if skipped else None}
    return {"id": table_id, "headers": list(headers), "rows": rows, "note": note, "n": len(df)}


def _type_codes(df: pd.DataFrame, type_names: Mapping[str, str]) -> list[str]:
    """Green-space types with both carbon_t_<T> and green_space_area_ha_<T> columns, type_names order first."""
    found = {c[len("carbon_t_"):] for c in df.columns if c.startswith("carbon_t_")}
    found &= {c[len("green_space_area_ha_"):] for c in df.columns if c.startswith("green_space_area_ha_")}
    return [t for t in type_names if t in found] + sorted(found - set(type_names))


def known_sum(values) -> float:
    """Sum of a zone column over the zones, or NaN when any zone's value is unknown: a total that left
    out unobserved zones would read as the whole (no data is never zero, nor a smaller number)."""
    v = np.asarray(values, dtype=float)
    return float(v.sum()) if v.size and np.isfinite(v).all() else math.nan


def type_table(year: int, df: pd.DataFrame, type_names: Mapping[str, str]) -> dict[str, Any]:
    total = known_sum(column(df, "carbon_t"))
    rows = []
    for code in _type_codes(df, type_names):
        c = known_sum(column(df, f"carbon_t_{code}"))
        area = float(np.nansum(column(df, f"green_space_area_ha_{code}")))
        rows.append({"cls": "", "cells": [
            cell(code, "id"), cell(type_names.get(code, code), "name"), num_cell(c),
            num_cell(100.0 * c / total if total > 0 else math.nan, 1), num_cell(area),
            num_cell(c / area if area > 0 else math.nan, 2),
        ]})
    gs_area = float(np.nansum(column(df, "green_space_area_ha")))
    rows.append({"cls": "total", "cells": [
        cell("", "id"), cell("合计 Total", "name"), num_cell(total), num_cell(100.0 if total > 0 else math.nan, 1),
        num_cell(gs_area), num_cell(total / gs_area if gs_area > 0 else math.nan, 2),
    ]})
    headers = ["代码 Code", "绿地类型 Green-space type", "碳储量 Carbon (t C)", "占比 Share (%)",
               "绿地面积 Green-space area (ha)", "单位绿地碳密度 t C/ha of green space"]
    return {"id": f"types-{year}", "headers": headers, "rows": rows, "note": None, "n": len(rows)}


def target_tables(targets: pd.DataFrame | None, levels: Sequence[str], years: Sequence[int]) -> dict[str, Any]:
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
            rel = np.abs(column(missed, "gap")) / np.maximum(np.abs(column(missed, "target")), 1e-12)
            shown = missed.iloc[np.argsort(-rel, kind="stable")[: 2 * SHOW_EACH_END]]
            note = {"n": f"{len(sub):,}", "shown": len(shown)}
        rows = []
        for _, r in shown.iterrows():
            s = str(r["status"])
            cls, symbol, label = STATUS.get(s, ("", "", s))
            dec = indicator_decimals(str(r.get("indicator", "")))
            rows.append({"cls": cls, "cells": [
                cell(text_or_dash(r.get("label", r.get("indicator"))), "name"),
                cell(text_or_dash(r.get("name")), "name"),
                cell(text_or_dash(r.get("zone_id")), "id"),
                num_cell(r.get("value"), dec),
                cell(f"{OPS.get(str(r.get('op')), text_or_dash(r.get('op')))} {format_number(r.get('target'), dec)}", "num"),
                cell(f"{symbol} {label}", f"status {cls}"),
                num_cell(r.get("gap"), dec, sign=True),
            ]})
        tables.append({"level": level_label(level), "counts": level_counts, "note": note,
                       "table": {"id": f"targets-{level}", "headers": headers, "rows": rows, "note": None,
                                 "n": len(rows)}})
    year = None
    if "year" in targets.columns:
        year = ", ".join(str(y) for y in sorted(set(targets["year"].tolist())))
    elif years:
        year = str(max(years))
    return {"tables": tables, "counts": counts, "year": year}


TARGET_STATUSES = ("met", "missed", "no data", "no target")


def zone_target_status(targets: pd.DataFrame | None, level: str, zone_ids: Sequence[Any]) -> list[str]:
    """Each zone's target status at ``level`` (the rows of :func:`greensink.targets.evaluate`): "missed" when a
    target is missed, "met" when every target is met, "no data" when none is missed and some value is unknown,
    "no target" when the level has no target for the zone."""
    if targets is None or len(targets) == 0 or not {"status", "level", "zone_id"} <= set(targets.columns):
        return ["no target"] * len(zone_ids)
    sub = targets[targets["level"].astype(str) == level]
    by_zone = sub.groupby(sub["zone_id"].astype(str))["status"].agg(lambda s: set(s.astype(str)))
    out = []
    for z in zone_ids:
        found = by_zone.get(str(z))
        if not found:
            out.append("no target")
        elif "missed" in found:
            out.append("missed")
        elif found == {"met"}:
            out.append("met")
        else:
            out.append("no data")
    return out


def model_section(year: int, model: Mapping[str, Any], type_names: Mapping[str, str]) -> dict[str, Any]:
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
            cell(str(code), "id"), cell(name, "name"), cell(source_text),
            cell(text_or_dash(tm.get("form"))), cell(" + ".join(predictor_label(q, unit=True) for q in preds), "predictors"),
            cell(formula(str(tm.get("form")), params, preds), "formula"),
            num_cell(tm.get("n"), 0), num_cell(cv.get("r2"), 2), num_cell(cv.get("rmse_t_ha"), 2),
            num_cell(cv.get("bias_t_ha"), 2, sign=True), num_cell(cv.get("n_folds"), 0), cell(rivals_text(tm), "rivals"),
        ]})
        if fallback:
            warnings.append({"code": str(code), "name": name, "reason": text_or_dash(tm.get("reason")),
                             "uncertainty": format_number(tm.get("uncertainty_pct"), 0),
                             "worse_than_mean": bool(tm.get("cv_worse_than_mean")), "kept": False})
        elif tm.get("cv_worse_than_mean"):  # kept (no table row): say so beside the table
            warnings.append({"code": str(code), "name": name, "kept": True,
                             "reason": "; ".join(text_or_dash(w) for w in (tm.get("warnings") or []))})
    headers = ["代码 Code", "绿地类型 Type", "来源 Source", "形式 Form", "预测变量 Predictors",
               "公式 Formula (C in t C/ha)", "样地数 n", "交叉验证 CV R²", "CV RMSE (t C/ha)", "CV 偏差 bias (t C/ha)", "折数 folds",
               "难以区分的形式 Rivals within 1 SE (max. difference)"]
    table = {"id": f"models-{year}", "headers": headers, "rows": rows, "note": None, "n": len(rows)}
    return {"year": year, "table": table, "warnings": warnings, "predictor": x,
            "notes": [text_or_dash(n) for n in (model.get("notes") or [])],
            "anchor_year": next((tm.get("selection", {}).get("anchor_year") for tm in (model.get("types") or {}).values()
                                 if isinstance(tm, Mapping) and (tm.get("selection") or {}).get("mode") == "first_year"), None),
            "n_bootstrap": model.get("n_bootstrap"), "min_plots": model.get("min_plots"),
            "plot_carbon": plot_carbon_text(model.get("plot_carbon"))}


def flag_rows(years: Sequence[int], tables: Mapping[int, Mapping[str, pd.DataFrame]],
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
                rows.append({"year": str(year), "level": level_label(level), "name": text_or_dash(r.get("name")),
                             "zone_id": text_or_dash(r.get("zone_id")), "flag": str(r["plausibility_flag"])})
            if len(flagged) > MAX_FLAGS:
                more.append({"year": str(year), "level": level_label(level), "n": f"{len(flagged):,}",
                             "shown": MAX_FLAGS, "file": f"results/{year}/zones/{level}.gpkg"})
    return {"rows": rows, "more": more}
