"""Tests of the report's time-series (issue 12) and zoning (issue 13) sections.

Hand-made small inputs check each section function's arithmetic and its "—" for unknown values; the
slow tests read the shared baseline demo run (three years, zoning on) and check that what the report
shows equals the source tables it was made from, and that Chromium renders the new sections.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import geopandas as gpd
import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from greensink.report import render_report
from greensink.report.maps import downsample_classes
from greensink.report.series import (
    SeriesProducts,
    attribution_sentence,
    lost_patch_rows,
    pair_order,
    series_section,
    sink_space_rows,
    stock_table,
    transition_section,
)
from greensink.report.text import DASH
from greensink.report.zoning import ZoningProducts, not_computed, read_zoning
from test_report import CHROMIUM, _Tables, body_rows

LEVELS = ["city", "district", "block", "parcel"]


def number(text: str) -> float:
    """A number as the report shows it ("−1,234.5", "+0.89") back as a float; NaN for "—"."""
    text = text.strip()
    if text == DASH:
        return math.nan
    return float(text.replace("−", "-").replace(",", "").replace("+", ""))


def rounding(value: float) -> float:
    """Half the last digit the report shows for ``value`` (0 decimals from 100 up, 1 from 10, else 2)."""
    a = abs(value)
    return (0.5 if a >= 100 else 0.05 if a >= 10 else 0.005) + 1e-9


def parse(html: str) -> _Tables:
    p = _Tables()
    p.feed(html)
    return p


# ---------------------------------------------------------------------------------------------
# Hand-made inputs


def test_pair_order_puts_consecutive_pairs_first_then_the_period():
    assert pair_order([(2023, 2025), (2024, 2025), (2023, 2024)], [2023, 2024, 2025]) == [
        (2023, 2024), (2024, 2025), (2023, 2025)]
    assert pair_order([(2023, 2024)], [2023, 2024]) == [(2023, 2024)]
    # uneven steps: consecutive pairs by their first year, whatever their length
    assert pair_order([(2009, 2020), (2012, 2014), (2009, 2012), (2014, 2020)], [2009, 2012, 2014, 2020]) == [
        (2009, 2012), (2012, 2014), (2014, 2020), (2009, 2020)]


def _city(year_carbon: dict[int, tuple[float, float, float]]) -> dict[int, dict[str, pd.DataFrame]]:
    return {y: {"city": pd.DataFrame({"zone_id": ["C1"], "name": ["<b>示范市</b>"], "carbon_t": [c],
                                      "carbon_t_lo": [lo], "carbon_t_hi": [hi]})}
            for y, (c, lo, hi) in year_carbon.items()}


def test_stock_table_shows_each_year_and_a_dash_for_an_unknown_year():
    tables = _city({2023: (1234.4, 1100.0, 1300.0), 2024: (math.nan, math.nan, math.nan), 2025: (9.876, 9.0, 11.0)})
    t = stock_table([2023, 2024, 2025], tables, "city", "90 %")
    (row,) = t["rows"]
    texts = [c["text"] for c in row["cells"]]
    assert texts == ["<b>示范市</b>", "C1", "1,234", "1,100 – 1,300", DASH, DASH, "9.88", "9.00 – 11.00"]
    assert len(t["headers"]) == 2 + 2 * 3


def test_attribution_sentence_names_every_part_with_its_sign():
    r = {"name": "示范市", "stock_change_t": 12.5, "change_gain_t": 10.0, "change_loss_t": -43.7,
         "change_growth_t": 47.0, "change_conversion_t": 0.0, "change_other_t": -0.8}
    s = attribution_sentence(r, ["gain", "loss", "growth", "conversion", "other"], (2023, 2024))
    assert "+12.5 t C" in s["en"] and "gain +10.0 t C" in s["en"] and "loss −43.7 t C" in s["en"]
    assert "growth +47.0 t C" in s["en"] and "conversion 0.00 t C" in s["en"] and "other −0.80 t C" in s["en"]
    assert "2023–2024" in s["zh"] and "植被清除 −43.7 t C" in s["zh"]
    unknown = attribution_sentence({"name": "x", "stock_change_t": math.nan, "change_gain_t": math.nan}, ["gain"],
                                   (2023, 2024))
    assert f"is {DASH} t C" in unknown["en"] and f"gain {DASH} t C" in unknown["en"]


def test_sink_space_counts_met_missed_unknown_and_sums_lost_hectares():
    df = pd.DataFrame({"zone_id": ["a", "b", "c", "d"],
                       "no_net_loss_sink_space": [True, False, None, True],
                       "sink_space_change_ha": [0.5, -2.0, math.nan, 0.0],
                       "sink_space_lost_ha": [0.25, 2.5, math.nan, 0.0]})
    known = df.iloc[[0, 1, 3]]
    rows = sink_space_rows({(2023, 2024): {"district": df, "block": known}}, ["district", "block"])
    d, b = rows
    assert (d["met"], d["missed"], d["unknown"], d["zones"]) == ("2", "1", "1", "4")
    assert d["change_ha"] == DASH and d["lost_ha"] == DASH  # a zone's sink space is unknown: no total
    assert (b["met"], b["missed"], b["unknown"]) == ("2", "1", "0")
    assert b["change_ha"] == "−1.50" and b["lost_ha"] == "2.75" and b["missed_cls"] == "missed"
    patches = pd.DataFrame({"patch_id": [1, 2, 3], "area_ha": [0.01, 0.02, 0.006], "carbon_lost_t": [0.1, math.nan, 0.2]})
    (lp,) = lost_patch_rows({(2023, 2024): patches}, [(2023, 2024)])
    assert lp["patches"] == "3" and lp["area_ha"] == "0.04" and lp["carbon_lost_t"] == DASH
    assert lp["file"] == "results/change/2023_2024/lost_patches.gpkg"


def test_transition_section_matrix_and_carbon_per_transition():
    names = ["none", "grass", "shrub", "tree", "no data"]
    m = pd.DataFrame(0.0, index=pd.Index(names, name="from \\ to (ha)"), columns=names)
    m.loc["none", "none"], m.loc["grass", "tree"], m.loc["tree", "none"], m.loc["tree", "tree"] = 3.0, 1.0, 0.5, 2.0
    m["total"] = m.sum(axis=1)
    m.loc["total"] = m.sum(axis=0)
    long = pd.DataFrame({  # two districts; the second's grass -> tree carbon is unknown
        "zone_id": ["D1", "D1", "D2", "D2", "D1", "D2"], "level": "district", "y0": 2023, "y1": 2025,
        "kind": "vegetation",
        "from_class": ["grass", "tree", "grass", "none", "tree", "tree"],
        "to_class": ["tree", "none", "tree", "none", "tree", "tree"],
        "area_ha": [0.6, 0.5, 0.4, 3.0, 1.5, 0.5], "carbon_change_t": [6.0, -20.0, math.nan, 0.0, 3.0, 1.0],
        "carbon_known_ha": [0.6, 0.5, 0.3, 3.0, 1.5, 0.5]})
    sec = transition_section(SeriesProducts(matrices={(2023, 2025): m}, transitions=long), (2023, 2025), "district")
    rows = {r["cells"][0]["text"]: [c["text"] for c in r["cells"][1:]] for r in sec["matrix"]["rows"]}
    assert rows["合计 total"][-1] == "6.50"  # the corner: all land (3 + 1 + 0.5 + 2)
    assert rows["乔木 tree"] == ["0.50", "0.00", "0.00", "2.00", "0.00", "2.50"]
    carbon = {(r["cells"][0]["text"], r["cells"][1]["text"]): [c["text"] for c in r["cells"][2:]]
              for r in sec["carbon"]["rows"]}
    assert carbon[("草 grass", "乔木 tree")] == ["1.00", DASH, "0.90"]  # part of it unknown: no total
    assert carbon[("乔木 tree", "无植被 none")] == ["0.50", "−20.0", "0.50"]
    assert carbon[("乔木 tree", "乔木 tree")] == ["2.00", "+4.00", "2.00"]
    assert sec["files"][1] == "results/change/trend/transitions/district.csv"
    assert transition_section(SeriesProducts(), (2023, 2025)) is None


def test_downsample_classes_keeps_class_values():
    band = np.tile(np.array([[1.0, 3.0], [2.0, 255.0]]), (1000, 1000))  # 2000 × 2000
    out, extent = downsample_classes(band, (0.0, 0.0, 2000.0, 2000.0), max_px=800)
    assert set(np.unique(out)) <= {1.0, 2.0, 3.0, 255.0}  # never a mean of two classes
    assert out.shape == (667, 667) and extent[2] == pytest.approx(2001.0)


def test_zoning_not_computed_names_each_missing_part():
    items = not_computed({"canopy_gap": {"not_computed": ["plantable open land (no zoning.open_land layer)"]},
                          "potential": {"not_subtracted": ["cropland", "red_line"]},
                          "importance": {"dropped_factors": {"height": "no canopy height model"}}})
    text = " | ".join(i["en"] for i in items)
    assert len(items) == 4
    assert "plantable open land" in text and "耕地 cropland (cropland) not given" in text
    assert "red_line_ha is “—”" in text and "factor height left out: no canopy height model" in text
    assert not_computed({}) == []


def _small_run() -> dict:
    """A two-zone city over two years, with change tables holding the attribution columns."""
    extent = (0.0, 0.0, 200.0, 100.0)
    geoms = {"city": [box(0, 0, 200, 100)], "district": [box(0, 0, 100, 100), box(100, 0, 200, 100)]}
    ids = {"city": ["C"], "district": ["D1", "D2"]}
    tables, change = {}, {}
    for y, shift in ((2023, 0.0), (2024, 1.0)):
        tables[y] = {}
        for lv in ("city", "district"):
            n = len(ids[lv])
            c = np.array([30.0 + shift]) if lv == "city" else np.array([10.0, 20.0]) + shift / 2
            tables[y][lv] = gpd.GeoDataFrame({"zone_id": ids[lv], "parent_id": [None] * n if lv == "city" else ["C"] * n,
                                              "level": lv, "name": ["城 & <x>"] + [f"区{k}" for k in range(n - 1)],
                                              "area_ha": [g.area / 1e4 for g in geoms[lv]], "carbon_t": c,
                                              "carbon_t_lo": c - 1, "carbon_t_hi": c + 1, "carbon_t_ha": c / 2},
                                             geometry=geoms[lv], crs="EPSG:32651")
    for lv in ("city", "district"):
        t0, t1 = tables[2023][lv], tables[2024][lv]
        df = t1[["zone_id", "parent_id", "level", "name", "area_ha", "geometry"]].copy()
        df["sink_t_yr"] = t1["carbon_t"] - t0["carbon_t"]
        df["sink_t_yr_lo"], df["sink_t_yr_hi"] = df["sink_t_yr"] - 2, df["sink_t_yr"] + 2
        df["stock_change_t"] = df["sink_t_yr"]
        df["change_gain_t"], df["change_loss_t"] = 0.6 * df["sink_t_yr"], -0.2 * df["sink_t_yr"]
        df["change_growth_t"], df["change_conversion_t"] = 0.6 * df["sink_t_yr"], 0.0
        df["no_net_loss_sink_space"] = True
        df["sink_space_change_ha"], df["sink_space_lost_ha"] = 0.0, 0.0
        change.setdefault((2023, 2024), {})[lv] = gpd.GeoDataFrame(df, geometry="geometry", crs="EPSG:32651")
    return {"extent": extent, "tables": tables, "change": change}


def test_series_section_is_left_out_with_one_year_and_made_with_two():
    run = _small_run()
    common = {"levels": ["city", "district"], "interval": "90 %", "extent": run["extent"], "crs": "EPSG:32651",
              "sink_max": 1.0, "outline_level": "district"}
    assert series_section(None, years=[2023], tables=run["tables"], change={}, **common) is None
    sec = series_section(None, years=[2023, 2024], tables=run["tables"], change=run["change"], **common)
    assert [s["level"] for s in sec["stock"]] == ["市域 city", "城区 district"]
    assert sec["trend"] is None and sec["transitions"] is None and sec["lost_patches"] == []
    (att,) = sec["attribution"]
    assert att["pair"] == "2023–2024" and len(att["figures"]) == 1  # the district bars; no attribution raster given
    net = [c["text"] for c in att["tables"][1]["table"]["rows"][0]["cells"]]
    assert net[2:] == ["+0.50", "+0.30", "−0.10", "+0.30", "0.00"]  # D1: net +0.5 = 0.3 − 0.1 + 0.3 + 0


def test_rendered_sections_escape_names_and_follow_the_inputs():
    run = _small_run()
    base = {"years": [2023, 2024], "tables": run["tables"], "change": run["change"], "models": {}, "targets": None,
            "provenance": {}, "carbon_maps": {}, "sink_maps": {}, "extent": run["extent"], "crs": "EPSG:32651",
            "levels": ["city", "district"], "type_names": {}}
    html = render_report(**base)
    assert '<section id="series">' in html and '<section id="zoning">' not in html
    assert "城 &amp; &lt;x&gt;" in html and "城 & <x>" not in html
    zoning = ZoningProducts(year=2024, importance=np.array([[1.0, 2.0], [3.0, np.nan]]),
                            tables={"potential": {"city": pd.DataFrame({
                                "zone_id": ["C"], "name": ["城 & <x>"], "grid_area_ha": [2.0], "construction_ha": [0.5],
                                "cropland_ha": [math.nan], "red_line_ha": [math.nan], "excluded_ha": [0.5],
                                "potential_ha": [1.5], "potential_pct": [75.0], "not_subtracted": ["cropland, red_line"]})}},
                            summaries={"potential": {"not_subtracted": ["cropland", "red_line"]}})
    html = render_report(**base, zoning=zoning)
    tables = parse(html).tables
    (row,) = body_rows(tables["zoning-potential-city"])
    cells = row[1]
    assert cells[2:8] == ["2.00", "0.50", DASH, DASH, "0.50", "1.50"]  # cropland and red line not given: never 0
    assert "耕地 cropland (cropland) not given: not subtracted" in html
    one_year = dict(base, years=[2024], tables={2024: run["tables"][2024]}, change={})
    assert '<section id="series">' not in render_report(**one_year)


def test_read_zoning_needs_one_year(tmp_path: Path):
    assert read_zoning([]) is None
    with pytest.raises(ValueError, match="one year"):
        read_zoning([tmp_path / "results/2023/zoning/importance.json", tmp_path / "results/2024/zoning/potential.json"])


# ---------------------------------------------------------------------------------------------
# The baseline demo run (three years, zoning on): the report equals its source tables


@pytest.fixture(scope="module")
def report(baseline_run) -> tuple[Path, str, _Tables]:
    html = (baseline_run / "results/report.html").read_text(encoding="utf-8")
    return baseline_run, html, parse(html)


def _years(run: Path) -> list[int]:
    return sorted(int(p.name) for p in (run / "results").iterdir() if p.name.isdigit())


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"zone_id": str, "parent_id": str})


def test_stock_over_time_equals_each_years_zone_table(report):
    run, _, parsed = report
    years = _years(run)
    assert len(years) >= 3
    for level in ("city", "district"):
        rows = body_rows(parsed.tables[f"series-stock-{level}"])
        for k, year in enumerate(years):
            src = _csv(run / f"results/{year}/zones/{level}.csv").set_index("zone_id")
            assert len(rows) == len(src)
            for _, cells in rows:
                zone = src.loc[cells[1]]
                shown, interval = number(cells[2 + 2 * k]), cells[3 + 2 * k]
                assert shown == pytest.approx(zone["carbon_t"], abs=rounding(zone["carbon_t"]))
                lo, hi = (number(v) for v in interval.split(" – "))
                dec = rounding(zone["carbon_t"])  # the interval is shown with the estimate's decimals
                assert lo == pytest.approx(zone["carbon_t_lo"], abs=dec)
                assert hi == pytest.approx(zone["carbon_t_hi"], abs=dec)


def test_trend_table_equals_the_trend_products(report):
    run, html, parsed = report
    src = _csv(run / "results/change/trend/zones/district.csv").set_index("zone_id")
    rows = body_rows(parsed.tables["trend-district"])
    assert len(rows) == len(src)
    for _, cells in rows:
        z = src.loc[cells[1]]
        assert number(cells[2]) == z["n_years"]
        assert number(cells[3]) == pytest.approx(z["trend_t_yr"], abs=rounding(z["trend_t_yr"]))
        assert cells[6].startswith("✓") == bool(z["trend_significant"])
    city = _csv(run / "results/change/trend/zones/city.csv").iloc[0]
    (_, cells), = body_rows(parsed.tables["trend-city"])
    assert number(cells[3]) == pytest.approx(city["trend_t_yr"], abs=rounding(city["trend_t_yr"]))
    assert 'id="summary-trend"' in html


def test_attribution_tables_equal_the_change_tables_and_add_up(report):
    run, _, parsed = report
    years = _years(run)
    pairs = [(a, b) for a, b in zip(years, years[1:], strict=False)] + [(years[0], years[-1])]
    for y0, y1 in pairs:
        for level in ("city", "district"):
            src = _csv(run / f"results/change/{y0}_{y1}/zones/{level}.csv").set_index("zone_id")
            rows = body_rows(parsed.tables[f"attribution-{y0}-{y1}-{level}"])
            assert len(rows) == len(src)
            for _, cells in rows:
                z = src.loc[cells[1]]
                net, parts = number(cells[2]), [number(c) for c in cells[3:]]
                assert net == pytest.approx(z["stock_change_t"], abs=rounding(z["stock_change_t"]))
                for part, shown in zip(("gain", "loss", "growth", "conversion", "other"), parts, strict=False):
                    assert shown == pytest.approx(z[f"change_{part}_t"], abs=rounding(z[f"change_{part}_t"]))
                # the parts add up to the net change (in the table, exactly; as shown, to the rounding)
                exact = sum(z[f"change_{p}_t"] for p in ("gain", "loss", "growth", "conversion", "other"))
                assert exact == pytest.approx(z["stock_change_t"], abs=1e-6 * max(1.0, abs(z["stock_change_t"])))
                assert sum(parts) == pytest.approx(net, abs=rounding(net) + sum(rounding(v) for v in parts))


def test_transition_matrix_total_is_the_city_area_and_carbon_matches(report):
    run, _, parsed = report
    years = _years(run)
    y0, y1 = years[0], years[-1]
    rows = body_rows(parsed.tables[f"transitions-{y0}-{y1}"])
    total = {cells[0]: cells[1:] for _, cells in rows}["合计 total"]
    city = _csv(run / f"results/{y1}/zones/city.csv").iloc[0]
    assert number(total[-1]) == pytest.approx(city["grid_area_ha"], abs=0.01)
    assert number(total[-1]) == pytest.approx(city["area_ha"], rel=1e-3)  # the demo city lies on the grid
    long = _csv(run / "results/change/trend/transitions/city.csv")
    sel = long[(long.y0 == y0) & (long.y1 == y1) & (long.kind == "vegetation")]
    crows = body_rows(parsed.tables[f"transition-carbon-{y0}-{y1}"])
    shown = {(c[0].split()[-1], c[1].split()[-1]): c for _, c in crows}
    for r in sel[sel.area_ha > 0].itertuples():
        cells = shown[(r.from_class.split()[-1], r.to_class.split()[-1])]
        assert number(cells[2]) == pytest.approx(r.area_ha, abs=0.006)
        if math.isfinite(r.carbon_change_t):
            assert number(cells[3]) == pytest.approx(r.carbon_change_t, abs=rounding(r.carbon_change_t))
        else:
            assert cells[3] == DASH


def test_sink_space_counts_equal_the_change_tables(report):
    run, html, parsed = report
    rows = body_rows(parsed.tables["series-sink-space-table"])
    assert rows
    for _, cells in rows:
        y0, y1 = (int(v) for v in cells[0].split("–"))
        level = cells[1].split()[-1]
        src = _csv(run / f"results/change/{y0}_{y1}/zones/{level}.csv")
        flags = src["no_net_loss_sink_space"]
        assert int(cells[3]) == int((flags == True).sum())  # noqa: E712 (CSV booleans, NaN unknown)
        assert int(cells[4]) == int((flags == False).sum())  # noqa: E712
        lost = src["sink_space_lost_ha"]
        assert (cells[7] == DASH) == bool(lost.isna().any())
        if cells[7] != DASH:
            assert number(cells[7]) == pytest.approx(lost.sum(), abs=0.006)
    for y0, y1 in {tuple(int(v) for v in cells[0].split("–")) for _, cells in rows}:
        patches = pd.read_csv(run / f"results/change/{y0}_{y1}/lost_patches.csv")
        assert f"{y0}–{y1}: {len(patches):,} 个斑块 patches" in html
        assert f"results/change/{y0}_{y1}/lost_patches.gpkg" in html


def test_zoning_tables_equal_the_zoning_products_and_name_what_was_not_computed(report):
    run, html, parsed = report
    year = _years(run)[-1]
    src = _csv(run / f"results/{year}/zoning/importance_city.csv").iloc[0]
    (_, cells), = body_rows(parsed.tables["zoning-importance-city"])
    assert number(cells[3]) == pytest.approx(src["classified_ha"], abs=0.006)
    assert number(cells[5]) == pytest.approx(src["area_ha_extremely_important"], abs=0.006)
    pot = _csv(run / f"results/{year}/zoning/potential_city.csv").iloc[0]
    (_, cells), = body_rows(parsed.tables["zoning-potential-city"])
    assert number(cells[7]) == pytest.approx(pot["potential_ha"], abs=0.006)
    summary = pd.read_json(run / f"results/{year}/zoning/potential.json", typ="series")
    for name, col in (("construction", 3), ("cropland", 4), ("red_line", 5)):
        if name in summary["not_subtracted"]:  # not given: named, and its cell is "—", never 0
            assert cells[col] == DASH
            assert f"({name}) not given" in html
    gap = _csv(run / f"results/{year}/zoning/canopy_gap_district.csv").set_index("zone_id")
    for _, cells in body_rows(parsed.tables["zoning-canopy_gap-district"]):
        assert number(cells[5]) == pytest.approx(gap.loc[cells[1], "planting_needed_ha"], abs=0.006)
        assert cells[10].endswith(gap.loc[cells[1], "gap_status"])
    assert f"Carbon-sink zoning {year}" in html


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH or at /usr/bin/chromium: "
                                             "install it (apt-get install chromium) to render the report headless")
def test_new_sections_render_in_headless_chromium(report, tmp_path: Path):
    run, html, _ = report
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}"]
    # the DOM Chromium built from the whole report holds the new sections, their tables and figures
    dom = subprocess.run([*flags, "--dump-dom", (run / "results/report.html").as_uri()], capture_output=True,
                         text=True, timeout=180, check=False).stdout
    tables = parse(dom).tables
    for sid in ("series-stock-city", "series-stock-district", "trend-city", "trend-district",
                "series-sink-space-table", "zoning-importance-city", "zoning-potential-district",
                "zoning-canopy_gap-city"):
        assert sid in tables and body_rows(tables[sid]), sid
    assert any(t.startswith("transitions-") for t in tables)
    # each section alone (the report's own head and styles) drawn to a screenshot: tables and images, not blank
    head = html[:html.index("<body>") + len("<body>")]
    for sid in ("series", "zoning"):
        start = html.index(f'<section id="{sid}"')
        page = tmp_path / f"{sid}.html"
        page.write_text(head + html[start:html.index("</section>", start) + 10] + "</body></html>", encoding="utf-8")
        shot = tmp_path / f"{sid}.png"
        subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,3000", page.as_uri()],
                       capture_output=True, timeout=180, check=False)
        assert shot.exists(), f"chromium wrote no screenshot of #{sid}"
        img = mpimg.imread(str(shot))[..., :3]
        assert img.shape[:2] == (3000, 1200)
        assert img.std() > 0.05, f"#{sid} rendered as a flat page"
        colourful = (img.max(axis=2) - img.min(axis=2)) > 0.2  # the maps and charts' colours
        assert colourful.mean() > 0.01, f"#{sid} shows no figure"


# ---------------------------------------------------------------------------------------------
# Partial observation of the trend (trend_partly_observed): ◐ beside the trend, the share and the observed trend


TREND_SEEN = "每年均看清 Seen every year (% of green space)"
TREND_OBS = "每年均看清部分的趋势 Trend of the land seen every year (t C/yr)"
TREND_OBS_IV = "该部分 90 % 区间 its interval (t C/yr)"


def _trend_products(years: list[int]) -> SeriesProducts:
    """A hand-made district trend table: D1 seen whole, D2 at 62.5 % with an observed trend of its own
    (not the trend scaled), D3 seen whole with a significant loss, D4 without typed land (share and trends unknown)."""
    n = 4
    df = pd.DataFrame({
        "zone_id": ["D1", "D2", "D3", "D4"], "name": ["甲", "乙", "丙", "丁"], "n_years": [3] * n,
        "trend_t_yr": [2.0, 4.0, -1.5, np.nan], "trend_t_yr_lo": [1.0, 3.0, -2.5, np.nan],
        "trend_t_yr_hi": [3.0, 5.0, -0.5, np.nan], "trend_t_ha_yr": [0.2, 0.4, -0.15, np.nan],
        "trend_significant": [True, True, True, None], "trend_class": ["gain", "gain", "loss", "unknown"],
        "trend_co2e_t_yr": [7.33, 14.67, -5.5, np.nan],
        "observed_all_pct": [100.0, 62.5, 100.0, np.nan],
        "trend_observed_t_yr": [2.0, 1.23, -1.5, np.nan], "trend_observed_t_yr_lo": [1.0, 0.45, -2.5, np.nan],
        "trend_observed_t_yr_hi": [3.0, 2.01, -0.5, np.nan],
        "trend_partly_observed": pd.array([False, True, False, pd.NA], dtype="boolean"),
        **{f"carbon_t_{y}": [10.0 + k] * n for k, y in enumerate(years)},
    })
    return SeriesProducts(trend={"district": df})


def test_trend_table_marks_the_partly_observed_zone_with_its_observed_trend():
    run = _small_run()
    years = [2023, 2024]
    html = render_report(years=years, tables=run["tables"], change=run["change"], models={}, targets=None,
                         provenance={}, carbon_maps={}, sink_maps={}, extent=run["extent"], crs="EPSG:32651",
                         levels=["city", "district"], type_names={}, series=_trend_products(years))
    table = parse(html).tables["trend-district"]
    headers = table[0][1]
    seen, obs, obs_iv = (headers.index(h) for h in (TREND_SEEN, TREND_OBS, TREND_OBS_IV))
    assert (obs, obs_iv) == (seen + 1, seen + 2) and headers[3] == "趋势 Trend (t C/yr)"
    rows = {cells[1]: (cls, cells) for cls, cells in body_rows(table)}
    text = {z: cells for z, (_, cells) in rows.items()}
    assert text["D1"][3] == "+2.00" and text["D1"][seen:seen + 3] == ["100.0 %", "+2.00", "1.00 – 3.00"]
    assert text["D2"][3] == "+4.00 ◐" and text["D2"][seen:seen + 3] == ["◐ 62.5 %", "+1.23", "0.45 – 2.01"]
    assert text["D3"][3] == "−1.50" and text["D3"][seen:seen + 3] == ["100.0 %", "−1.50", "−2.50 – −0.50"]
    assert text["D4"][3] == "—" and text["D4"][seen:seen + 3] == ["—", "—", "—"]  # no typed land: unknown
    assert [rows[z][0] for z in ("D1", "D2", "D3", "D4")] == ["", "partly", "loss", ""]
    assert [z for z, cells in text.items() if "◐" in "".join(cells)] == ["D2"]  # that zone alone
    assert text["D2"][headers.index("CO₂e (t/yr)")] == "+14.7"  # the columns after the new ones in place
    assert [t[-2:] for t in text.values()] == [["10.0", "11.0"]] * 4
    assert 'id="trend-partly-definition"' in html
    assert "1 of 4 zones were partly seen: their trend includes filled-in land." in html


def test_baseline_report_shows_no_partly_observed_trend(baseline_run, tmp_path):
    """The baseline's trend tables (every zone seen every year there) rendered through run_report, as rule report
    calls it, with the trend products: no ◐ in any trend table, every share "100.0 %" or "—" (no typed land) and
    the trend of the land seen every year equal to the trend."""
    from greensink.config import load_schema, read_yaml, with_defaults
    from greensink.report import run_report
    from greensink.tiers import VEG, VEG_NAME

    cfg = with_defaults(read_yaml(baseline_run / "config.yaml"), load_schema())
    years = sorted(int(y) for y in cfg["years"])
    levels = [z["level"] for z in cfg["zones"]]
    r = baseline_run / "results"
    pairs = sorted(tuple(int(v) for v in d.name.split("_")) for d in (r / "change").iterdir()
                   if d.name[:4].isdigit() and "_" in d.name)
    trend = [*sorted((r / "change/trend/zones").glob("*.gpkg")), r / "change/trend/trend.json"]
    html = run_report(
        tmp_path / "report.html", tables=[r / f"{y}/zones/{lv}.gpkg" for y in years for lv in levels],
        change=[r / f"change/{y0}_{y1}/zones/{lv}.gpkg" for y0, y1 in pairs for lv in levels],
        models=[r / f"{y}/model/models.json" for y in years], carbon=[r / f"{y}/carbon.tif" for y in years],
        sinks=[r / f"change/{y0}_{y1}/sink.tif" for y0, y1 in pairs], provenance=r / "provenance.json",
        grid=r / "zones/grid.json", nesting=r / "zones/nesting.csv", targets=cfg["targets"],
        template=Path(__file__).resolve().parents[1] / "reports/report.html.j2", years=years, pairs=pairs,
        levels=levels, type_names=dict(cfg["greenspace"]["types"]) if cfg.get("greenspace") else {VEG: VEG_NAME},
        interval_pct=cfg["carbon"]["interval_pct"], trend=trend)
    tables = {t: v for t, v in parse(html).tables.items() if t.startswith("trend-")}
    assert len(tables) == min(len(levels), 3)
    for table_id, table in tables.items():
        src = _csv(r / f"change/trend/zones/{table_id[len('trend-'):]}.csv").set_index("zone_id")
        assert not src["trend_partly_observed"].fillna(False).astype(bool).any()  # the products say so too
        headers = table[0][1]
        seen, obs = headers.index(TREND_SEEN), headers.index(TREND_OBS)
        for cls, cells in body_rows(table):
            assert "◐" not in "".join(cells) and "partly" not in cls, (table_id, cells[1])
            pct = src.loc[cells[1], "observed_all_pct"]
            assert cells[seen] == (DASH if math.isnan(pct) else "100.0 %"), (table_id, cells[1])
            assert cells[obs] == cells[3], (table_id, cells[1])  # whole: the land seen every year is the zone's
    assert html.count("Every zone's green space was seen clearly in every year") == len(tables)
    assert 'id="trend-partly-definition"' in html  # the "Seen every year" column explained, as in the change section
