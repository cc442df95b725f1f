"""Tests of greensink.report: the planner's self-contained HTML report.

Inputs are synthetic and small: a 4 km × 3 km city, 2 districts, 4 blocks and 70 parcels
(so the parcel tables are truncated), two years, one green-space type on the coefficient table,
targets evaluated with greensink.targets (met, missed and no-data rows) and a NaN per-capita value.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from html.parser import HTMLParser
from importlib import resources
from io import BytesIO
from pathlib import Path

import geopandas as gpd
import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from greensink.change import change_table, sink_classes
from greensink.report import (
    DASH,
    ZONE_HEADERS,
    dominant_source_text,
    downsample,
    format_interval,
    format_number,
    formula,
    load_calibration,
    read_calibration,
    render_report,
    variance_breakdown,
)
from greensink.targets import evaluate
from greensink.uncertainty import SOURCES, plots_needed

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "reports"
YEARS = [2023, 2024]
LEVELS = ["city", "district", "block", "parcel"]
TYPES = ["G1", "G2", "EG"]
TYPE_NAMES = {"G1": "公园绿地 park", "G2": "防护绿地 protective", "EG": "区域绿地 regional"}
EVIL = "<script>alert(1)</script> & 东湖区"
EVIL_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; 东湖区"
FALLBACK_REASON = "3 plots < min_plots 10: using coefficient table (c_above + c_below = 12.5 t C/ha)"
EXTENT = (500_000.0, 3_400_000.0, 504_000.0, 3_403_000.0)  # (xmin, ymin, xmax, ymax), UTM metres
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SECTION_IDS = ["summary", "maps", "tables", "types", "change", "uncertainty", "targets", "models", "plausibility",
               "methods", "provenance"]
# the city (one zone) carbon of each year: estimate, lower, upper (t C)
CITY_CARBON = {2023: (123_456.7, 110_000.2, 130_000.4), 2024: (125_000.0, 111_500.0, 131_900.0)}
CITY_U_PCT = 6.3  # the city's U % (carbon_u_pct) in both years
# each level's variance shares (var_share_<source>_pct) in SOURCES order: curve, table, residual, ndvi, edges
STOCK_SHARES = {"city": (62, 3, 21, 9, 5), "district": (55, 3, 28, 9, 5), "block": (14, 3, 71, 8, 4),
                "parcel": (10, 1, 30, 55, 4)}
SINK_SHARES = (5, 1, 37, 48, 9)  # the sink's: the curve and the table largely cancel between paired years


# ---------------------------------------------------------------------------------------------
# Synthetic inputs


def _zones(level: str) -> tuple[list[str], list[str | None], list[str], list]:
    """(zone ids, parent ids, names, shapely boxes) of one level; x0, y0 = EXTENT's corner."""
    x0, y0 = EXTENT[0], EXTENT[1]
    if level == "city":
        return ["C1"], [None], ["示范市 Demo city"], [box(x0, y0, x0 + 4000, y0 + 3000)]
    if level == "district":
        return (["D1", "D2"], ["C1", "C1"], [EVIL, "西湖区 West Lake"],
                [box(x0, y0, x0 + 2000, y0 + 3000), box(x0 + 2000, y0, x0 + 4000, y0 + 3000)])
    if level == "block":
        geoms = [box(x0 + i * 1000, y0, x0 + (i + 1) * 1000, y0 + 3000) for i in range(4)]
        return [f"B{i + 1}" for i in range(4)], ["D1", "D1", "D2", "D2"], [f"街区 {i + 1}" for i in range(4)], geoms
    ids, parents, names, geoms = [], [], [], []
    for k in range(70):  # 10 columns × 7 rows of 400 m × 3000/7 m
        col, row = k % 10, k // 10
        ids.append(f"P{k:02d}")
        parents.append(f"B{col * 400 // 1000 + 1}")
        names.append(f"地块 parcel {k:02d}")
        geoms.append(box(x0 + col * 400, y0 + row * 3000 / 7, x0 + (col + 1) * 400, y0 + (row + 1) * 3000 / 7))
    return ids, parents, names, geoms


def _zone_table(level: str, year: int) -> gpd.GeoDataFrame:
    ids, parents, names, geoms = _zones(level)
    n = len(ids)
    area = np.array([g.area / 1e4 for g in geoms])
    shift = 0.0 if year == 2023 else 1.0
    if level == "city":
        carbon, lo, hi = (np.array([v]) for v in CITY_CARBON[year])
    else:
        density = 10.0 + 0.5 * np.arange(n) + shift  # parcel P69 densest, P00 sparsest
        carbon = density * area
        lo, hi = 0.9 * carbon, 1.1 * carbon
    df = pd.DataFrame({"zone_id": ids, "parent_id": parents, "level": level, "name": names})
    df["area_ha"] = area
    df["grid_area_ha"] = area
    df["observed_pct"] = 100.0
    df["green_coverage_pct"] = np.linspace(35.0, 45.0, n) + shift
    df["green_area_ha"] = df["green_coverage_pct"] / 100 * area
    df["green_space_ratio_pct"] = np.linspace(28.0, 36.0, n)
    df["green_space_area_ha"] = df["green_space_ratio_pct"] / 100 * area
    df["canopy_cover_pct"] = np.linspace(20.0, 30.0, n)
    df["canopy_area_ha"] = df["canopy_cover_pct"] / 100 * area
    df["ndvi_mean"] = 0.45
    df["fvc_mean"] = 0.5
    df["carbon_t"] = carbon
    df["carbon_t_lo"] = lo
    df["carbon_t_hi"] = hi
    df["carbon_t_ha"] = carbon / area
    df["carbon_t_per_green_space_ha"] = carbon / df["green_space_area_ha"]
    df["co2e_t"] = carbon * 44 / 12
    df["co2e_t_lo"] = lo * 44 / 12
    df["co2e_t_hi"] = hi * 44 / 12
    for share, t in zip((0.5, 0.3, 0.2), TYPES, strict=True):
        df[f"carbon_t_{t}"] = share * carbon
    for share, t in zip((0.5, 0.3, 0.2), TYPES, strict=True):
        df[f"green_space_area_ha_{t}"] = share * df["green_space_area_ha"]
    df["park_area_ha"] = df["green_space_area_ha_G1"]
    df["population"] = 50_000.0
    if level == "district":
        df.loc[1, "population"] = 0.0  # no people: per-capita is NaN, and so is D2's canopy cover
        df.loc[1, "canopy_cover_pct"] = np.nan
    df["park_area_per_capita_m2"] = np.where(df["population"] > 0, df["park_area_ha"] * 1e4 / df["population"], np.nan)
    df["plausibility_flag"] = ""
    if level == "block":
        df.loc[2, "plausibility_flag"] = "80.0 t C/ha of green space exceeds the Beijing maximum 68"
    # uncertainty columns (docs/outputs.md): U %, the conservative bound (= the lower bound), variance shares
    df["carbon_u_pct"] = CITY_U_PCT if level == "city" else np.linspace(9.5, 30.5, n)
    df["carbon_t_conservative"] = lo
    for source, share in zip(SOURCES, STOCK_SHARES[level], strict=True):
        df[f"var_share_{source}_pct"] = float(share)
    return gpd.GeoDataFrame(df, geometry=geoms, crs="EPSG:32651")


