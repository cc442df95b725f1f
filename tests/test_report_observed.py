"""The planner report shows partial observation of the change products (issue 15 item 4).

A zone whose green-space land was not seen clearly in both years (``sink_partly_observed``) is marked ◐ in
every table that shows its sink, with its share seen in both years (``observed_both_pct``) and the sink of that
land alone (``sink_observed_t_yr`` and its interval) beside the filled one; the change section counts such zones
per level; "no net loss" of green area reads ``green_area_change_compared_ha`` (land both years saw).

Fast tests use test_report's synthetic inputs with hand-set columns; the slow ones render the session's
baseline run (every zone 100 % observed there) and a copy of its change tables with one block edited.
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from greensink.change import change_table
from greensink.config import load_schema, read_yaml, with_defaults
from greensink.report import render_report, run_report
from greensink.report.series import attribution_table
from greensink.tiers import VEG, VEG_NAME
from greensink.uncertainty import SOURCES
from test_report import YEARS, _Tables, body_rows, make_inputs

MARK = "◐"
SEEN = "两年均看清 Seen both years (% of green space)"
OBS = "两年均看清部分的年碳汇 Sink of the land seen both years (t C/yr)"
OBS_IV = "该部分 90 % 区间 its interval (t C/yr)"
SINK = "年碳汇 Sink (t C/yr)"
GREEN = "绿量变化（两年均看清的土地）Green-area change over land seen both years (ha)"
NNL = "绿量无净损失 No net loss of green area"


def _parse(html: str) -> _Tables:
    p = _Tables()
    p.feed(html)
    return p


def _rows(p: _Tables, table_id: str) -> tuple[list[str], dict[str, tuple[str, list[str]]]]:
    """(headers, {zone_id: (row class, cells)}) of a table whose second column is the zone id."""
    table = p.tables[table_id]
    return table[0][1], {cells[1]: (cls, cells) for cls, cells in body_rows(table)}


def _section(html: str, sid: str) -> str:
    start = html.index(f'<section id="{sid}"')
    return html[start:html.index("</section>", start)]


# ---------------------------------------------------------------------------------------------
# Synthetic inputs (test_report.make_inputs), columns set by hand


def _observed_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Every zone seen whole in both years, as greensink.change writes it: the observed sink is the sink."""
    df = df.copy()
    df["observed_both_pct"] = 100.0
    df["sink_partly_observed"] = pd.array([False] * len(df), dtype="boolean")
    for suffix in ("", "_lo", "_hi"):
        df[f"sink_observed_t_yr{suffix}"] = df[f"sink_t_yr{suffix}"]
    df["green_area_change_compared_ha"] = df["green_area_change_ha"]
    return df


@pytest.fixture(scope="module")
def synthetic() -> tuple[str, _Tables]:
    inputs = make_inputs()
    change = {lv: _observed_columns(df) for lv, df in inputs["change"][(2023, 2024)].items()}
    block = change["block"]
    # B2: 62.5 % seen both years, sink of that land +12.34 [10.01, 14.56] t C/yr
    b2 = block["zone_id"] == "B2"
    block.loc[b2, ["observed_both_pct", "sink_observed_t_yr", "sink_observed_t_yr_lo", "sink_observed_t_yr_hi"]] = (
        62.5, 12.34, 10.01, 14.56)
    block.loc[b2, "sink_partly_observed"] = True
    # B3: nothing seen in both years: every sink column empty (greensink.change), the share 0 %
    b3 = block["zone_id"] == "B3"
    block.loc[b3, ["observed_both_pct", "sink_t_yr", "sink_t_yr_lo", "sink_t_yr_hi", "sink_observed_t_yr",
                   "sink_observed_t_yr_lo", "sink_observed_t_yr_hi"]] = (0.0, *[np.nan] * 6)
    block.loc[b3, "sink_partly_observed"] = True
    block.loc[b3, "sink_class"] = "unknown"
    # B4: no typed land: share and flag unknown
    b4 = block["zone_id"] == "B4"
    block.loc[b4, "observed_both_pct"] = np.nan
    block.loc[b4, "sink_partly_observed"] = pd.NA
    # B1 lost 1.5 ha of vegetated area in green_area_change_ha, but over the land both years saw it gained 0.25 ha
    b1 = block["zone_id"] == "B1"
    block.loc[b1, ["green_area_change_compared_ha", "no_net_loss"]] = (0.25, True)
    # the city: 99.97 % seen (one decimal would read 100.0) and a sink of that land −0.5 [−3.0, 2.0]
    city = change["city"]
    city[["observed_both_pct", "sink_observed_t_yr", "sink_observed_t_yr_lo", "sink_observed_t_yr_hi"]] = (
        99.97, -0.5, -3.0, 2.0)
    city["sink_partly_observed"] = pd.array([True], dtype="boolean")
    html = render_report(**{**inputs, "change": {(2023, 2024): change}})
    return html, _parse(html)


