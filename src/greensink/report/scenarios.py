"""Report scenario comparison (issue 13 item 6): the planned states of config ``scenarios`` side by side.

:class:`ScenarioProducts` holds what rule scenario_summary and rules scenario_zones wrote
(``results/scenarios/summary.csv`` and ``results/scenarios/{scenario}/zones/{level}.csv``, read by
:func:`read_scenarios`); :func:`scenario_section` makes the context of the template's ``#scenarios``
section: per scenario the stock of the first level with its interval, the baseline stock and the
difference from the baseline with its interval from paired draws and what the interval says; per
scenario, level and target the zones meeting it in the plan and in the baseline; per scenario the
zones of the second level with their difference. A difference whose interval holds zero is "no
significant change", never a gain or a loss; an unknown value is "—", never 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from greensink.report.text import (
    DASH,
    LEVEL_NAMES_ZH,
    OPS,
    auto_decimals,
    cell,
    format_interval,
    format_number,
    is_missing,
    level_label,
    num_cell,
    text_or_dash,
    to_float,
)

MAX_ZONE_ROWS = 30  # zones of the second level listed per scenario (largest absolute differences first)
VERDICTS = {  # what a difference's interval says -> (css class, text)
    "gain": ("met", "增汇 gain (interval above 0)"),
    "loss": ("missed", "减汇 loss (interval below 0)"),
    "no significant change": ("", "无显著变化 no significant change (interval holds 0)"),
    "unknown": ("nodata", "未知 unknown (no data)"),
}


@dataclass
class ScenarioProducts:
    """The scenario products the report reads."""

    summary: pd.DataFrame  # results/scenarios/summary.csv (greensink.scenario.tables.SUMMARY_COLUMNS)
    zones: dict[str, dict[str, pd.DataFrame]] = field(default_factory=dict)  # scenario -> level -> zone table


def read_scenarios(paths: Sequence[str | Path]) -> ScenarioProducts | None:
    """Read ``results/scenarios/summary.csv`` and any ``results/scenarios/{scenario}/zones/{level}.csv``
    among ``paths``, each recognised by its place. None without paths (no scenarios configured)."""
    paths = [Path(p) for p in paths]
    if not paths:
        return None
    summaries = [p for p in paths if p.name == "summary.csv"]
    if len(summaries) != 1:
        raise ValueError(f"scenario products: one results/scenarios/summary.csv expected. Got {[str(p) for p in paths]}.")
    out = ScenarioProducts(summary=pd.read_csv(summaries[0], dtype={"scenario": str, "level": str, "indicator": str}))
    for p in paths:
        if p.suffix == ".csv" and p.parent.name == "zones":
            out.zones.setdefault(p.parent.parent.name, {})[p.stem] = pd.read_csv(
                p, dtype={"zone_id": str, "parent_id": str})
    return out


def verdict(estimate: Any, lo: Any, hi: Any) -> str:
    """``gain`` where the interval lies wholly above 0, ``loss`` wholly below, ``no significant change`` where
    it holds 0, ``unknown`` where the estimate or either end is missing."""
    e, a, b = to_float(estimate), to_float(lo), to_float(hi)
    if not (math.isfinite(e) and math.isfinite(a) and math.isfinite(b)):
        return "unknown"
    if a > 0:
        return "gain"
    if b < 0:
        return "loss"
    return "no significant change"


def _name(r: Mapping[str, Any]) -> str:
    """A scenario as shown: its label and (name), or its name alone without a label."""
    name = text_or_dash(r.get("scenario"))
    return name if is_missing(r.get("label")) or not str(r.get("label")).strip() else f"{r['label']} ({name})"


def _verdict_cell(r: Mapping[str, Any], prefix: str = "difference_t") -> dict[str, str]:
    cls, text = VERDICTS[verdict(r.get(prefix), r.get(f"{prefix}_lo"), r.get(f"{prefix}_hi"))]
    return cell(text, cls)


def _difference_cells(r: Mapping[str, Any], prefix: str = "difference_t") -> list[dict[str, str]]:
    d = to_float(r.get(prefix))
    dec = auto_decimals(d) if math.isfinite(d) else None
    iv = format_interval(r.get(f"{prefix}_lo"), r.get(f"{prefix}_hi"), dec)
    return [num_cell(d, dec, sign=True), cell(iv, "num nodata" if iv == DASH else "num")]


def stock_table(summary: pd.DataFrame, level: str, interval: str) -> dict[str, Any]:
    """One row per scenario at ``level``: baseline year, changed area, stock with interval, baseline stock,
    difference with interval and its verdict (the level's totals repeat on each target row: the first is taken)."""
    headers = ["情景 Scenario", "基准年 Baseline year", "变更面积 Changed area (ha)", "情景碳储量 Stock (t C)",
               f"{interval} 区间 interval (t C)", "基准碳储量 Baseline stock (t C)", "与基准之差 Difference (t C)",
               f"{interval} 区间 interval (t C)", "判断 Reading"]
    rows = []
    for _, r in summary[summary["level"].astype(str) == level].groupby("scenario", sort=False).head(1).iterrows():
        c = to_float(r.get("carbon_t"))
        dec = auto_decimals(c) if math.isfinite(c) else None
        iv = format_interval(r.get("carbon_t_lo"), r.get("carbon_t_hi"), dec)
        rows.append({"cls": "", "cells": [
            cell(_name(r), "name"),
            cell(DASH if is_missing(r.get("baseline_year")) else str(int(r["baseline_year"]))),
            num_cell(r.get("changed_area_ha"), 2), num_cell(c, dec), cell(iv, "num nodata" if iv == DASH else "num"),
            num_cell(r.get("baseline_carbon_t"), dec), *_difference_cells(r), _verdict_cell(r)]})
    return {"id": f"scenarios-stock-{level}", "headers": headers, "rows": rows, "note": None, "n": len(rows)}


def targets_table(summary: pd.DataFrame) -> dict[str, Any] | None:
    """One row per scenario × level × target: zones meeting, missing and without data in the plan, zones
    meeting it in the baseline and the change. None when no level has a target."""
    rows_df = summary[summary["indicator"].fillna("").astype(str) != ""]
    if not len(rows_df):
        return None
    headers = ["情景 Scenario", "层级 Level", "指标 Indicator", "目标 Target", "达标 Met", "未达标 Missed",
               "无数据 No data", "基准达标 Met in baseline", "变化 Change in met", "平均值 Mean value",
               "基准平均值 Baseline mean"]
    rows = []
    for r in rows_df.to_dict("records"):
        change = to_float(r.get("met_change"))
        cls = "met" if change > 0 else "missed" if change < 0 else ""
        op = OPS.get(str(r.get("op")), text_or_dash(r.get("op")))
        rows.append({"cls": "", "cells": [
            cell(_name(r), "name"), cell(level_label(str(r.get("level")))),
            cell(text_or_dash(r.get("indicator") if is_missing(r.get("indicator_label")) else r.get("indicator_label"))),
            cell(f"{op} {format_number(r.get('target'))}"),
            num_cell(r.get("met"), 0), num_cell(r.get("missed"), 0), num_cell(r.get("no_data"), 0),
            num_cell(r.get("met_baseline"), 0), {**num_cell(change, 0, sign=True), "cls": f"num {cls}".strip()},
            num_cell(r.get("value_mean")), num_cell(r.get("value_mean_baseline"))]})
    return {"id": "scenarios-targets", "headers": headers, "rows": rows, "note": None, "n": len(rows)}


def zone_table(df: pd.DataFrame, table_id: str, interval: str) -> dict[str, Any]:
    """The zones of one scenario and level with a difference from the baseline, largest absolute difference
    first (zones whose difference is unknown last), at most :data:`MAX_ZONE_ROWS`."""
    headers = ["名称 Name", "编号 Zone ID", "变更面积 Changed area (ha)", "基准碳储量 Baseline (t C)",
               "情景碳储量 Scenario (t C)", "与基准之差 Difference (t C)", f"{interval} 区间 interval (t C)", "判断 Reading"]
    order = pd.to_numeric(df.get("difference_t"), errors="coerce").abs().sort_values(ascending=False, na_position="last")
    rows = []
    for r in df.loc[order.index[:MAX_ZONE_ROWS]].to_dict("records"):
        rows.append({"cls": "", "cells": [
            cell(text_or_dash(r.get("name")), "name"), cell(text_or_dash(r.get("zone_id")), "id"),
            num_cell(r.get("changed_area_ha"), 2), num_cell(r.get("baseline_carbon_t")), num_cell(r.get("carbon_t")),
            *_difference_cells(r), _verdict_cell(r)]})
    return {"id": table_id, "headers": headers, "rows": rows, "note": None, "n": len(rows)}


def scenario_section(products: ScenarioProducts | None, *, levels: Sequence[str], interval: str) -> dict[str, Any] | None:
    """The context of the template's ``#scenarios`` section, or None without scenarios: ``stock`` the first
    level's table (:func:`stock_table`), ``targets`` (:func:`targets_table`), ``zones`` one table per scenario
    of the second level's zones with a difference, ``names`` the scenarios in the summary's order."""
    if products is None or not len(products.summary):
        return None
    levels = list(levels)
    summary = products.summary
    first = levels[0] if levels else str(summary["level"].iloc[0])
    zone_level = levels[1] if len(levels) > 1 else first
    names = list(dict.fromkeys(summary["scenario"].astype(str)))
    first_rows = summary.drop_duplicates("scenario").set_index(summary.drop_duplicates("scenario")["scenario"].astype(str))
    zones = []
    for name in names:
        df = products.zones.get(name, {}).get(zone_level)
        if df is None:
            continue
        zones.append({"scenario": name, "label": _name(first_rows.loc[name].to_dict()),
                      "files": [f"results/scenarios/{name}/zones/{zone_level}.gpkg",
                                f"results/scenarios/{name}/zones/{zone_level}.csv"],
                      "table": zone_table(df, f"scenarios-zones-{name}", interval), "n": len(df)})
    return {"names": names, "level": level_label(first), "zone_level": level_label(zone_level),
            "zone_level_zh": LEVEL_NAMES_ZH.get(zone_level, zone_level), "max_rows": MAX_ZONE_ROWS,
            "stock": stock_table(summary, first, interval), "targets": targets_table(summary), "zones": zones}
