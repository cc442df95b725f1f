"""Report sink classes: how a change-table row reads (gain, loss, no significant change, unknown).

A zone whose sink interval includes 0 is never a loss; tables written before ``sink_class`` existed
are classed from their interval (:func:`greensink.change.sink_classes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from greensink.change import PCT_EPS, SINK_CLASSES, sink_classes
from greensink.report.text import DASH, column, format_number, is_missing, to_float

SINK_CLASS_LABELS = {
    "gain": "净吸收 gain",
    "loss": "损失 loss",
    "no significant change": "无显著变化 no significant change",
    "unknown": "未知 unknown",
}
"""How each ``sink_class`` of the change tables (greensink.change.sink_classes) is shown."""
MAX_LOSSES = 10  # zones listed per level under "largest significant losses"


def class_counts_text(counts: Mapping[str, int]) -> str:
    """"净吸收 gain 3 · 损失 loss 1 · 无显著变化 no significant change 36" (unknown only when there is one)."""
    return " · ".join(f"{SINK_CLASS_LABELS[c]} {counts.get(c, 0):,}" for c in SINK_CLASSES
                      if c != "unknown" or counts.get(c, 0))


def sink_class_of(r: Mapping[str, Any]) -> str:
    """A change-table row's ``sink_class``; derived from its interval (greensink.change.sink_classes) for
    tables written before the column existed. A zone whose interval includes 0 is never a loss."""
    cls = r.get("sink_class")
    if isinstance(cls, str) and cls in SINK_CLASSES:
        return cls
    return sink_classes(np.array([to_float(r.get("sink_t_yr"))]), np.array([to_float(r.get("sink_t_yr_lo"))]),
                        np.array([to_float(r.get("sink_t_yr_hi"))]))[0]


def sink_class_list(df: pd.DataFrame) -> list[str]:
    """:func:`sink_class_of` for every row of a change table."""
    return [sink_class_of(r) for r in df.to_dict("records")]


def no_net_carbon_loss_of(r: Mapping[str, Any]) -> bool | None:
    """``no_net_carbon_loss`` of a change-table row (False only for a significant loss), None where unknown."""
    v = r.get("no_net_carbon_loss")
    if not is_missing(v):
        return bool(v)
    cls = sink_class_of(r)
    return None if cls == "unknown" else cls != "loss"


def largest_losses(df: pd.DataFrame, n: int = MAX_LOSSES) -> pd.DataFrame:
    """The zones classed "loss" (interval wholly below 0), largest loss first, at most ``n``; never a zone
    whose interval includes 0."""
    classes = np.array(sink_class_list(df), dtype=object)
    losses = df[classes == "loss"]
    order = np.argsort(column(losses, "sink_t_yr"), kind="stable")
    return losses.iloc[order[:n]]


SINK_VERDICTS = {
    "unknown": "无数据 no data",
    "no significant change": "无显著变化：区间包含零，与无变化难以区分 no significant change: the interval includes zero",
    "gain": "净吸收 net uptake: the green space took up carbon (the interval lies above zero)",
    "loss": "净损失 net loss: the green space lost carbon (the interval lies below zero)",
}


PARTLY_MARK = "◐"
"""The mark of a zone whose sink includes filled land (``sink_partly_observed``): beside its sink and its share."""
PARTLY_TITLE = ("部分绿地只在一年看清，年碳汇含按同类绿地平均碳密度填补的部分 part of the green space was seen clearly in one "
                "year only: the sink includes land filled in with the average density of its green-space type")


TREND_PARTLY_TITLE = ("部分绿地并非每年都看清，趋势含按同类绿地平均碳密度填补的部分 part of the green space was not seen "
                      "clearly in every year: the trend includes land filled in with the average density of its "
                      "green-space type")
"""The ◐ mark's title in the trend tables (``trend_partly_observed``)."""


def partly_observed_of(r: Mapping[str, Any], flag: str = "sink_partly_observed",
                       pct_column: str = "observed_both_pct") -> bool | None:
    """Whether a change-table row's sink includes filled land: its ``sink_partly_observed`` (True, 1, "True"),
    else from ``observed_both_pct`` below 100 %; None where neither is known (no typed land, or a table
    written before the columns existed). A trend-table row: ``flag="trend_partly_observed"``,
    ``pct_column="observed_all_pct"``."""
    v = r.get(flag)
    if not is_missing(v):
        if isinstance(v, str):
            return v.strip().lower() in ("true", "1", "yes")
        return bool(v)
    pct = to_float(r.get(pct_column))
    return None if not np.isfinite(pct) else bool(pct < 100.0 - PCT_EPS)


def seen_both_text(pct: Any) -> str:
    """A zone's ``observed_both_pct`` as shown: "62.5 %", "100.0 %"; "> 99.9 %" and "< 0.1 %" where one decimal
    would round a partly observed share to whole or a seen one to nothing; "—" where unknown."""
    v = to_float(pct)
    if not np.isfinite(v):
        return DASH
    if 100.0 - PCT_EPS > v > 99.95:
        return "> 99.9 %"
    if 0.0 < v < 0.05:
        return "< 0.1 %"
    return f"{format_number(v, 1)} %"


def partly_observed_count(df: pd.DataFrame, **columns: str) -> int:
    """Zones of a change table whose sink includes filled land (:func:`partly_observed_of` True); of a trend
    table with ``columns`` as for :func:`partly_observed_of`."""
    return sum(bool(partly_observed_of(r, **columns)) for r in df.to_dict("records"))
