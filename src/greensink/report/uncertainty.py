"""Report uncertainty section: U % per level and year (median and range) of stock and sink, the dominant
variance source and what would narrow it in one bilingual sentence, the variance shares per source,
the plots needed per type for the target U %, and the calibration benchmark's labels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from greensink.report.calibration import calibration_label
from greensink.report.sinks import class_counts_text, sink_class_list
from greensink.report.text import (
    DASH,
    LEVEL_NAMES_ZH,
    SOURCES,
    cell,
    column,
    format_interval,
    format_number,
    level_label,
    num_cell,
    text_or_dash,
    to_float,
)
from greensink.uncertainty import SOURCES as VARIANCE_SOURCES

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
    shares = np.column_stack([column(df, c) for c in cols.values()])
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


def uncertainty_section(years: Sequence[int], tables: Mapping[int, Mapping[str, pd.DataFrame]],
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
        return cell(DASH if d["source"] is None else f"{d['source']} ({d['share']} %)", "nodata" if d["source"] is None else "")

    def coverage_cell(level: str, what: str) -> dict[str, str]:
        cov = to_float((cal_levels.get(level) or {}).get(what))
        label = calibration_label(calibration, level, what)
        return cell(format_number(cov, 2) + (" ⚠" if label else ""), "num missed" if label else "num", label or "")

    stock_rows, sink_rows, share_rows, levels_out = [], [], [], []
    for level in levels:
        for year in years:
            df = tables.get(year, {}).get(level)
            if df is None:
                continue
            u = u_pct_summary(column(df, "carbon_u_pct"))
            cells = [cell(level_label(level), "name"), cell(str(year)), cell(u["n"], "num"), cell(u["median"], "num"),
                     cell(u["range"], "num interval"), source_cell(variance_breakdown(df), level, "stock")]
            if calibration:
                cells.append(coverage_cell(level, "stock"))
            stock_rows.append({"cls": "", "cells": cells})
        for y0, y1 in pairs:
            df = change[(y0, y1)].get(level)
            if df is None:
                continue
            u = u_pct_summary(column(df, "sink_u_pct"))
            classes = {c: n for c, n in pd.Series(sink_class_list(df)).value_counts().items()}
            cells = [cell(level_label(level), "name"), cell(f"{y0}–{y1}"), cell(u["n"], "num"), cell(u["median"], "num"),
                     cell(u["range"], "num interval"), cell(class_counts_text(classes)),
                     source_cell(variance_breakdown(df), level, "sink")]
            if calibration:
                cells.append(coverage_cell(level, "sink"))
            sink_rows.append({"cls": "", "cells": cells})
        stock_b = variance_breakdown(tables.get(latest, {}).get(level)) if latest is not None else None
        sink_b = variance_breakdown(change[last_pair].get(level)) if last_pair is not None else None
        for label, b in ((f"碳储量 stock {latest}", stock_b),
                         (f"碳汇 sink {last_pair[0]}–{last_pair[1]}" if last_pair else "", sink_b)):
            if b is not None:
                share_rows.append({"cls": "", "cells": [cell(level_label(level), "name"), cell(label)]
                                   + [num_cell(b[s], 0) for s in VARIANCE_SOURCES]})
        latest_df = tables.get(latest, {}).get(level)
        if latest_df is None:
            continue
        stock_u = u_pct_summary(column(latest_df, "carbon_u_pct"))
        levels_out.append({
            "level": level_label(level), "year": latest, "u": stock_u,
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
            n, need = to_float(tm.get("n")), to_float(tm.get("plots_needed"))
            more = max(0.0, need - n) if math.isfinite(need) and math.isfinite(n) else math.nan
            plots_rows.append({"cls": "" if fitted else "fallback", "cells": [
                cell(str(code), "id"), cell(type_names.get(code, code), "name"),
                cell(SOURCES.get(str(tm.get("source")), text_or_dash(tm.get("source")))),
                num_cell(n if fitted else tm.get("n"), 0), num_cell(tm.get("curve_u_pct"), 1), num_cell(target, 1),
                num_cell(need, 0) if fitted else cell(f"{DASH}（系数表，需先有至少 {text_or_dash(model.get('min_plots'))} 个样地才能拟合 "
                                                      f"coefficient table: at least {text_or_dash(model.get('min_plots'))} plots to fit a curve)"),
                num_cell(more, 0) if fitted else cell(DASH, "num nodata"),
            ]})
    plots_headers = ["代码 Code", "绿地类型 Type", "来源 Source", "现有样地 Plots now (n)", "曲线 U Curve U now (%)",
                     "目标 U Target U (%)", "所需样地 Plots needed", "需增加 Plots to add"]
    cal = None
    if calibration:
        cal = {"date": text_or_dash(calibration.get("date")), "realisations": text_or_dash(calibration.get("realisations")),
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
