"""The report's scenario comparison (issue 13 item 6) on a tiny hand-built summary and zone tables."""

from __future__ import annotations

import math
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from greensink.report import render_report
from greensink.report.scenarios import read_scenarios, scenario_section, verdict
from greensink.scenario.tables import SUMMARY_COLUMNS
from test_report import EXTENT, TEMPLATE_DIR, make_inputs

NAN = math.nan
EVIL = "<b>公园</b> & park"


class Tables(HTMLParser):
    """Cell texts of every table, by table id."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._id = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._id = dict(attrs).get("id")
            self.tables[self._id] = []
        elif tag == "tr" and self._id is not None:
            self.tables[self._id].append([])
        elif tag in ("td", "th") and self._id is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._id][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._id = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def summary_rows() -> pd.DataFrame:
    """Three plans on 2024 at two levels; the city has one target (green coverage >= 40 %), the district none.
    park: +200 t C (150 .. 260): a gain; construction: -30 t C (-50 .. +5): holds 0; unknown: NaN."""
    totals = {"park": dict(label=EVIL, carbon_t=1200.0, carbon_t_lo=1150.0, carbon_t_hi=1260.0, difference_t=200.0,
                           difference_t_lo=150.0, difference_t_hi=260.0, changed_area_ha=3.25),
              "construction": dict(label="建设占用 construction", carbon_t=970.0, carbon_t_lo=900.0, carbon_t_hi=1040.0,
                                   difference_t=-30.0, difference_t_lo=-50.0, difference_t_hi=5.0, changed_area_ha=1.5),
              "unknown": dict(label=NAN, carbon_t=NAN, carbon_t_lo=NAN, carbon_t_hi=NAN, difference_t=NAN,
                              difference_t_lo=NAN, difference_t_hi=NAN, changed_area_ha=0.0)}
    rows = []
    for name, t in totals.items():
        common = dict(scenario=name, baseline_year=2024, baseline_carbon_t=1000.0, zones=1, **t)
        rows.append(dict(common, level="city", indicator="green_coverage_pct", indicator_label="绿化覆盖率 green coverage",
                         op=">=", target=40.0, met=1 if name == "park" else 0, missed=0 if name == "park" else 1,
                         no_data=0, met_baseline=0, missed_baseline=1, no_data_baseline=0,
                         met_change=1 if name == "park" else 0, value_mean=41.5 if name == "park" else 38.0,
                         value_mean_baseline=38.0))
        rows.append(dict(common, level="district", indicator="", zones=3))
    return pd.DataFrame(rows).reindex(columns=SUMMARY_COLUMNS)


def district_table() -> pd.DataFrame:
    return pd.DataFrame({"zone_id": ["D1", "D2", "D3"], "name": ["西山区", "东湖区", "北城区"],
                         "changed_area_ha": [0.0, 3.25, 0.0], "baseline_carbon_t": [400.0, 350.0, 250.0],
                         "carbon_t": [400.0, 552.0, NAN], "difference_t": [0.0, 202.0, NAN],
                         "difference_t_lo": [0.0, 151.0, NAN], "difference_t_hi": [0.0, 261.0, NAN]})


@pytest.fixture
def products(tmp_path: Path):
    summary = tmp_path / "results/scenarios/summary.csv"
    summary.parent.mkdir(parents=True)
    summary_rows().to_csv(summary, index=False)
    paths = [summary]
    for name in ("park", "construction"):
        path = tmp_path / f"results/scenarios/{name}/zones/district.csv"
        path.parent.mkdir(parents=True)
        district_table().to_csv(path, index=False)
        paths.append(path)
    return read_scenarios(paths)


def test_verdict_reads_the_interval() -> None:
    assert verdict(200, 150, 260) == "gain"
    assert verdict(-30, -50, -1) == "loss"
    assert verdict(-30, -50, 5) == "no significant change"
    assert verdict(0, 0, 0) == "no significant change"  # a plan without changes differs by exactly 0
    assert verdict(NAN, 1, 2) == verdict(5, NAN, 6) == "unknown"


def test_read_scenarios_knows_files_by_place(products) -> None:
    assert list(products.summary["scenario"].unique()) == ["park", "construction", "unknown"]
    assert sorted(products.zones) == ["construction", "park"] and list(products.zones["park"]) == ["district"]
    assert read_scenarios([]) is None
    with pytest.raises(ValueError, match="summary.csv"):
        read_scenarios([Path("results/scenarios/a/zones/city.csv")])


def test_section_stock_targets_and_zones(products) -> None:
    sec = scenario_section(products, levels=["city", "district"], interval="90 %")
    assert sec["names"] == ["park", "construction", "unknown"]
    stock = {r["cells"][0]["text"]: [c["text"] for c in r["cells"]] for r in sec["stock"]["rows"]}
    # scenario, baseline year, changed area, stock, interval, baseline, difference, interval, reading
    assert stock[f"{EVIL} (park)"] == ["<b>公园</b> & park (park)", "2024", "3.25", "1,200", "1,150 – 1,260", "1,000",
                                        "+200", "150 – 260", "增汇 gain (interval above 0)"]
    assert stock["建设占用 construction (construction)"][6:] == ["−30.0", "−50.0 – 5.0",
                                                               "无显著变化 no significant change (interval holds 0)"]
    assert stock["unknown"][3:] == ["—", "—", "1,000", "—", "—", "未知 unknown (no data)"]  # no data, never 0
    targets = [[c["text"] for c in r["cells"]] for r in sec["targets"]["rows"]]
    assert len(targets) == 3  # the district has no target: no row
    assert targets[0] == [f"{EVIL} (park)", "市域 city", "绿化覆盖率 green coverage", "≥ 40.0", "1", "0", "0", "0", "+1",
                          "41.5", "38.0"]
    assert sec["targets"]["rows"][0]["cells"][8]["cls"] == "num met"
    zones = sec["zones"][0]
    assert zones["scenario"] == "park" and zones["n"] == 3
    # largest absolute difference first, the unknown zone last
    assert [r["cells"][1]["text"] for r in zones["table"]["rows"]] == ["D2", "D1", "D3"]
    assert [c["text"] for c in zones["table"]["rows"][2]["cells"]][4:] == ["—", "—", "—", "未知 unknown (no data)"]


def test_report_has_the_section_only_with_scenarios(products) -> None:
    inputs = make_inputs()
    assert inputs["extent"] == EXTENT and inputs["template_dir"] == TEMPLATE_DIR
    without = render_report(**inputs)
    assert 'id="scenarios"' not in without and 'href="#scenarios"' not in without
    html = render_report(**inputs, scenarios=products)
    assert 'id="scenarios"' in html and 'href="#scenarios"' in html
    assert "&lt;b&gt;公园&lt;/b&gt; &amp; park (park)" in html and "<b>公园</b>" not in html  # escaped
    parser = Tables()
    parser.feed(html)
    stock = parser.tables["scenarios-stock-city"]
    assert stock[0][0] == "情景 Scenario" and len(stock) == 4
    assert stock[1][6:8] == ["+200", "150 – 260"]
    assert parser.tables["scenarios-targets"][1][8] == "+1"
    assert [row[0] for row in parser.tables["scenarios-zones-park"][1:]] == ["东湖区", "西山区", "北城区"]
    assert "scenarios-zones-unknown" not in parser.tables  # no zone table given for it
