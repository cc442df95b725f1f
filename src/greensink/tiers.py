"""Tiers: which kind of evidence produced each type's carbon, and the pools the tables give.

In the spirit of the IPCC settlements tiers (2006 Guidelines Vol. 4 Ch. 8; 2019 Refinement),
greensink states per green-space type, and so per zone, how its carbon was obtained:

* tier 1 – the default density table shipped with greensink (:data:`DEFAULT_TABLE`), used when the
  run has no green-space types: one pseudo-type :data:`VEG` for all vegetated land (NDVI ≥
  vegetation.ndvi_vegetation), at a documented default density and uncertainty;
* tier 2 – the user's coefficient table (local coefficients per type, or its density curve of NDVI);
* tier 3 – carbon models fitted to local field plots (form and predictors chosen by spatial CV).

Pools: the models and tables give living vegetation carbon (above + below ground, ``carbon_t``).
Soil organic carbon (``c_soil``) and dead organic matter (``c_dead``) come only from a table, per ha
of the type's land, and are reported apart (``soil_carbon_t``, ``dead_carbon_t``), never added to
``carbon_t``. An empty cell means "not given" (NaN in the zone tables), not 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import Any

import pandas as pd

VEG = "VEG"  # the pseudo-type of a run without green-space types
VEG_NAME = "植被 all vegetated land"
DEFAULT_TABLE = "default_density.csv"  # in the package (greensink/data), read with importlib.resources
TIER_NAMES = {
    1: "tier 1: default density table",
    2: "tier 2: coefficient table (local coefficients)",
    3: "tier 3: models fitted to local plots",
}
TIER_NAMES_ZH = {1: "一级 默认密度表", 2: "二级 本地系数表", 3: "三级 本地样地模型"}
POOLS = ("c_soil", "c_dead")


def default_table() -> pd.DataFrame:
    """The tier-1 default density table (columns like config/coefficients.csv), from the package."""
    with resources.files("greensink").joinpath("data", DEFAULT_TABLE).open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh)


def type_tier(type_model: Mapping[str, Any], default: bool) -> int:
    """3 for a model fitted to plots; else 1 when the density came from the default table, 2 from the user's table."""
    if type_model.get("source") == "plots":
        return 3
    return 1 if default else 2


def table_pools(table: pd.DataFrame | None, code: str) -> dict[str, float | None]:
    """{"c_soil": t C/ha or None, "c_dead": ...} of a type's row; None where the table or cell is empty."""
    out: dict[str, float | None] = {p: None for p in POOLS}
    if table is None or "type" not in table.columns:
        return out
    rows = table[table["type"].astype(str) == code]
    if rows.empty:
        return out
    for p in POOLS:
        if p in rows.columns:
            v = pd.to_numeric(rows[p].iloc[0], errors="coerce")
            out[p] = None if v is None or not math.isfinite(float(v)) else float(v)
    return out


def annotate_models(models: dict[str, Any], table: pd.DataFrame | None, *, default: bool,
                    ndvi_min: float | None = None) -> dict[str, Any]:
    """Add to models.json (in place; returns it) per type "tier", "tier_name" and "pools" (from
    ``table``, the table the run's fallbacks read), and at the top "tiers" (sorted, distinct) and
    "default_table" (whether the table was greensink's default). ``ndvi_min`` (the run without
    green-space types) gates the pseudo-type: its carbon counts only where NDVI ≥ ndvi_min."""
    tiers = set()
    for code, tm in models["types"].items():
        tier = type_tier(tm, default)
        tm["tier"] = tier
        tm["tier_name"] = TIER_NAMES[tier]
        tm["pools"] = table_pools(table, code)
        if ndvi_min is not None:
            tm["ndvi_min"] = float(ndvi_min)
            if isinstance(tm.get("ndvi_only"), dict):
                tm["ndvi_only"]["ndvi_min"] = float(ndvi_min)
        tiers.add(tier)
    models["tiers"] = sorted(tiers)
    models["default_table"] = bool(default)
    return models


def carbon_tiers(models_per_year: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The provenance record of the tiers: per year {"tiers": [...], "types": {type: tier},
    "default_table": bool}, keyed by year as text."""
    out: dict[str, Any] = {}
    for models in models_per_year:
        types = {t: int(tm.get("tier", type_tier(tm, bool(models.get("default_table"))))) for t, tm in models["types"].items()}
        out[str(models.get("year"))] = {"tiers": sorted(set(types.values())), "types": types,
                                        "default_table": bool(models.get("default_table", False)),
                                        "names": {str(k): v for k, v in TIER_NAMES.items()}}
    return out


def tiers_text(tiers: Sequence[int]) -> str:
    """"tier 3", "tiers 2 and 3" ... for logs and the report."""
    ts = sorted(set(int(t) for t in tiers))
    if not ts:
        return "no tier (no carbon-bearing land)"
    if len(ts) == 1:
        return f"tier {ts[0]}"
    return "tiers " + ", ".join(map(str, ts[:-1])) + f" and {ts[-1]}"