def test_partly_observed_block_is_marked_with_its_share_and_observed_sink(synthetic):
    html, p = synthetic
    headers, rows = _rows(p, "change-2023-2024-block")
    seen, obs, obs_iv, sink = (headers.index(h) for h in (SEEN, OBS, OBS_IV, SINK))
    assert obs == seen + 1 and obs_iv == seen + 2
    cls, b2 = rows["B2"]
    assert "partly" in cls.split()
    assert b2[seen] == f"{MARK} 62.5 %"
    assert b2[obs] == "+12.3" and b2[obs_iv] == "10.0 – 14.6"  # 12.34 [10.01, 14.56] at 1 decimal (10 to 100)
    assert b2[sink] == f"+300 {MARK}"  # (11.0 − 10.0 t C/ha) × 300 ha over one year, marked: it includes fill
    # B3 was seen in neither year on any land: share 0 % marked, every sink "—" (never 0), sink not marked
    cls, b3 = rows["B3"]
    assert b3[seen] == f"{MARK} 0.0 %" and b3[sink] == b3[obs] == b3[obs_iv] == "—"
    # B4 has no typed land: nothing known, nothing marked
    cls, b4 = rows["B4"]
    assert b4[seen] == "—" and MARK not in "".join(b4) and "partly" not in cls
    # B1 is whole: 100.0 %, its observed sink equals its sink
    cls, b1 = rows["B1"]
    assert b1[seen] == "100.0 %" and b1[obs] == b1[sink] and MARK not in "".join(b1) and "partly" not in cls


def test_partly_observed_count_per_level_and_the_note(synthetic):
    html, p = synthetic
    change = _section(html, "change")
    assert 'id="partly-definition"' in change
    assert "filled in with the average density of its green-space type" in change
    # B2 and B3 of the 4 blocks; the city's one zone; districts and parcels carry no partial observation
    assert "2 of 4 zones were partly seen" in change
    assert "1 of 1 zones were partly seen" in change
    assert change.count("Every zone's green space was seen clearly in both years") == 2


def test_no_net_loss_of_green_area_reads_the_land_both_years_saw(synthetic):
    _, p = synthetic
    headers, rows = _rows(p, "change-2023-2024-block")
    green, nnl = headers.index(GREEN), headers.index(NNL)
    # B1: −1.5 ha in green_area_change_ha (a cloud), +0.25 ha over the compared land: no loss
    assert rows["B1"][1][green] == "+0.25" and rows["B1"][1][nnl] == "✓"


def test_city_summary_says_the_sink_includes_filled_land(synthetic):
    html, _ = synthetic
    summary = html[html.index('id="summary"'):html.index('id="maps"')]
    # 99.97 % is partly observed: it must not read as 100.0 %
    assert f"{MARK} 两年均看清的绿地占 &gt; 99.9 %" in summary
    assert "The land seen in both years alone took up −0.50 t C/yr (−3.00 – 2.00)" in summary


def test_attribution_table_marks_a_net_change_that_includes_filled_land():
    df = pd.DataFrame({"zone_id": ["D1", "D2", "D3"], "name": ["东区", "西区", "南区"],
                       "stock_change_t": [120.0, -8.5, np.nan], "change_growth_t": [120.0, -8.5, np.nan],
                       "observed_both_pct": [100.0, 62.5, 0.0], "sink_partly_observed": [False, True, True]})
    rows = attribution_table(df, ["growth"], "attribution-test")["rows"]
    assert [r["cls"] for r in rows] == ["", "partly", ""]  # D3: nothing known, no number to mark
    assert [r["cells"][2]["text"] for r in rows] == ["+120", f"−8.50 {MARK}", "—"]


