"""Report charts: the stock of zones over the years and the attribution of a stock change, as inline PNG.

Same conventions as :mod:`greensink.report.maps`: matplotlib's object-oriented API, no pyplot, English
labels (matplotlib's default fonts have no Chinese glyphs; the Chinese is in the HTML captions), zones
named by their ids in legends (names may be Chinese). A missing value (NaN) is left out of a chart, never
drawn as 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from greensink.report.maps import DPI, figure_fonts, png_uri

CHART_SIZE_IN = (7.0, 4.2)
MAX_SERIES = 12  # zones drawn in one stock chart; the table lists every zone
PART_COLOURS = {"gain": "#1b7837", "growth": "#7fbf7b", "conversion": "#9970ab", "loss": "#b2182b",
                "other": "#bdbdbd"}
"""The colour of each attribution part (greensink.change.ATTRIBUTION_PARTS) in every attribution chart."""


@figure_fonts
def stock_chart(years: Sequence[int], series: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]], *,
                title: str, label: str = "carbon stock (t C)") -> str:
    """One line per zone (``series[zone_id]`` = estimate, lower, upper per year of ``years``, NaN unknown)
    with its interval as error bars; years with an unknown stock are gaps in the line."""
    fig = Figure(figsize=CHART_SIZE_IN, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    x = np.asarray(years, dtype=float)
    n = len(series)
    offsets = np.linspace(-0.08, 0.08, n) if n > 1 else np.zeros(1)  # error bars side by side
    for k, (zone, (est, lo, hi)) in enumerate(list(series.items())[:MAX_SERIES]):
        est, lo, hi = (np.asarray(v, dtype=float) for v in (est, lo, hi))
        ok = np.isfinite(est)
        err = np.vstack([np.where(np.isfinite(lo), est - lo, 0.0), np.where(np.isfinite(hi), hi - est, 0.0)])
        ax.errorbar(x[ok] + offsets[k], est[ok], yerr=err[:, ok], marker="o", capsize=3, linewidth=1.4,
                    label=str(zone))
    ax.set_xticks(x, [str(y) for y in years])
    ax.set_xlabel("year")
    ax.set_ylabel(label)
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", color="#e0e0e0")
    if 1 < n:
        ax.legend(fontsize=8, ncols=2 if n > 6 else 1, title="zone id" + (f" (first {MAX_SERIES})" if n > MAX_SERIES
                                                                         else ""), title_fontsize=8)
    ax.set_title(title)
    return png_uri(fig)


@figure_fonts
def attribution_chart(zones: Sequence[str], parts: Mapping[str, np.ndarray], net: np.ndarray, *, title: str) -> str:
    """A stacked bar per zone: the positive parts stacked up from 0, the negative down, and the net stock
    change as a black diamond (the sum of the parts). ``parts[part]`` one value per zone (t C); NaN parts
    are left out (their zone's diamond is then missing too, as its net change is unknown)."""
    fig = Figure(figsize=(max(7.0, min(11.0, 2.6 + 0.7 * len(zones))), 4.4), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(zones), dtype=float)
    up, down = np.zeros(len(zones)), np.zeros(len(zones))
    for part, values in parts.items():
        v = np.nan_to_num(np.asarray(values, dtype=float), nan=0.0)
        pos, neg = np.where(v > 0, v, 0.0), np.where(v < 0, v, 0.0)
        ax.bar(x, pos, bottom=up, color=PART_COLOURS.get(part, "#999999"), label=part, width=0.65)
        ax.bar(x, neg, bottom=down, color=PART_COLOURS.get(part, "#999999"), width=0.65)
        up, down = up + pos, down + neg
    net = np.asarray(net, dtype=float)
    ok = np.isfinite(net)
    ax.scatter(x[ok], net[ok], marker="D", color="black", zorder=5, label="net change")
    ax.axhline(0.0, color="#333333", linewidth=0.8)
    ax.set_xticks(x, [str(z) for z in zones], rotation=30 if len(zones) > 6 else 0, ha="right" if len(zones) > 6 else "center")
    ax.set_xlabel("zone id")
    ax.set_ylabel("stock change (t C)")
    ax.grid(axis="y", color="#e0e0e0")
    ax.margins(y=0.08)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    ax.set_title(title, fontsize=11)
    return png_uri(fig)