def _sink_columns(df: pd.DataFrame) -> pd.DataFrame:
    """The change table's significance columns from its sink and interval, as greensink.change writes them:
    the class by greensink.change.sink_classes, U % from the interval (half the 95 % interval taken as
    1.96/1.645 × half the 90 % one), the conservative bound = the lower bound, no net carbon loss."""
    sink, lo, hi = (df[c].to_numpy(float) for c in ("sink_t_yr", "sink_t_yr_lo", "sink_t_yr_hi"))
    df["sink_class"] = sink_classes(sink, lo, hi)
    df["sink_significant"] = df["sink_class"].isin(["gain", "loss"])
    df["sink_u_pct"] = 100 * (hi - lo) / 2 * (1.96 / 1.645) / np.abs(sink)
    df["sink_t_yr_conservative"] = lo
    df["no_net_carbon_loss"] = df["sink_class"] != "loss"
    return df


def _change_table(t0: gpd.GeoDataFrame, t1: gpd.GeoDataFrame, y0: int, y1: int) -> gpd.GeoDataFrame:
    years = y1 - y0
    sink = (t1["carbon_t"] - t0["carbon_t"]) / years
    df = pd.DataFrame({
        "zone_id": t1["zone_id"], "parent_id": t1["parent_id"], "level": t1["level"], "name": t1["name"],
        "area_ha": t1["area_ha"], "year_from": y0, "year_to": y1,
        "carbon_t_from": t0["carbon_t"], "carbon_t_to": t1["carbon_t"],
        "sink_t_yr": sink, "sink_t_yr_lo": sink - 0.2 * sink.abs() - 50, "sink_t_yr_hi": sink + 0.2 * sink.abs() + 50,
    })
    df["sink_t_ha_yr"] = sink / t1["area_ha"]
    df["sink_co2e_t_yr"] = sink * 44 / 12
    df["green_area_ha_from"] = t0["green_area_ha"]
    df["green_area_ha_to"] = t1["green_area_ha"]
    df["green_area_change_ha"] = df["green_area_ha_to"] - df["green_area_ha_from"]
    if t1["level"].iloc[0] == "block":
        df.loc[0, "green_area_change_ha"] = -1.5  # one block lost green area
    df["no_net_loss"] = df["green_area_change_ha"] >= 0
    df = _sink_columns(df)
    for source, share in zip(SOURCES, SINK_SHARES, strict=True):
        df[f"var_share_{source}_pct"] = float(share)
    return gpd.GeoDataFrame(df, geometry=t1.geometry.values, crs=t1.crs)


def _models() -> dict:
    plots_cv = {"rmse_t_ha": 4.321, "r2": 0.73, "bias_t_ha": -0.12, "n": 24, "n_folds": 5}
    # curve U % and plots needed for the target U 10 %, as greensink.uncertainty.annotate_models writes them:
    # G1 24 × (18/10)² = 77.76 -> 78 plots; G2 15 × (9/10)² = 12.15 -> 13, fewer than it has
    return {
        "predictor": "ndvi", "n_bootstrap": 200, "min_plots": 10, "target_u_pct": 10.0,
        "types": {
            "G1": {"type": "G1", "source": "plots", "form": "linear", "params": {"a": 3.2, "b": 45.6}, "n": 24,
                   "cv": plots_cv, "curve_u_pct": 18.0, "plots_needed": plots_needed(24, 18.0, 10.0)},
            "G2": {"type": "G2", "source": "plots", "form": "power", "params": {"a": 60.1, "b": 1.8}, "n": 15,
                   "cv": {**plots_cv, "n": 15, "r2": 0.51}, "curve_u_pct": 9.0, "plots_needed": plots_needed(15, 9.0, 10.0)},
            "EG": {"type": "EG", "source": "coefficients", "form": "constant", "params": {"c": 12.5}, "n": 3,
                   "reason": FALLBACK_REASON, "uncertainty_pct": 40.0, "cv": None},
        },
    }


def _band(shape: tuple[int, int], offset: float) -> np.ndarray:
    rows, cols = shape
    yy, xx = np.mgrid[0:rows, 0:cols]
    est = (offset + 40.0 * xx / cols + 10.0 * np.sin(yy / 5.0)).astype(np.float32)
    est[5:12, 5:15] = np.nan  # a cloud hole
    return np.stack([est, 0.8 * est, 1.2 * est]).astype(np.float32)


def make_inputs() -> dict:
    tables = {y: {lv: _zone_table(lv, y) for lv in LEVELS} for y in YEARS}
    change = {(2023, 2024): {lv: _change_table(tables[2023][lv], tables[2024][lv], 2023, 2024) for lv in LEVELS}}
    targets = evaluate(tables[2024], [
        {"level": "city", "indicator": "green_coverage_pct", "op": ">=", "value": 35,
         "label": "绿化覆盖率 green coverage ≥ 35 %"},
        {"level": "district", "indicator": "canopy_cover_pct", "op": ">=", "value": 25,
         "label": "树冠覆盖率 tree-canopy cover ≥ 25 %"},
        {"level": "block", "indicator": "green_space_ratio_pct", "op": ">=", "value": 30,
         "label": "绿地率 green-space ratio ≥ 30 %"},
        {"level": "parcel", "indicator": "green_coverage_pct", "op": ">=", "value": 40,
         "label": "绿化覆盖率 green coverage ≥ 40 %"},
    ])
    carbon_maps = {2023: _band((60, 80), 5.0), 2024: _band((60, 80), 6.0)}
    sink = carbon_maps[2024] - carbon_maps[2023]
    sink[0, :, :40] -= 3.0  # a western loss so the diverging map has both signs
    return {
        "years": YEARS, "tables": tables, "change": change, "models": {y: _models() for y in YEARS},
        "targets": targets,
        "provenance": {"config_sha256": "ab" * 32, "greensink_version": "0.1.0",
                       "packages": {"numpy": "2.1.0", "geopandas": "1.0.1"},
                       "inputs": [{"path": "data/zones/parcels.gpkg", "sha256": "cd" * 32}]},
        "carbon_maps": carbon_maps, "sink_maps": {(2023, 2024): sink}, "extent": EXTENT, "crs": "EPSG:32651",
        "levels": LEVELS, "type_names": TYPE_NAMES, "template_dir": TEMPLATE_DIR,
    }


