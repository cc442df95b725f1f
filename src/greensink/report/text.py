"""Report text: numbers, labels and bilingual sentences as the report shows them, and the table cells they fill.

Numbers are formatted for reading, not for re-use (the GeoPackage/CSV tables are for that):
thousands separators, 1 decimal for percentages and m² per person, 2 for densities (t C/ha),
a true minus sign, and "—" for a missing value (NaN), never 0. Labels are Chinese and English
side by side; the model equations, the tiers, the rivals of a model and the origin of the plots'
carbon are written here in words.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from greensink.tiers import TIER_NAMES, TIER_NAMES_ZH

INTERVAL_PCT = 90.0  # default width of the bootstrap intervals (carbon.interval_pct); render_report takes the configured one
DASH = "—"  # a missing value; never shown as 0
MINUS = "−"  # U+2212, so negative numbers do not read as dashes
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


def format_number(value: Any, decimals: int | None = None, *, sign: bool = False) -> str:
    """``value`` for reading: thousands separators, "−" for negatives, "—" for None/NaN/inf.

    ``decimals`` None chooses by magnitude: 0 from 100 up, 1 from 10, else 2. ``sign`` adds "+"
    to positive values (for gaps and changes). A value that rounds to zero has no sign."""
    if is_missing(value):
        return DASH
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return DASH
    if decimals is None:
        decimals = auto_decimals(v)
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
        f = to_float(v)
        if math.isfinite(f):
            return f"{f:.4g}".replace("-", MINUS)
        return DASH if is_missing(v) else str(v)[:40]

    def plus(v: float) -> str:
        return f"{MINUS if v < 0 else '+'} {g(abs(v))}"

    b_names = ["b"] if len(names) == 1 else [f"b_{q}" for q in names]
    if form in PARAMETRIC_FORMS and set(p) == {"a", *b_names}:
        a, bs = to_float(p["a"]), [to_float(p[k]) for k in b_names]
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


def auto_decimals(v: float) -> int:
    """Decimals :func:`format_number` chooses for ``v``: 0 from 100 up, 1 from 10, else 2."""
    a = abs(v)
    return 0 if a >= 100 else 1 if a >= 10 else 2


def to_float(v: Any) -> float:
    """``v`` as a float; NaN when it is not a number."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def is_missing(v: Any) -> bool:
    """None, NaN, NaT or pd.NA (a scalar whose value is not there)."""
    return v is None or (pd.api.types.is_scalar(v) and bool(pd.isna(v)))


def text_or_dash(v: Any) -> str:
    """``v`` as text; "—" when it is missing."""
    return DASH if is_missing(v) else str(v)


def level_label(level: str) -> str:
    """A planning level as shown, Chinese and English ("街区 block"); an unknown level as named."""
    zh = LEVEL_NAMES_ZH.get(level)
    return f"{zh} {level}" if zh else level


def indicator_decimals(indicator: str) -> int | None:
    """Decimals of an indicator by its unit suffix: 1 for % and m², 2 for t C/ha; None (by magnitude) otherwise."""
    if indicator.endswith(("_pct", "_m2")):
        return 1
    if indicator.endswith(("_t_ha", "_t_ha_yr")):
        return 2
    return None


def cell(text: str, cls: str = "", title: str = "") -> dict[str, str]:
    """A table cell as the template renders it: its text, CSS class and tooltip."""
    return {"text": text, "cls": cls, "title": title}


def num_cell(value: Any, decimals: int | None = None, *, sign: bool = False) -> dict[str, str]:
    """A numeric cell: :func:`format_number` of ``value``, right-aligned, greyed when missing."""
    text = format_number(value, decimals, sign=sign)
    return cell(text, "num nodata" if text == DASH else "num")


def column(df: pd.DataFrame, name: str) -> np.ndarray:
    """A numeric column as float, all NaN when the column is absent."""
    if name not in df.columns:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)


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


def rivals_text(type_model: Mapping[str, Any]) -> str:
    """The model table's rivals cell: the candidates within one standard error of the lowest CV error
    (models.json "rivals") with their largest difference from the chosen curve at the plots;
    "无 none" when the CV decided, the anchor year when the form was kept from it, a dash otherwise."""
    rivals = type_model.get("rivals")
    if isinstance(rivals, list):
        if not rivals:
            return "无 none"
        return "; ".join(f"{text_or_dash(r.get('form'))}"
                         + (f" [{'+'.join(map(str, r['predictors']))}]" if r.get("predictors") not in (None, ["ndvi"]) else "")
                         + f" (≤ {format_number(r.get('max_difference_pct'), 1)} %)" for r in rivals)
    selection = type_model.get("selection") or {}
    if selection.get("mode") == "first_year" and selection.get("anchor_year") is not None:
        return f"见 see {selection['anchor_year']}"
    return DASH


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
