"""Interval bounds follow one naming scheme across tables and rasters (docs/outputs.md, "Naming").

A bound is its estimate's full name, unit included, with ``_lo`` or ``_hi`` appended (``carbon_t`` ->
``carbon_t_lo``; a part of an interval: ``trend_t_yr`` -> ``trend_t_yr_draws_lo``), and its estimate is in
the same table or raster. The exceptions are the names listed in the "Naming" section's table as deprecated
(``carbon_t_ha_p<N>`` bands of carbon.tif, plot_carbon.csv's ``_p05``/``_p95``): read from the contract, so a new
exception has to be written down there first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pyarrow.parquet as pq
import rasterio

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = ROOT / "docs" / "outputs.md"
# a word of a name that marks an interval bound: lo, hi, lower, upper or a percentile p<N>
BOUND = re.compile(r"(?:^|_)(?:lo|hi|lower|upper|p\d+)(?:_|$)")


def naming_exceptions() -> list[re.Pattern]:
    """The names of the exceptions table in docs/outputs.md's "Naming" section (``<N>`` stands for a number)."""
    text = OUTPUTS.read_text(encoding="utf-8")
    section = text.split("## Naming", 1)[1].split("\n## ", 1)[0]
    names = [n for row in re.findall(r"^\| (`[^|]+)\|", section, re.M) for n in re.findall(r"`([^`]+)`", row)]
    return [re.compile(re.escape(n).replace(re.escape("<N>"), r"\d+")) for n in names]


def scheme_problems(names: Sequence[str], exceptions: Sequence[re.Pattern]) -> list[str]:
    """Every bound-like name of one table or raster (its columns or band names) that breaks the scheme."""
    problems = []
    present = set(names)
    for name in names:
        if not BOUND.search(name) or any(e.fullmatch(name) for e in exceptions):
            continue
        if not name.endswith(("_lo", "_hi")):
            problems.append(f"{name}: a bound ends in _lo or _hi, after the estimate's unit")
            continue
        base = name[:-3]
        if base not in present and base.rpartition("_")[0] not in present:
            problems.append(f"{name}: its estimate {base} (or, for a part of an interval, {base.rpartition('_')[0]}) "
                            "is not beside it")
    return problems


def test_the_scheme_by_hand():
    ex = naming_exceptions()
    assert scheme_problems(["carbon_t", "carbon_t_lo", "carbon_t_hi", "co2e_t", "co2e_t_lo"], ex) == []
    assert scheme_problems(["trend_t_yr", "trend_t_yr_lo", "trend_t_yr_draws_lo", "trend_t_yr_scatter_hi"], ex) == []
    # the unit after the bound, a bound without its estimate, a percentile name not in the contract
    assert scheme_problems(["carbon_lo_t", "carbon_t"], ex) == ["carbon_lo_t: a bound ends in _lo or _hi, after the "
                                                                 "estimate's unit"]
    assert len(scheme_problems(["sink_t_yr_lo"], ex)) == 1
    assert len(scheme_problems(["sink_t_yr", "sink_t_yr_p5"], ex)) == 1
    # the documented exceptions: carbon.tif's percentile bands at any interval, plot_carbon.csv's p05/p95
    assert scheme_problems(["carbon_t_ha", "carbon_t_ha_p5", "carbon_t_ha_p95", "carbon_t_ha_p2"], ex) == []
    assert scheme_problems(["carbon_t_ha", "carbon_t_ha_p05", "carbon_t_ha_p95"], ex) == []
    # words that only look like bounds are not bounds
    assert scheme_problems(["no_net_loss", "carbon_lost_t", "significant", "high_class_ha"], ex) == []


def names_of(path: Path) -> list[str]:
    if path.suffix == ".tif":
        with rasterio.open(path) as src:
            return [d or "" for d in src.descriptions]
    if path.suffix == ".parquet":
        return list(pq.read_schema(path).names)
    return path.read_text(encoding="utf-8").split("\n", 1)[0].split(",")  # a CSV's header


def test_every_table_and_raster_of_the_run_follows_the_scheme(baseline_run):
    ex = naming_exceptions()
    files = sorted(p for ext in ("csv", "parquet", "tif") for p in (baseline_run / "results").rglob(f"*.{ext}"))
    assert any(p.name == "carbon.tif" for p in files) and any(p.match("zones/*.csv") for p in files)
    problems = [f"{p.relative_to(baseline_run)}: {msg}" for p in files for msg in scheme_problems(names_of(p), ex)]
    assert not problems, "names against docs/outputs.md, Naming:\n  " + "\n  ".join(problems)
    bounds = {n for p in files for n in names_of(p) if BOUND.search(n)}
    # what the run holds, so the check above saw real bounds of each kind
    assert {"carbon_t_lo", "carbon_t_hi", "sink_t_yr_lo", "trend_t_yr_draws_lo", "sink_t_ha_yr_lo",
            "carbon_t_ha_p5", "carbon_t_ha_p95"} <= bounds