class _Tables(HTMLParser):
    """Collects every <table id=...> as a list of (row class, [cell texts]) and every <img src>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[tuple[str, list[str]]]] = {}
        self.images: list[str] = []
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("id") or f"anon-{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
            self.tables[self._table].append((a.get("class") or "", self._row))
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "img":
            self.images.append(a.get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def body_rows(table: list[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
    """The data rows (not the header, not the "… not shown …" gap row)."""
    return [(cls, cells) for cls, cells in table[1:] if cls != "gap"]


@pytest.fixture(scope="module")
def inputs() -> dict:
    return make_inputs()


@pytest.fixture(scope="module")
def html(inputs: dict) -> str:
    return render_report(**inputs)


@pytest.fixture(scope="module")
def parsed(html: str) -> _Tables:
    p = _Tables()
    p.feed(html)
    return p


# ---------------------------------------------------------------------------------------------
# Formatting


def test_format_number_reads_well_and_never_turns_missing_into_zero():
    assert format_number(123_456.7) == "123,457"  # >= 100: no decimals, thousands separators
    assert format_number(12.345) == "12.3"
    assert format_number(1.2345) == "1.23"
    assert format_number(-1234.5) == "−1,234"  # true minus sign
    assert format_number(2.5, 1, sign=True) == "+2.5"
    assert format_number(-0.001, 1, sign=True) == "0.0"  # rounds to zero: no sign
    for missing in (np.nan, None, np.inf, float("-inf"), pd.NA):
        assert format_number(missing) == DASH
    assert format_number(0.0) == "0.00"  # a real zero stays a zero
    assert format_interval(110_000.2, 130_000.4) == "110,000 – 130,000"
    assert format_interval(np.nan, 3.0) == DASH


def test_downsample_is_a_block_mean_with_bounded_extent():
    band = np.arange(1000 * 1500, dtype=np.float32).reshape(1000, 1500) % 7
    band[:30, :30] = np.nan  # one whole block (factor 15 -> 2 × 2 blocks of 15) with no data
    small, ext = downsample(band, (0.0, 0.0, 15_000.0, 10_000.0), max_px=100)
    assert small.shape == (67, 100)  # ceil(1000 / 15) rows, 1500 / 15 columns
    assert ext == pytest.approx((0.0, 10_000.0 - 67 * 150.0, 15_000.0, 10_000.0))  # padded below
    assert np.isnan(small[0, 0]) and np.isnan(small[1, 1])
    assert small[10, 10] == pytest.approx(np.nanmean(band[150:165, 150:165]))
    assert small[-1, 5] == pytest.approx(np.nanmean(band[990:, 75:90]))  # partial last block: mean of what is there
    same, same_ext = downsample(band[:50, :80], (0.0, 0.0, 8.0, 5.0), max_px=100)
    assert same.shape == (50, 80) and same_ext == (0.0, 0.0, 8.0, 5.0)


def test_formula_writes_each_form_with_its_parameters():
    assert formula("linear", {"a": 3.2, "b": -45.6}) == "C = 3.2 − 45.6 × NDVI"
    assert formula("logarithmic", {"a": 40, "b": 15}) == "C = 40 + 15 × ln(NDVI)"
    assert formula("power", {"a": 60.1, "b": 1.8}) == "C = 60.1 × NDVI^1.8"
    assert formula("exponential", {"a": 2, "b": 4}) == "C = 2 × exp(4 × NDVI)"
    assert formula("constant", {"c": 12.5}).startswith("C = 12.5 ")


# ---------------------------------------------------------------------------------------------
# Content


def test_document_is_utf8_chinese_and_has_every_section(html: str):
    assert html.lstrip().startswith("<!DOCTYPE html>")
    assert '<html lang="zh-CN">' in html
    assert '<meta charset="utf-8">' in html
    assert "绿地碳汇核算报告 Green-space carbon account" in html
    assert "EPSG:32651" in html
    for sid in SECTION_IDS:
        assert f'id="{sid}"' in html, sid


def test_summary_gives_city_carbon_with_interval_and_co2e(html: str):
    summary = html[html.index('id="summary"'):html.index('id="maps"')]
    # 2023 city: 123,456.7 t C (110,000.2 – 130,000.4); CO2e × 44/12 = 452,674.6 (403,334.1 – 476,668.1)
    assert "123,457 t C" in summary
    assert "110,000 – 130,000" in summary
    assert "452,675 t CO₂e" in summary
    assert "403,334 – 476,668" in summary
    assert "125,000 t C" in summary and "111,500 – 131,900" in summary
    # sink 2023-2024 = 125,000 − 123,456.7 = +1,543.3 t C/yr; interval ± (0.2 × 1,543.3 + 50) = 1,185 – 1,902
    assert "+1,543 t C/yr" in summary
    assert "1,185 – 1,902" in summary
    assert "90 %" in summary


def test_summary_counts_targets(html: str, inputs: dict):
    status = inputs["targets"]["status"].value_counts()
    # city coverage 36 % ≥ 35 met; districts: D1 canopy 20 < 25 missed, D2 NaN no data;
    # blocks: ratios 28, 30.7, 33.3, 36 ≥ 30 -> 1 missed, 3 met;
    # parcels: coverage 36 + 10 k/69 ≥ 40 from k = 28 -> 28 missed, 42 met
    assert (status["met"], status["missed"], status["no data"]) == (46, 30, 1)
    summary = html[html.index('id="summary"'):html.index('id="maps"')]
    assert "met 46" in summary and "missed 30" in summary and "no data 1" in summary
    assert "共 of 77 项" in summary


def test_zone_tables_show_small_levels_whole(parsed: _Tables):
    for year in YEARS:
        assert len(body_rows(parsed.tables[f"zones-{year}-city"])) == 1
        assert len(body_rows(parsed.tables[f"zones-{year}-district"])) == 2
        assert len(body_rows(parsed.tables[f"zones-{year}-block"])) == 4
    city = body_rows(parsed.tables["zones-2023-city"])[0][1]
    assert city[1] == "C1"
    assert city[6] == "123,457" and city[7] == "110,000 – 130,000"


def test_parcel_table_is_truncated_to_top_and_bottom_with_pointer(html: str, parsed: _Tables):
    rows = body_rows(parsed.tables["zones-2023-parcel"])
    ids = [cells[1] for _, cells in rows]
    assert len(ids) == 40
    assert ids[:20] == [f"P{k:02d}" for k in range(69, 49, -1)]  # highest carbon density first
    assert ids[20:] == [f"P{k:02d}" for k in range(19, -1, -1)]
    assert "P35" not in ids
    tables = html[html.index('id="tables"'):html.index('id="types"')]
    assert "This level has 70 zones" in tables
    assert "本层共 70 个单元" in tables
    assert "results/2023/zones/parcel.gpkg" in tables and "results/2023/zones/parcel.csv" in tables
    assert "30 个单元未列出 zones not shown" in tables
    assert len(body_rows(parsed.tables["change-2023-2024-parcel"])) == 40
    assert "results/change/2023_2024/zones/parcel.gpkg" in html


def test_nan_is_a_dash_never_zero_or_nan(html: str, parsed: _Tables):
    district = {cells[1]: cells for _, cells in body_rows(parsed.tables["zones-2024-district"])}
    park = ZONE_HEADERS.index("人均公园绿地 Park (m²/person)")
    assert district["D2"][park] == DASH  # park m²/person: no people
    assert district["D2"][5] == DASH  # canopy cover NaN
    assert district["D1"][park] not in (DASH, "0", "0.0")
    targets = {cells[2]: cells for _, cells in body_rows(parsed.tables["targets-district"])}
    assert targets["D2"][3] == DASH and targets["D2"][6] == DASH  # value and gap
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)
    assert not re.search(r"\bnan\b", text, flags=re.IGNORECASE)
    assert not re.search(r"\bNone\b", text)


def test_zone_names_are_escaped(html: str):
    # the only scripts are the interactive map's own (its data block and its code; test_report_webmap.py)
    assert re.findall(r"<script[^>]*>", html) == ['<script type="application/json" id="wm-data">', "<script>"]
    assert EVIL_ESCAPED in html
    assert "alert(1)</script>" not in html and "<script>alert" not in html


def test_self_contained_no_external_resources(html: str, parsed: _Tables):
    assert "http://" not in html and "https://" not in html
    assert "<link" not in html
    assert not re.search(r"url\(", html)
    assert "<style>" in html
    assert parsed.images and all(src.startswith("data:image/png;base64,") for src in parsed.images)


def test_images_are_valid_nontrivial_pngs(parsed: _Tables):
    # per year: the pixel map + district, block and parcel choropleths (the one-zone city is skipped);
    # plus one sink map; plus the time series' stock charts of the city and the districts; plus the target
    # maps of the district, block and parcel levels (the interactive map's PNG is an SVG <image>, not an <img>)
    assert len(parsed.images) == 2 * 4 + 1 + 2 + 3
    shapes = []
    for src in parsed.images:
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data[:8] == PNG_SIGNATURE
        assert len(data) > 8_000  # a drawn map, not an empty canvas
        img = mpimg.imread(BytesIO(data), format="png")
        shapes.append(img.shape[:2])
        assert img[..., :3].std() > 0.05
    # maps 7 × 6 in, charts 7 × 4.2 in, at 100 dpi
    assert sorted(shapes) == sorted([(600, 700)] * 12 + [(420, 700)] * 2)


def test_per_type_table_names_types_and_sums_to_city(parsed: _Tables):
    rows = body_rows(parsed.tables["types-2023"])
    by_code = {cells[0]: cells for _, cells in rows}
    assert by_code["G1"][1] == "公园绿地 park"
    assert by_code["G1"][2] == "61,728"  # 0.5 × 123,456.7
    assert by_code["EG"][3] == "20.0"  # share %
    assert rows[-1][0] == "total" and rows[-1][1][2] == "123,457"


def test_change_table_shows_sink_and_no_net_loss(parsed: _Tables):
    rows = body_rows(parsed.tables["change-2023-2024-block"])
    cls, b1 = rows[0]
    # B1 lost vegetated area (last column ✗) but gained carbon significantly: not a red (carbon loss) row
    assert b1[1] == "B1" and b1[-1] == "✗" and cls == ""
    assert b1[7] == "净吸收 gain" and b1[-3] == "✓"
    assert all(cells[-1] == "✓" for _, cells in rows[1:])
    city = body_rows(parsed.tables["change-2023-2024-city"])[0][1]
    assert city[5] == "+1,543" and city[6] == "1,185 – 1,902"


def test_targets_table_marks_missed_rows(html: str, parsed: _Tables):
    rows = body_rows(parsed.tables["targets-block"])
    classes = {cells[2]: cls for cls, cells in rows}
    assert classes == {"B1": "missed", "B2": "met", "B3": "met", "B4": "met"}
    b1 = next(cells for _, cells in rows if cells[2] == "B1")
    assert b1[0] == "绿地率 green-space ratio ≥ 30 %"
    assert b1[3] == "28.0" and b1[4] == "≥ 30.0" and "missed" in b1[5] and b1[6] == "−2.0"
    assert "tr.missed" in html  # the CSS that marks them


def test_targets_of_a_large_level_list_the_missed_furthest_first(html: str, parsed: _Tables):
    rows = body_rows(parsed.tables["targets-parcel"])
    assert len(rows) == 28 and all(cls == "missed" for cls, _ in rows)
    assert rows[0][1][2] == "P00" and rows[0][1][6] == "−4.0"  # 36.0 − 40, the largest shortfall
    targets = html[html.index('id="targets"'):html.index('id="models"')]
    assert "This level has 70 zone × target checks" in targets


def test_models_section_and_fallback_warning(html: str, parsed: _Tables):
    rows = {cells[0]: (cls, cells) for cls, cells in body_rows(parsed.tables["models-2023"])}
    g1 = rows["G1"][1]
    assert g1[4] == "NDVI"  # predictors: models.json without the key means NDVI
    assert g1[5] == "C = 3.2 + 45.6 × NDVI" and g1[6] == "24" and g1[7] == "0.73" and g1[8] == "4.32"
    assert rows["G2"][1][5] == "C = 60.1 × NDVI^1.8"
    cls, eg = rows["EG"]
    assert cls == "fallback" and "coefficient table" in eg[2] and eg[7] == DASH
    models = html[html.index('id="models"'):html.index('id="plausibility"')]
    warnings = re.findall(r'<div class="warning">(.*?)</div>', models, flags=re.S)
    assert len(warnings) == 2  # EG in each year, and nothing else
    for w in warnings:
        assert "EG" in w and "区域绿地 regional" in w
        assert "3 plots &lt; min_plots 10: using coefficient table (c_above + c_below = 12.5 t C/ha)" in w
        assert "G1" not in w and "G2" not in w


def test_plausibility_flags_listed(parsed: _Tables):
    rows = body_rows(parsed.tables["flags"])
    assert len(rows) == 2  # block B3 in both years
    assert all(cells[3] == "B3" and "Beijing maximum" in cells[4] for _, cells in rows)


def test_provenance_and_method_notes(html: str):
    prov = html[html.index('id="provenance"'):]
    assert "ab" * 32 in prov and "cd" * 32 in prov and "data/zones/parcels.gpkg" in prov
    assert "numpy 2.1.0" in prov
    methods = html[html.index('id="methods"'):html.index('id="provenance"')]
    for text in ("44/12", "above + below ground", "bootstrap", "observed clear at least once",
                 "Typed green-space land over zone area", "never 0 or infinity"):
        assert text in methods, text


def test_rendering_is_deterministic(inputs: dict, html: str):
    assert render_report(**inputs) == html


def test_without_template_dir_the_template_is_the_packages(inputs: dict, html: str):
    # reports/report.html.j2 links to the package data greensink/data/report.html.j2, which an installed greensink reads
    assert (TEMPLATE_DIR / "report.html.j2").resolve() == Path(resources.files("greensink") / "data" / "report.html.j2")
    assert render_report(**{k: v for k, v in inputs.items() if k != "template_dir"}) == html


def test_minimal_run_one_year_one_level_no_targets():
    full = make_inputs()
    html = render_report(
        years=[2023], tables={2023: {"city": full["tables"][2023]["city"]}}, change={}, models={},
        targets=pd.DataFrame(), provenance={}, carbon_maps={2023: full["carbon_maps"][2023]}, sink_maps={},
        extent=EXTENT, crs="EPSG:32651", levels=["city"], type_names={}, template_dir=TEMPLATE_DIR,
    )
    assert "123,457 t C" in html
    assert "No targets were configured" in html
    assert "Only one year" in html
    assert 'id="flags-none"' in html
    for sid in SECTION_IDS:
        assert f'id="{sid}"' in html, sid


# ---------------------------------------------------------------------------------------------
# A real browser


CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH or at /usr/bin/chromium: "
                                             "install it (apt-get install chromium) to render the report headless")
def test_report_renders_in_headless_chromium(html: str, tmp_path: Path):
    report = tmp_path / "report.html"
    report.write_text(html, encoding="utf-8")
    shot = tmp_path / "shot.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
           f"--screenshot={shot}", "--window-size=1200,2000", report.as_uri()]
    try:
        subprocess.run(cmd, capture_output=True, timeout=180, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("chromium did not finish rendering the report within 180 s")
    assert shot.exists(), "chromium wrote no screenshot"
    img = mpimg.imread(str(shot))
    assert img.shape[:2] == (2000, 1200)
    assert img[..., :3].std() > 0.02, "the screenshot is a single flat colour"


def test_nesting_section_says_which_levels_tile_and_by_how_much(inputs: dict):
    nesting = pd.DataFrame([
        {"level": "district", "parent_level": "city", "zones": 2, "outside_parents_ha": 0.0, "parent_gaps_ha": 0.0,
         "overlap_ha": 0.0, "straddling_zones": 0, "straddling_ids": ""},
        {"level": "parcel", "parent_level": "block", "zones": 70, "outside_parents_ha": 1.25, "parent_gaps_ha": 0.5,
         "overlap_ha": 0.0, "straddling_zones": 2, "straddling_ids": "P1 P2"},
    ])
    html = render_report(**inputs, nesting=nesting)
    p = _Tables()
    p.feed(html)
    rows = body_rows(p.tables["nesting-table"])
    assert len(rows) == 2
    (cls0, tiles), (cls1, broken) = rows
    assert cls0 == "" and "sums add up exactly" in tiles[-1]
    assert cls1 == "missed" and "does not tile" in broken[-1]
    assert broken[3:7] == ["1.25", "0.50", "0.00", "2"]  # outside, gaps, overlaps (ha), straddling zones


def test_zone_tables_carry_tree_shrub_share_and_park_service(parsed: _Tables):
    headers = [c for cls, c in parsed.tables["zones-2023-district"] if cls == "" ][0]
    assert "乔灌木占比 Tree + shrub (%)" in headers and "公园服务覆盖 Park service (% people)" in headers


def test_interval_labels_follow_the_configured_width(inputs: dict, html: str):
    # carbon.interval_pct 80: every interval label, Chinese and English, says 80 %, none 90 %
    assert html.count("90 %") >= 6  # the default: summary, zone and change headers, notes, method
    p80 = render_report(**inputs, interval_pct=80)
    assert "90 %" not in p80
    assert p80.count("80 %") == html.count("90 %")
    summary = p80[p80.index('id="summary"'):p80.index('id="maps"')]
    assert "碳储量 Carbon stock（80 % 区间 interval）" in summary
    p = _Tables()
    p.feed(p80)
    assert "80 % 区间 interval (t C)" in p.tables["zones-2023-district"][0][1]
    assert "80 % 区间 interval (t C/yr)" in p.tables["change-2023-2024-district"][0][1]
    assert "不确定性区间" in p80 and "80 % 不确定性区间" in p80 and "its 80 % interval" in p80
    assert "80 % bootstrap intervals" in p80 and "80 % 自助法" in p80
    assert "97.5 % 区间 interval (t C)" in render_report(**inputs, interval_pct=97.5)
    with pytest.raises(ValueError, match="interval_pct must be a number between 0 and 100"):
        render_report(**inputs, interval_pct=100)


def test_formula_of_several_predictors_unknown_forms_and_other_parameters():
    # models.json of several predictors: a and one b_<predictor> each
    assert formula("linear", {"a": 2, "b_ndvi": 30, "b_height": -0.5}, ["ndvi", "height"]) == \
        "C = 2 + 30 × NDVI − 0.5 × height"
    assert formula("logarithmic", {"a": 40, "b_ndvi": 15, "b_fvc": 3}, ["ndvi", "fvc"]) == \
        "C = 40 + 15 × ln(NDVI) + 3 × ln(FVC)"
    assert formula("power", {"a": 60, "b_ndvi": 1.8, "b_height": 0.4}, ["ndvi", "height"]) == \
        "C = 60 × NDVI^1.8 × height^0.4"
    assert formula("exponential", {"a": 2, "b_ndvi": 4, "b_canopy": -1}, ["ndvi", "canopy"]) == \
        "C = 2 × exp(4 × NDVI − 1 × canopy)"
    assert formula("linear", {"a": 1, "b": 2}, ["ndvi"]) == "C = 1 + 2 × NDVI"
    assert formula("ensemble", {"base": 1.0}, ["ndvi", "height"]) == "gradient-boosted trees (lookup over NDVI + height)"
    # a form the report does not know, or a known form with other parameter names: the name and name = value
    assert formula("michaelis-menten", {"vmax": 80, "k": 0.35}) == "michaelis-menten: vmax = 80, k = 0.35"
    assert formula("linear", {"alpha": 1.5, "beta": 2}) == "linear: alpha = 1.5, beta = 2"
    assert formula("constant", {"c_above": 8, "c_below": 2.5}) == "constant: c_above = 8, c_below = 2.5"
    assert formula("linear", {"a": 1}) == "linear: a = 1"
    assert formula("table", {f"y{i}": i for i in range(20)}).endswith(", y7 = 7, … (20 parameters)")
    assert formula("allometric", {"a": None, "label": "DBH"}) == f"allometric: a = {DASH}, label = DBH"
    assert formula("mystery", {}) == "mystery (no parameters)"


def test_model_table_shows_predictors_and_survives_unknown_forms(inputs: dict):
    models = _models()
    models["predictors"] = ["ndvi", "height"]
    models["types"]["G1"].update(predictors=["ndvi", "height"], params={"a": 2.0, "b_ndvi": 30.0, "b_height": 0.5})
    models["types"]["G2"]["predictors"] = ["ndvi"]
    models["types"]["EG"].update(form="saturating", params={"cmax": 40.0, "k": 0.2})  # a future coefficient form
    html = render_report(**{**inputs, "models": {2023: models, 2024: _models()}})
    p = _Tables()
    p.feed(html)
    headers = p.tables["models-2023"][0][1]
    assert headers[3:6] == ["形式 Form", "预测变量 Predictors", "公式 Formula (C in t C/ha)"]
    rows = {cells[0]: cells for _, cells in body_rows(p.tables["models-2023"])}
    assert rows["G1"][4] == "NDVI + height (m)" and rows["G1"][5] == "C = 2 + 30 × NDVI + 0.5 × height"
    assert rows["G2"][4] == "NDVI" and rows["G2"][5] == "C = 60.1 × NDVI^1.8"
    assert rows["EG"][3] == "saturating" and rows["EG"][4] == "NDVI"  # no predictors key: NDVI
    assert rows["EG"][5] == "saturating: cmax = 40, k = 0.2"
    assert "预测变量 Predictors: NDVI + height (m)" in html
    old = {cells[0]: cells for _, cells in body_rows(p.tables["models-2024"])}
    assert [old[c][4] for c in ("G1", "G2", "EG")] == ["NDVI"] * 3


def test_model_table_lists_rivals_within_one_se(inputs: dict):
    years = sorted(inputs["models"])
    first = _models()
    first["types"]["G1"]["rivals"] = [
        {"candidate": "power", "form": "power", "predictors": ["ndvi"], "rmse_rel": 0.11, "max_difference_pct": 2.345,
         "mean_difference_pct": 0.1},
        {"candidate": "linear[ndvi+height]", "form": "linear", "predictors": ["ndvi", "height"], "rmse_rel": 0.111,
         "max_difference_pct": 7.0, "mean_difference_pct": -1.0}]
    first["types"]["G2"]["rivals"] = []
    later = _models()
    for tm in later["types"].values():
        tm["selection"] = {"mode": "first_year", "anchor_year": years[0]}
    html = render_report(**{**inputs, "models": {years[0]: first, years[1]: later}})
    p = _Tables()
    p.feed(html)
    assert p.tables[f"models-{years[0]}"][0][1][-1] == "难以区分的形式 Rivals within 1 SE (max. difference)"
    rows = {cells[0]: cells for _, cells in body_rows(p.tables[f"models-{years[0]}"])}
    assert rows["G1"][-1] == "power (≤ 2.3 %); linear [ndvi+height] (≤ 7.0 %)"
    assert rows["G2"][-1] == "无 none" and rows["EG"][-1] == DASH  # decided by CV; the coefficient table
    later_rows = {cells[0]: cells for _, cells in body_rows(p.tables[f"models-{years[1]}"])}
    assert later_rows["G1"][-1] == f"见 see {years[0]}"
    assert "within one standard error of the lowest (the plots cannot tell them from the chosen model)" in html


def test_model_notes_are_shown_as_warnings_escaped(inputs: dict):
    models = {y: {**m, "notes": ["height comes from one canopy height model <b>for every year</b>"]}
              for y, m in inputs["models"].items()}
    html = render_report(**{**inputs, "models": models})
    section = html[html.index('id="models"'):html.index('id="plausibility"')]
    assert section.count("⚠ 注意 Note:") == len(models)
    assert "&lt;b&gt;for every year&lt;/b&gt;" in section and "<b>for every year" not in section
    assert "⚠ 注意 Note:" not in render_report(**inputs)


def test_first_year_model_choice_is_explained_when_used(inputs: dict):
    years = sorted(inputs["models"])
    models = {y: {**m, "types": {k: {**tm, "selection": {"mode": "first_year", "anchor_year": years[0]}}
                                 for k, tm in m["types"].items()}} if y != years[0] else m
              for y, m in inputs["models"].items()}
    html = render_report(**{**inputs, "models": models})
    assert f"Years after {years[0]} keep the forms chosen in {years[0]}" in html
    assert "keep the forms chosen in" not in render_report(**inputs)


def test_methods_name_the_bootstrap_scheme(inputs: dict):
    assert "refitted on plots resampled with replacement" in render_report(**inputs)
    models = {y: {**m, "bootstrap": "residuals"} for y, m in inputs["models"].items()}
    html = render_report(**{**inputs, "models": models})
    assert "refitted to their fitted values plus resampled residuals" in html
    assert "refitted on plots resampled with replacement" not in html


# ---------------------------------------------------------------------------------------------
# Uncertainty (issue 11): U %, conservative bounds, variance shares, sink classes, calibration labels


def _section(html: str, sid: str, next_sid: str) -> str:
    return html[html.index(f'<section id="{sid}"'):html.index(f'<section id="{next_sid}"')]


def _hand_shares(level: str, rows: list[tuple[float, ...]]) -> gpd.GeoDataFrame:
    """The first len(rows) zones of a level with var_share_<source>_pct set by hand (SOURCES order)."""
    df = _zone_table(level, 2024).iloc[:len(rows)].copy()
    for k, source in enumerate(SOURCES):
        df[f"var_share_{source}_pct"] = [r[k] for r in rows]
    return df


def test_dominant_source_and_sentence_from_hand_made_variance_shares(inputs: dict):
    # blocks: residual shares 78, 84, 81 -> mean 81 %; curve 12, 6, 9 -> 9; table 0; ndvi 6, 6, 6; edges 4, 4, 4
    blocks = _hand_shares("block", [(12, 0, 78, 6, 4), (6, 0, 84, 6, 4), (9, 0, 81, 6, 4)])
    b = variance_breakdown(blocks)
    assert (b["residual"], b["curve"], b["ndvi"], b["edges"], b["table"]) == pytest.approx((81, 9, 6, 4, 0))
    d = dominant_source_text("block", b)
    assert d["source"] == "residual" and d["share"] == "81"
    assert d["zh"].startswith("在街区层面，样地残差") and "占碳储量方差的 81 %：" in d["zh"] and "分散增加样地" in d["zh"]
    assert d["en"].startswith("At block level (on average over its 3 zones), 81 % of the variance comes from the plot residuals")
    assert "more plots spread over the area" in d["en"]
    # each source, when it dominates (70 % against 7.5 % each), names its own remedy
    remedy = {"curve": ("增加样地", "more field plots"), "residual": ("分散增加样地", "more plots spread over the area"),
              "ndvi": ("更多无云影像", "more clear imagery"), "edges": ("更精确的绿地多边形", "better green-space polygons"),
              "table": ("本地系数", "local coefficients or local field plots")}
    for source in SOURCES:
        row = tuple(70.0 if s == source else 7.5 for s in SOURCES)
        d = dominant_source_text("parcel", variance_breakdown(_hand_shares("parcel", [row, row])), what="sink")
        assert d["source"] == source and d["share"] == "70"
        assert remedy[source][0] in d["zh"] and remedy[source][1] in d["en"], source
        assert "占碳汇方差的 70 %" in d["zh"] and "70 % of the variance of the sink comes from" in d["en"]
    # no var_share columns (a table written before them): said so, no source invented
    old = _zone_table("block", 2024).drop(columns=[f"var_share_{s}_pct" for s in SOURCES])
    assert variance_breakdown(old) is None and dominant_source_text("block", None)["source"] is None
    # the report states it in the uncertainty section and the variance table
    tables = {y: dict(inputs["tables"][y]) for y in YEARS}
    tables[2024]["block"] = blocks
    html = render_report(**{**inputs, "tables": tables})
    section = _section(html, "uncertainty", "targets")
    assert "在街区层面，样地残差（林分自身偏离曲线的变异）占碳储量方差的 81 %" in section
    assert "At block level (on average over its 3 zones), 81 % of the variance comes from the plot residuals" in section
    p = _Tables()
    p.feed(html)
    shares = {(cells[0], cells[1]): cells[2:] for _, cells in body_rows(p.tables["variance-shares"])}
    assert shares[("街区 block", "碳储量 stock 2024")] == ["9", "0", "81", "6", "4"]  # curve table residual ndvi edges
    stock = {(cells[0], cells[1]): cells for _, cells in body_rows(p.tables["uncertainty-stock"])}
    assert stock[("街区 block", "2024")][5] == "residual (81 %)"
    assert stock[("地块 parcel", "2024")][5] == "ndvi (55 %)"  # the fixture's parcels: NDVI 55 %


def test_u_pct_and_conservative_bound_in_zone_and_sink_tables(html: str, parsed: _Tables):
    headers = parsed.tables["zones-2023-city"][0][1]
    u, cons = headers.index("不确定度 U (%)"), headers.index("保守下限 Conservative (t C)")
    city = body_rows(parsed.tables["zones-2023-city"])[0][1]
    assert city[u] == "6.3" and city[cons] == "110,000"  # carbon_u_pct 6.3; lower bound 110,000.2 t C
    district = {cells[1]: cells for _, cells in body_rows(parsed.tables["zones-2024-district"])}
    assert district["D1"][u] == "9.5" and district["D2"][u] == "30.5"
    # D2 2024: density 10.5 + 1 = 11.5 t C/ha × 600 ha = 6,900 t C; conservative = 0.9 × 6,900 = 6,210
    assert district["D2"][cons] == "6,210"
    headers = parsed.tables["change-2023-2024-city"][0][1]
    u, cons = headers.index("不确定度 U (%)"), headers.index("保守下限 Conservative (t C/yr)")
    sink = body_rows(parsed.tables["change-2023-2024-city"])[0][1]
    # sink 1,543.3 t C/yr in [1,184.66, 1,901.96]: U = 100 × 358.65 × (1.96/1.645) / 1,543.3 = 27.7 %
    assert sink[u] == "27.7" and sink[cons] == "+1,185"
    # one sentence each: U % (IPCC) and the conservative bound
    tables = _section(html, "tables", "types")
    assert "half the 95 % interval over the estimate, as the IPCC 2006 guidelines define it" in tables
    assert "lower end of the 90 % interval: the figure to claim where the carbon must not be overstated" in tables
    summary = html[html.index('id="summary"'):html.index('id="maps"')]
    assert "保守下限 conservative +1,185 t C/yr; U 27.7 %" in summary
    section = _section(html, "uncertainty", "targets")
    assert "市域 city</strong> · 2024: U 中位数 median 6.3 %, 范围 range 6.3 – 6.3 %" in section
    assert "街区 block</strong> · 2024: U 中位数 median 20.0 %, 范围 range 9.5 – 30.5 %" in section


def _with_block_sinks(inputs: dict, sinks: dict[str, tuple[float, float, float]]) -> dict:
    """The inputs with these blocks' (sink, lower, upper) t C/yr; classes etc. as greensink.change writes them."""
    change = {pair: dict(levels) for pair, levels in inputs["change"].items()}
    df = change[(2023, 2024)]["block"].copy()
    for zone, (s, lo, hi) in sinks.items():
        df.loc[df["zone_id"] == zone, ["sink_t_yr", "sink_t_yr_lo", "sink_t_yr_hi"]] = (s, lo, hi)
    df["sink_t_ha_yr"] = df["sink_t_yr"] / df["area_ha"]
    change[(2023, 2024)]["block"] = _sink_columns(df)
    return {**inputs, "change": change}