def test_report_of_a_change_table_from_the_change_module():
    # three blocks through greensink.change.change_table with 40 ha of typed land each, observed in both years
    # on 40, 25 and 10 ha (100, 62.5, 25 %; min_observed_pct 50 leaves B3's sink unknown)
    inputs = make_inputs()
    t0, t1 = inputs["tables"][2023]["block"].iloc[:3], inputs["tables"][2024]["block"].iloc[:3]
    draws = np.stack([np.linspace(5.0, 15.0, 101), np.linspace(8.0, 12.0, 101), np.linspace(-1.0, 1.0, 101)])
    parts = {src: np.zeros_like(draws) for src in SOURCES}
    parts["ndvi"] = draws - draws.mean(axis=1, keepdims=True)
    draws_b = np.stack([draws[0], np.linspace(3.0, 5.0, 101), np.linspace(0.0, 0.4, 101)])
    observed = {"typed_ha": np.array([40.0, 40.0, 40.0]), "observed_both_ha": np.array([40.0, 25.0, 10.0]),
                "sums": (np.array([10.0, 4.0, 0.2]), draws_b)}
    table = change_table(t1[["zone_id", "parent_id", "level", "name", "geometry"]], t0, t1, 2023, 2024,
                         (np.array([10.0, 10.0, 0.0]), draws, parts), observed=observed, min_observed_pct=50.0)
    html = render_report(**{**inputs, "levels": ["block"],
                            "tables": {y: {"block": inputs["tables"][y]["block"].iloc[:3]} for y in YEARS},
                            "change": {(2023, 2024): {"block": table}}})
    headers, rows = _rows(_parse(html), "change-2023-2024-block")
    seen, obs, obs_iv, sink = (headers.index(h) for h in (SEEN, OBS, OBS_IV, SINK))
    b1, b2, b3 = (rows[z][1] for z in ("B1", "B2", "B3"))
    assert (b1[seen], b1[sink], b1[obs]) == ("100.0 %", "+10.0", "+10.0")
    # B2: 25 / 40 ha; the observed sink 4.0 with the 5th and 95th percentiles of 3 … 5: 3.1 and 4.9
    assert (b2[seen], b2[sink], b2[obs], b2[obs_iv]) == (f"{MARK} 62.5 %", f"+10.0 {MARK}", "+4.00", "3.10 – 4.90")
    assert rows["B2"][0] == "partly"
    # B3: 25 % < 50 %: no sink at all, "—", never 0
    assert (b3[seen], b3[sink], b3[obs], b3[obs_iv]) == (f"{MARK} 25.0 %", "—", "—", "—")
    assert "2 of 3 zones were partly seen" in _section(html, "change")


def test_tables_without_the_columns_show_no_mark_and_no_count():
    inputs = make_inputs()  # change tables written before observed_both_pct existed
    html = render_report(**inputs)
    p = _parse(html)
    headers, rows = _rows(p, "change-2023-2024-block")
    seen = headers.index(SEEN)
    assert all(cells[seen] == "—" for _, cells in rows.values())
    assert MARK not in "".join("".join(c) for _, c in rows.values())
    assert "partly-count" not in html
    # the green-area change falls back on green_area_change_ha: B1 lost 1.5 ha
    assert rows["B1"][1][headers.index(GREEN)] == "−1.50" and rows["B1"][1][headers.index(NNL)] == "✗"


# ---------------------------------------------------------------------------------------------
# The session's baseline run (slow: tests/conftest.py marks every test that reads it)


def _render_run(run: Path, out: Path, change_root: Path | None = None) -> str:
    """The report of a finished run through run_report (as rule report calls it), the change tables read from
    ``change_root`` (a copy of results/change) if given; trend, zoning and scenario parts left out."""
    cfg = with_defaults(read_yaml(run / "config.yaml"), load_schema())
    years = sorted(int(y) for y in cfg["years"])
    levels = [z["level"] for z in cfg["zones"]]
    change_root = change_root or run / "results/change"
    pairs = sorted(tuple(int(v) for v in d.name.split("_")) for d in (run / "results/change").iterdir()
                   if re.fullmatch(r"\d{4}_\d{4}", d.name))
    assert len(pairs) >= 2
    greenspace = cfg.get("greenspace") or None
    types = dict(greenspace["types"]) if greenspace else {VEG: VEG_NAME}
    r = run / "results"
    return run_report(
        out, tables=[r / f"{y}/zones/{lv}.gpkg" for y in years for lv in levels],
        change=[change_root / f"{y0}_{y1}/zones/{lv}.gpkg" for y0, y1 in pairs for lv in levels],
        models=[r / f"{y}/model/models.json" for y in years], carbon=[r / f"{y}/carbon.tif" for y in years],
        sinks=[r / f"change/{y0}_{y1}/sink.tif" for y0, y1 in pairs], provenance=r / "provenance.json",
        grid=r / "zones/grid.json", nesting=r / "zones/nesting.csv", targets=cfg["targets"],
        template=Path(__file__).resolve().parents[1] / "reports/report.html.j2", years=years, pairs=pairs,
        levels=levels, type_names=types, interval_pct=cfg["carbon"]["interval_pct"])


def _fmt(v: float, dec: int, sign: bool = False) -> str:
    """A number as the report writes it (thousands separators, true minus, + with ``sign``), by hand."""
    text = f"{abs(v):,.{dec}f}"
    if not float(text.replace(",", "")):
        return text
    return ("−" if v < 0 else "+" if sign else "") + text


