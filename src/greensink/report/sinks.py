"""Report sink classes: how a change-table row reads (gain, loss, no significant change, unknown).

A zone whose sink interval includes 0 is never a loss; tables written before ``sink_class`` existed
are classed from their interval (:func:`greensink.change.sink_classes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from greensink.change import SINK_CLASSES, sink_classes
from greensink.report.text import column, is_missing, to_float

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