def test_interval_including_zero_is_no_significant_change_never_a_loss(inputs: dict):
    # B2 +0.5 [−2, 3] and B4 −1.0 [−3, 1]: the intervals include 0; B3 −6.4 [−10.9, −2.9] lies below 0
    html = render_report(**_with_block_sinks(inputs, {"B2": (0.5, -2.0, 3.0), "B3": (-6.4, -10.9, -2.9),
                                                      "B4": (-1.0, -3.0, 1.0)}))
    p = _Tables()
    p.feed(html)
    headers = p.tables["change-2023-2024-block"][0][1]
    klass, nncl = headers.index("类别 Class"), headers.index("无碳净损失 No net carbon loss")
    rows = {cells[1]: (cls, cells) for cls, cells in body_rows(p.tables["change-2023-2024-block"])}
    for zone in ("B2", "B4"):
        cls, cells = rows[zone]
        assert cells[klass] == "无显著变化 no significant change" and cls != "loss" and cells[nncl] == "✓", zone
    assert rows["B2"][1][6] == "−2.00 – 3.00"
    cls, b3 = rows["B3"]
    assert b3[klass] == "损失 loss" and cls == "loss" and b3[nncl] == "✗"
    # the largest-losses list holds only zones classed loss
    assert [cells[1] for _, cells in body_rows(p.tables["losses-2023-2024-block"])] == ["B3"]
    change = _section(html, "change", "uncertainty")
    assert "净吸收 gain 1 · 损失 loss 1 · 无显著变化 no significant change 2" in change
    # the "no net loss" verdict of the summary uses the significance: 3 of 4 blocks, one significant loss
    summary = html[html.index('id="summary"'):html.index('id="maps"')]
    assert "2023–2024 · 街区 block: 净吸收 gain 1 · 损失 loss 1 · 无显著变化 no significant change 2. " \
           "无碳净损失 No net carbon loss: 3 / 4（显著损失 significant loss: 1）" in summary
    # a level with no significant loss lists none, and says why the others are not losses
    assert "losses-2023-2024-parcel" not in p.tables
    assert "No zone has a significant loss: 70 个分区的区间包含零" in change