def _change_tables(html: str) -> dict[str, tuple[list[str], dict[str, tuple[str, list[str]]]]]:
    p = _parse(html)
    return {t: _rows(p, t) for t in p.tables if t.startswith("change-")}


@pytest.fixture(scope="module")
def edited(baseline_run, tmp_path_factory) -> dict:
    """A copy of the baseline's change tables where one block of the first pair is partly observed."""
    root = tmp_path_factory.mktemp("observed") / "change"
    shutil.copytree(baseline_run / "results/change", root, ignore=shutil.ignore_patterns("*.tif", "trend"))
    pair = sorted(d.name for d in root.iterdir() if re.fullmatch(r"\d{4}_\d{4}", d.name))[0]
    path = root / pair / "zones/block.gpkg"
    df = gpd.read_file(path)
    finite = df.index[np.isfinite(df["sink_t_yr"].to_numpy(float))]
    i = finite[1]
    sink = float(df.loc[i, "sink_t_yr"])
    obs = 0.625 * sink + 1.234  # not the sink scaled: a value the report can only get from the column
    df.loc[i, ["observed_both_pct", "sink_observed_t_yr", "sink_observed_t_yr_lo", "sink_observed_t_yr_hi"]] = (
        62.5, obs, obs - 2.0, obs + 3.0)
    df["sink_partly_observed"] = df["sink_partly_observed"].astype(bool)
    df.loc[i, "sink_partly_observed"] = True
    df.to_file(path, driver="GPKG")
    return {"root": root, "pair": pair, "zone": str(df.loc[i, "zone_id"]), "obs": obs, "sink": sink}


def test_baseline_report_has_no_partly_observed_zone(baseline_run, tmp_path):
    html = _render_run(baseline_run, tmp_path / "report.html")
    tables = _change_tables(html)
    assert len(tables) >= 8  # every pair at every level
    for table_id, (headers, rows) in tables.items():
        pair = table_id.split("-")[1:3]
        level = table_id.split("-")[3]
        t = pd.read_csv(baseline_run / f"results/change/{pair[0]}_{pair[1]}/zones/{level}.csv", dtype={"zone_id": str})
        by_id = t.set_index("zone_id")
        seen, obs, sink = headers.index(SEEN), headers.index(OBS), headers.index(SINK)
        for zone, (cls, cells) in rows.items():
            assert MARK not in "".join(cells) and "partly" not in cls, (table_id, zone)
            pct = by_id.loc[zone, "observed_both_pct"]
            assert cells[seen] == ("—" if math.isnan(pct) else "100.0 %"), (table_id, zone)
            assert cells[obs] == cells[sink], (table_id, zone)  # whole: the land seen both years is the zone's
    change = _section(html, "change")
    n_levels = len({t.split("-", 3)[3] for t in tables}) * len({tuple(t.split("-")[1:3]) for t in tables})
    assert change.count("Every zone's green space was seen clearly in both years") == n_levels
    assert "zones were partly seen" not in change
    assert MARK not in _section(html, "summary")


def test_edited_block_alone_is_marked_with_its_share_and_observed_sink(baseline_run, edited, tmp_path):
    html = _render_run(baseline_run, tmp_path / "report.html", change_root=edited["root"])
    tables = _change_tables(html)
    marked = [(t, cells[1]) for t, rows in _parse(html).tables.items() for _, cells in rows
              if MARK in "".join(cells)]  # every table of the report: the sink, losses, attribution tables
    y0, y1 = edited["pair"].split("_")
    table_id = f"change-{y0}-{y1}-block"
    assert marked == [(table_id, edited["zone"])]
    headers, rows = tables[table_id]
    cls, cells = rows[edited["zone"]]
    assert "partly" in cls.split()
    assert cells[headers.index(SEEN)] == f"{MARK} 62.5 %"
    obs = edited["obs"]
    dec = 0 if abs(obs) >= 100 else 1 if abs(obs) >= 10 else 2  # the report's decimals by magnitude
    expected = _fmt(obs, dec, sign=True)
    assert cells[headers.index(OBS)] == expected
    iv = headers.index(OBS) + 1
    assert cells[iv] == f"{_fmt(obs - 2.0, dec)} – {_fmt(obs + 3.0, dec)}"
    assert cells[headers.index(SINK)].endswith(f" {MARK}")
    change = _section(html, "change")
    n_blocks = len(rows)
    assert f"1 of {n_blocks} zones were partly seen" in change
    assert change.count("zones were partly seen") == 1
