"""Report calibration: the calibration benchmark's measured interval coverage and the labels it puts
on a level whose coverage is far from nominal (package data ``greensink/data/calibration.json``, the
JSON summary of benchmarks/calibration.py, when shipped).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from greensink.package_data import read_text, resource
from greensink.report.text import DASH, LEVEL_NAMES_ZH, text_or_dash, to_float

CALIBRATION_RESOURCE = "calibration.json"  # package data greensink/data/ (benchmarks/calibration.py's summary)
CALIBRATION_TOLERANCE = 0.05  # measured coverage further than this from nominal (0.85–0.95 for 90 %) is labelled


def load_calibration() -> dict[str, Any] | None:
    """The calibration benchmark's latest measured coverage shipped with greensink (package data
    ``greensink/data/calibration.json``, the JSON summary of benchmarks/calibration.py), normalised by
    :func:`read_calibration`; None when greensink ships none."""
    if not resource(CALIBRATION_RESOURCE).is_file():
        return None
    return read_calibration(json.loads(read_text(CALIBRATION_RESOURCE)))


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
    nominal = to_float(data.get("nominal", settings.get("nominal", 0.9)))
    levels = {}
    for level, rec in (data.get("levels") or {}).items():
        if isinstance(rec, Mapping):
            stock, sink = (to_float(rec.get(k, rec.get(f"{k}_coverage"))) for k in ("stock", "sink"))
            if math.isfinite(stock) or math.isfinite(sink):
                levels[str(level)] = {"stock": stock, "sink": sink}
    if not levels:
        return None
    return {"date": text_or_dash(data.get("date", data.get("date_utc")))[:10], "realisations": n,
            "nominal": nominal if math.isfinite(nominal) else 0.9, "levels": levels}


def calibration_label(calibration: Mapping[str, Any] | None, level: str, what: str) -> str | None:
    """The label of a level's stock or sink intervals (``what``) where the benchmark's measured coverage is
    further than :data:`CALIBRATION_TOLERANCE` from nominal (outside 0.85–0.95 for 90 %), else None."""
    if not calibration:
        return None
    cov = to_float(((calibration.get("levels") or {}).get(level) or {}).get(what))
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
