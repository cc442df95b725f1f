"""Targets: indicator values per zone against the plan's targets (config/targets.yaml).

A target names a level, an indicator (a zone-table column), a comparison and a value. Each
zone of that level gets its value, the target, met or not, and the gap (value − target, so a
negative gap under a "≥" target is the shortfall). A zone whose value is missing (NaN) is
neither met nor missed: it is reported as "no data".
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from greensink import io as gio
from greensink.config import read_yaml
from greensink.errors import ConfigError

OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


def read_targets(path: str | Path) -> list[dict]:
    """Read and check a targets file; a missing file means no targets."""
    path = Path(path)
    if not path.exists():
        return []
    doc = read_yaml(path, "Write it as in config/targets.yaml: a key 'targets' holding a list")
    targets = doc.get("targets") or []
    if not isinstance(targets, list):
        raise ConfigError(f"{path} targets: must be a list of targets (level, indicator, op, value). "
                          f"Got a {type(targets).__name__} instead. Write each target as a '- level: ...' item.")
    problems = []
    for i, t in enumerate(targets):
        if not isinstance(t, dict):
            problems.append(f"{path} targets[{i}]: must be a mapping with level, indicator, op, value. Got {t!r}.")
            continue
        for key in ("level", "indicator", "op", "value"):
            if key not in t:
                problems.append(f"{path} targets[{i}]: missing key {key!r}. Each target needs level, indicator, op, value.")
        if t.get("op") not in OPS:
            problems.append(f"{path} targets[{i}]: op must be one of {list(OPS)}. Got {t.get('op')!r}.")
        if isinstance(t.get("value"), bool) or not isinstance(t.get("value"), int | float):
            problems.append(f"{path} targets[{i}]: value must be a number. Got {t.get('value')!r}.")
    seen = [(t.get("level"), t.get("indicator")) for t in targets if isinstance(t, dict)]
    for pair in sorted({p for p in seen if seen.count(p) > 1}, key=str):
        problems.append(f"{path}: level {pair[0]!r} has several targets on {pair[1]!r}. Keep one target per level and indicator.")
    if problems:
        raise ConfigError("\n".join(problems))
    return targets


def evaluate(tables: Mapping[str, pd.DataFrame], targets: Sequence[dict]) -> pd.DataFrame:
    """One row per (target, zone): level, zone_id, name, indicator, label, op, target, value, met, gap."""
    rows = []
    for t in targets:
        table = tables.get(t["level"])
        if table is None:
            continue
        if t["indicator"] not in table.columns:
            raise ConfigError(
                f"targets: indicator {t['indicator']!r} is not a column of the {t['level']} table. "
                f"Use one of: {', '.join(c for c in table.columns if c.endswith(('_pct', '_m2', '_t', '_t_ha')))}."
            )
        values = table[t["indicator"]].to_numpy(dtype=float)
        ok = np.isfinite(values)
        met = np.where(ok, OPS[t["op"]](values, t["value"]), False)
        for zid, name, v, m, has in zip(table["zone_id"], table["name"], values, met, ok, strict=True):
            rows.append({
                "level": t["level"], "zone_id": zid, "name": name, "indicator": t["indicator"],
                "label": t.get("label", t["indicator"]), "op": t["op"], "target": float(t["value"]),
                "value": float(v) if has else np.nan, "status": ("met" if m else "missed") if has else "no data",
                "gap": float(v - t["value"]) if has else np.nan,
            })
    return pd.DataFrame(rows, columns=["level", "zone_id", "name", "indicator", "label", "op", "target", "value", "status", "gap"])


def annotate(table: pd.DataFrame, level: str, targets: Sequence[dict]) -> pd.DataFrame:
    """Add, for every target of ``level``, the columns target_<indicator> (the target value),
    target_<indicator>_met (True / False, empty where the value is missing) and
    target_<indicator>_gap (value − target)."""
    out = table.copy()
    rows = evaluate({level: table}, [t for t in targets if t["level"] == level])
    for indicator, part in rows.groupby("indicator", sort=False):
        part = part.set_index("zone_id").loc[out["zone_id"]]
        out[f"target_{indicator}"] = part["target"].to_numpy()
        met = part["status"].map({"met": True, "missed": False}).astype("boolean")
        out[f"target_{indicator}_met"] = met.to_numpy()
        out[f"target_{indicator}_gap"] = part["gap"].to_numpy()
    return out


def run_targets(indicators: Sequence[str | Path], out: Sequence[str | Path], targets_path: str | Path,
                levels: Sequence[str]) -> dict[str, int]:
    """Rule targets: each level's zone table (``indicators``: results/{year}/zones/{level}.indicators.parquet,
    rule aggregate's tables without targets) with the target columns of :func:`annotate`, written as the
    final zone table ``out`` (GeoPackage, CSV and GeoParquet twins). A separate rule so that editing a target
    reruns this and the report only, never the aggregation or the change products.
    Returns the number of targets evaluated per level."""
    goals = read_targets(targets_path)
    counts = {}
    for level, src, dst in zip(levels, indicators, out, strict=True):
        table = annotate(gio.read_vector(src), level, goals)
        gio.write_table(dst, table, layer=level, parquet=True)
        counts[level] = sum(1 for t in goals if t["level"] == level)
    return counts