def test_sink_class_from_the_change_module_drives_the_report(inputs: dict):
    # two blocks through greensink.change.change_table: B1's draws span −2 … 3 (estimate +0.5),
    # B2's lie between −7.4 and −5.4 (estimate −6.4): classes no significant change and loss
    t0, t1 = inputs["tables"][2023]["block"].iloc[:2], inputs["tables"][2024]["block"].iloc[:2]
    draws = np.stack([np.linspace(-2.0, 3.0, 101), np.linspace(-7.4, -5.4, 101)])
    parts = {s: np.zeros_like(draws) for s in SOURCES}
    parts["ndvi"] = draws - draws.mean(axis=1, keepdims=True)
    table = change_table(t1[["zone_id", "parent_id", "level", "name", "geometry"]], t0, t1, 2023, 2024,
                         (np.array([0.5, -6.4]), draws, parts))
    assert list(table["sink_class"]) == ["no significant change", "loss"]
    html = render_report(**{**inputs, "years": YEARS, "levels": ["block"],
                            "tables": {y: {"block": inputs["tables"][y]["block"].iloc[:2]} for y in YEARS},
                            "change": {(2023, 2024): {"block": table}}})
    p = _Tables()
    p.feed(html)
    rows = {cells[1]: (cls, cells) for cls, cells in body_rows(p.tables["change-2023-2024-block"])}
    assert rows["B1"][0] == "" and "无显著变化 no significant change" in rows["B1"][1]
    assert rows["B2"][0] == "loss" and "损失 loss" in rows["B2"][1]
    assert [cells[1] for _, cells in body_rows(p.tables["losses-2023-2024-block"])] == ["B2"]
    assert "At block level (on average over its 2 zones), 100 % of the variance of the sink comes from the NDVI composite error" in html


def test_plots_needed_per_type_for_the_target_uncertainty(parsed: _Tables):
    rows = {cells[0]: cells for _, cells in body_rows(parsed.tables["plots-needed"])}
    # G1: 24 plots at curve U 18 % -> 24 × (18/10)² = 77.76 -> 78 plots, 54 more; G2: 13 needed, has 15: 0 more
    assert rows["G1"][3:] == ["24", "18.0", "10.0", "78", "54"]
    assert rows["G2"][3:] == ["15", "9.0", "10.0", "13", "0"]
    assert rows["EG"][4] == DASH and "at least 10 plots to fit a curve" in rows["EG"][6]


CALIBRATION = {  # the shape benchmarks/calibration.py writes (benchmarks/results/calibration.json), trimmed
    "benchmark": "calibration", "date_utc": "2026-12-05T08:00:00Z",
    "settings": {"realisations": 50, "realisations_done": 50, "nominal": 0.9},
    "levels": {"city": {"stock_coverage": 0.91, "sink_coverage": 0.88, "n_stock": 100},
               "district": {"stock_coverage": 0.89, "sink_coverage": 0.93},
               "block": {"stock_coverage": 0.72, "sink_coverage": 0.86},
               "parcel": {"stock_coverage": 0.97, "sink_coverage": 0.60}},
    "realisations": [{"k": 0, "seed": 1000}],
}


def test_calibration_label_only_for_a_level_outside_085_095(inputs: dict, html: str):
    cal = read_calibration(CALIBRATION)
    assert cal["realisations"] == 50 and cal["date"] == "2026-12-05" and cal["nominal"] == 0.9
    assert cal["levels"]["block"] == {"stock": 0.72, "sink": 0.86}
    labelled = render_report(**inputs, calibration=cal)
    assert "Block stock intervals: measured coverage 0.72 of nominal 0.90 over 50 simulated cities" in labelled
    assert "treat these intervals as narrower than stated" in labelled
    assert "Parcel stock intervals: measured coverage 0.97" in labelled and "wider than stated (conservative)" in labelled
    assert "Parcel sink intervals: measured coverage 0.60" in labelled
    for level, what in (("City", "stock"), ("City", "sink"), ("District", "stock"), ("District", "sink"),
                        ("Block", "sink")):  # 0.91 0.88 0.89 0.93 0.86: within 0.85–0.95, no label
        assert f"{level} {what} intervals: measured coverage" not in labelled
    # the block label sits on the block zone tables (each year), not on the district ones
    tables = _section(labelled, "tables", "types")
    block = tables[tables.index("<h4>街区 block · 2024</h4>"):tables.index('id="zones-2024-block"')]
    district = tables[tables.index("<h4>城区 district · 2024</h4>"):tables.index('id="zones-2024-district"')]
    assert "measured coverage 0.72" in block and "measured coverage" not in district
    assert tables.count("measured coverage 0.72") == len(YEARS)
    change = _section(labelled, "change", "uncertainty")
    assert "measured coverage 0.60" in change and "measured coverage 0.72" not in change
    # with no calibration file nothing is said about it
    assert "measured coverage" not in html and "benchmarks/calibration.py" not in html
    p = _Tables()
    p.feed(labelled)
    stock = {(cells[0], cells[1]): cells for _, cells in body_rows(p.tables["uncertainty-stock"])}
    assert stock[("街区 block", "2024")][-1] == "0.72 ⚠" and stock[("城区 district", "2024")][-1] == "0.89"


def test_shipped_calibration_is_read_from_the_package():
    # greensink/data/calibration.json is shipped only once benchmarks/calibration.py has been run; without it None
    from importlib import resources

    shipped = resources.files("greensink").joinpath("data/calibration.json")
    cal = load_calibration()
    if shipped.is_file():
        assert cal is not None and set(cal["levels"]) <= {"city", "district", "block", "parcel"}
    else:
        assert cal is None
    assert read_calibration({"levels": {}}) is None and read_calibration(None) is None


def test_type_table_total_is_unknown_when_a_zone_is_unknown():
    import pandas as pd

    from greensink.report.tables import type_table

    df = pd.DataFrame({"zone_id": ["A", "B"], "carbon_t": [10.0, float("nan")], "carbon_t_G1": [10.0, float("nan")],
                       "green_space_area_ha_G1": [2.0, 3.0], "green_space_area_ha": [2.0, 3.0]})
    rows = type_table(2024, df, {"G1": "park"})["rows"]
    texts = [[c["text"] for c in r["cells"]] for r in rows]
    assert texts[0][2] == "—" and texts[-1][2] == "—"  # not 10, which would read as the whole city's carbon
    known = type_table(2024, df.iloc[:1], {"G1": "park"})["rows"]
    assert [c["text"] for c in known[-1]["cells"]][2] == "10.0"
