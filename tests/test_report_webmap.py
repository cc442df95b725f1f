"""Tests of the report's interactive map (issue 16 item 2) and its planner-grade layout (item 3): phone width,
print, zone labels, target maps, bilingual figure text, the lowest tables without empty zones.

The browser tests drive headless Chromium with no driver library: a small harness page (written next to the
report, opened with --allow-file-access-from-files) loads the report in an <iframe> of phone width, clicks a
parcel at the point the browser itself finds inside its path (document.elementFromPoint), and writes what the
report's panel then shows into its own DOM, which --dump-dom prints. They skip when Chromium is missing.
"""

from __future__ import annotations

import json
import re
import subprocess
import warnings
import zlib
from pathlib import Path

import geopandas as gpd
import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Polygon, box

from greensink.report import render_report
from greensink.report.maps import TARGET_STATUS_COLOURS, cjk_font, target_status_map, zone_labels
from greensink.report.tables import level_table, without_green_space, zone_row, zone_target_status
from greensink.report.text import zone_headers
from greensink.report.webmap import FRAME_UNITS, MAX_ZONES, svg_path, webmap_section
from test_report import CHROMIUM, EVIL, EXTENT, _Tables, body_rows, make_inputs

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars"]
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH or at /usr/bin/chromium: install it "
                                                             "(apt-get install chromium) to render the report headless")
PHONE_PX = 390


@pytest.fixture(scope="module")
def inputs() -> dict:
    return make_inputs()


@pytest.fixture(scope="module")
def html(inputs: dict) -> str:
    return render_report(**inputs)


def _data(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="wm-data">(.*?)</script>', html, flags=re.S)
    assert m, "no map data block"
    return json.loads(m.group(1))


# ---------------------------------------------------------------------------------------------
# The map's content, without a browser


def test_svg_path_of_a_square_is_its_corners_in_frame_units():
    # extent 2000 m wide, 1000 m high: 1 unit = 1 m, y down from ymax = 1000
    extent = (0.0, 0.0, 2000.0, 1000.0)
    d = svg_path(box(100, 200, 400, 600), extent)
    # shapely's box runs (400,200) (400,600) (100,600) (100,200): y' = 1000 − y -> 800, 400, 400, 800
    assert d == "M400 800l0 -400 -300 0 0 400z"
    # a hole is a second ring of the same path (even-odd fill)
    ring = Polygon([(0, 0), (1000, 0), (1000, 1000), (0, 1000)], [[(200, 200), (400, 200), (400, 400), (200, 400)]])
    assert svg_path(ring, extent).count("M") == 2
    # a 1 m wiggle on a 2 km frame (1 unit = 1 m) is simplified away; a 5 m one is kept
    wiggly = Polygon([(0, 0), (500, 0.4), (1000, 0), (1000, 500), (0, 500)])
    assert svg_path(wiggly, extent).count(" ") == svg_path(box(0, 0, 1000, 500), extent).count(" ")
    assert FRAME_UNITS == 2000


def test_map_data_are_the_zone_tables_values_as_the_tables_show_them(inputs: dict, html: str):
    data = _data(html)
    parcel = data["levels"]["parcel"]
    assert parcel["label"] == "地块 parcel" and len(parcel["zones"]) == 70
    p69 = next(z for z in parcel["zones"] if z[1] == "P69")
    # P69 in 2024: density 10 + 0.5 × 69 + 1 = 45.5 t C/ha over 400 m × 3000/7 m = 17.142857 ha -> 780.0 t C,
    # interval 0.9 × and 1.1 × -> 702 – 858; coverage linspace(35, 45, 70)[69] + 1 = 46.0 %
    assert p69[2] == "780" and p69[3] == "702 – 858" and p69[4] == "45.50" and p69[5] == "46.0"
    # parcels with green coverage below 40 % missed their target (36 + 10 k/69 + 1 < 40 for k < 21)
    assert parcel["status"][0] == "missed" and parcel["status"][69] == "met"
    assert p69[9] == [["met", "绿化覆盖率 green coverage ≥ 40 %", "46.0", "≥ 40.0", "+6.0"]]
    # the district without people: its canopy is unknown, so its target is "no data", shown as —
    d2 = data["levels"]["district"]["zones"][1]
    assert d2[7] == "—" and data["levels"]["district"]["status"][1] == "no data"
    # the zone name with markup is data, escaped in the JSON block (tojson: \u003c), never markup in the page
    assert data["levels"]["district"]["zones"][0][0] == EVIL
    block = html[html.index('id="wm-data">'):html.index("</script>", html.index('id="wm-data">'))]
    assert "<" not in block[len('id="wm-data">'):] and "\\u003cscript\\u003e" in block


def test_only_our_two_scripts_and_nothing_from_the_network(html: str):
    assert re.findall(r"<script[^>]*>", html) == ['<script type="application/json" id="wm-data">', "<script>"]
    script = html[html.index("<script>"):html.index("</script>", html.index("<script>"))]
    assert "innerHTML" not in script and "eval(" not in script and "fetch(" not in script
    assert "textContent" in script
    assert "http://" not in html and "https://" not in html and "<link" not in html


def test_every_level_is_a_layer_and_the_carbon_map_is_an_inline_png(html: str):
    svg = html[html.index('<svg id="wm-svg"'):html.index("</svg>")]
    levels = re.findall(r'<g class="wm-layer" data-level="(\w+)"', svg)
    assert levels == ["city", "district", "block", "parcel"]
    for level, n in (("city", 1), ("district", 2), ("block", 4), ("parcel", 70)):
        group = svg[svg.index(f'data-level="{level}"'):]
        group = group[:group.index("</g>")]
        assert len(re.findall(r"<path data-k=", group)) == n, level
    assert re.search(r'<image href="data:image/png;base64,[A-Za-z0-9+/=]+"', svg)
    # the district layer is shown first and carries the district names (4 blocks labelled too; 70 parcels not)
    assert 'data-level="district" font-size' in svg and 'data-level="district" style="display:none"' not in svg
    assert "西湖区 West Lake</text>" in svg


def test_a_level_with_too_many_zones_is_left_out_and_named():
    n = MAX_ZONES + 1
    geoms = [box(i, 0, i + 1, 1) for i in range(n)]
    big = gpd.GeoDataFrame({"zone_id": [f"Z{i}" for i in range(n)], "carbon_t": 1.0}, geometry=geoms, crs="EPSG:32651")
    small = gpd.GeoDataFrame({"zone_id": ["A"], "carbon_t": 1.0}, geometry=[box(0, 0, n, 1)], crs="EPSG:32651")
    ctx = webmap_section({"city": small, "parcel": big}, None, (0.0, 0.0, float(n), 1.0), ["city", "parcel"],
                         year=2024, targets=None, density_max=1.0, interval="90 %")
    assert [lay["level"] for lay in ctx["layers"]] == ["city"]
    assert ctx["left_out"] == [{"level": "地块 parcel", "n": f"{n:,}"}]


# ---------------------------------------------------------------------------------------------
# Planner-grade maps and tables


def test_lowest_zones_skip_zones_without_green_space():
    # 70 zones, density 1..70 t C/ha; the 25 sparsest have no green-space land and 0 t C
    n = 70
    density = np.arange(1, n + 1, dtype=float)
    gs = np.where(np.arange(n) < 25, 0.0, 2.0)
    density[:25] = 0.0
    df = pd.DataFrame({"zone_id": [f"Z{k:02d}" for k in range(n)], "carbon_t_ha": density, "carbon_t": density,
                       "green_space_area_ha": gs, "area_ha": 1.0})
    assert without_green_space(df).sum() == 25
    table = level_table("t", zone_headers(), df, zone_row, "carbon_t_ha", ["a.gpkg"], ("碳密度", "density"))
    ids = [r["cells"][1]["text"] for r in table["rows"] if "cells" in r]
    # the highest 20 are Z69..Z50; the lowest 20 with green space are Z44..Z25, not the zeros Z00..Z24
    assert ids[:20] == [f"Z{k:02d}" for k in range(69, 49, -1)]
    assert ids[20:] == [f"Z{k:02d}" for k in range(44, 24, -1)]
    assert table["note"]["skipped"] == "25"
    # an unknown green-space area is not "no green space"
    assert not without_green_space(pd.DataFrame({"green_space_area_ha": [np.nan]}))[0]
    # a change table: no carbon in either year
    ch = pd.DataFrame({"carbon_t_from": [0.0, 0.0, 1.0], "carbon_t_to": [0.0, 2.0, 0.0]})
    assert without_green_space(ch).tolist() == [True, False, False]


def test_parcel_table_note_says_how_many_empty_zones_were_left_out(inputs: dict):
    tables = {y: dict(t) for y, t in inputs["tables"].items()}
    parcels = tables[2024]["parcel"].copy()
    parcels.loc[parcels.index[:5], ["green_space_area_ha", "carbon_t", "carbon_t_ha"]] = 0.0
    tables[2024]["parcel"] = parcels
    out = render_report(**{**inputs, "tables": tables})
    p = _Tables()
    p.feed(out)
    ids = [cells[1] for _, cells in body_rows(p.tables["zones-2024-parcel"])]
    assert ids[-1] == "P05" and "P00" not in ids and "P04" not in ids
    assert "5 zones have no green space" in out


def test_zone_target_status_by_hand(inputs: dict):
    # blocks: green-space ratio 28, 30.7, 33.3, 36 against ≥ 30 -> B1 missed, the others met
    t = inputs["targets"]
    assert zone_target_status(t, "block", ["B1", "B2", "B3", "B4", "B9"]) == ["missed", "met", "met", "met",
                                                                              "no target"]
    assert zone_target_status(t, "district", ["D1", "D2"]) == ["missed", "no data"]
    assert zone_target_status(None, "block", ["B1"]) == ["no target"]


def test_target_map_colours_each_zone_by_its_status(inputs: dict):
    blocks = inputs["tables"][2024]["block"]
    status = zone_target_status(inputs["targets"], "block", blocks["zone_id"].tolist())
    src = target_status_map(blocks, status, EXTENT, title="Targets by block")
    import base64
    from io import BytesIO

    img = mpimg.imread(BytesIO(base64.b64decode(src.split(",", 1)[1])), format="png")[..., :3]
    colours = {s: np.array([int(TARGET_STATUS_COLOURS[s][i:i + 2], 16) / 255 for i in (1, 3, 5)])
               for s in ("met", "missed")}
    share = {s: (np.abs(img - c).sum(axis=2) < 0.03).mean() for s, c in colours.items()}
    # one block of four missed, three met: the red area about a third of the green
    assert share["missed"] > 0.02 and share["met"] > 0.06
    assert 0.2 < share["missed"] / share["met"] < 0.5


def test_district_maps_carry_zone_names_where_a_chinese_font_draws_them(inputs: dict):
    districts = inputs["tables"][2024]["district"]
    labels = zone_labels(districts)
    assert len(labels) == 2
    # each label inside its zone
    for (x, y, _), geom in zip(labels, districts.geometry, strict=True):
        assert geom.contains(gpd.points_from_xy([x], [y])[0])
    if cjk_font():
        assert [t for _, _, t in labels] == [EVIL, "西湖区 West Lake"]
    else:
        assert [t for _, _, t in labels] == ["D1", "西湖区 West Lake"] or [t for _, _, t in labels] == ["D1", "D2"]
    assert zone_labels(inputs["tables"][2024]["parcel"]) == []  # 70 parcels: too many to label


@pytest.mark.skipif(cjk_font() is None, reason="no font with Chinese glyphs (fc-list :lang=zh is empty): "
                                               "figure text stays English, the captions bilingual")
def test_chinese_figure_text_draws_every_glyph(inputs: dict):
    # matplotlib warns "Glyph … missing from font(s)" for each character it cannot draw (a box instead)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=r"Glyph .* missing from font")
        out = render_report(**inputs)
    assert "Figure text is in Chinese and English" in out


# ---------------------------------------------------------------------------------------------
# In a browser


HARNESS = """<!DOCTYPE html><html><body>
<iframe id="f" src="report.html" style="width:%(width)dpx;height:900px;border:0"></iframe>
<pre id="out">pending</pre>
<script>
document.getElementById("f").addEventListener("load", function () {
  var out = {};
  try {
    var w = this.contentWindow, d = w.document;
    out.scrollWidth = d.documentElement.scrollWidth;
    out.clientWidth = d.documentElement.clientWidth;
    var s = d.getElementById("summary");
    out.summaryScroll = s.scrollWidth; out.summaryClient = s.clientWidth;
    out.summaryRight = s.getBoundingClientRect().right;
    var radio = d.querySelector('input[name=wm-level][value="%(level)s"]');
    radio.click();
    var data = JSON.parse(d.getElementById("wm-data").textContent);
    var k = data.levels["%(level)s"].zones.findIndex(function (z) { return z[1] === "%(zone)s"; });
    var svg = d.getElementById("wm-svg");
    svg.scrollIntoView({block: "center"});
    var path = svg.querySelector('g[data-level="%(level)s"] path[data-k="' + k + '"]');
    var b = path.getBBox(), m = path.getScreenCTM();
    var x = m.a * (b.x + b.width / 2) + m.c * (b.y + b.height / 2) + m.e;
    var y = m.b * (b.x + b.width / 2) + m.d * (b.y + b.height / 2) + m.f;
    var hit = d.elementFromPoint(x, y);
    out.hitK = hit && hit.getAttribute("data-k");
    hit.dispatchEvent(new w.MouseEvent("click", {bubbles: true, clientX: x, clientY: y}));
    out.panel = {};
    Array.prototype.forEach.call(d.querySelectorAll("#wm-info [data-field]"), function (e) {
      out.panel[e.getAttribute("data-field")] = e.textContent; });
    out.title = d.querySelector("#wm-info h4").textContent;
    out.targets = Array.prototype.map.call(d.querySelectorAll("#wm-info li"), function (e) { return e.textContent; });
    out.selected = svg.querySelectorAll("path.wm-sel").length;
    out.shownLayers = Array.prototype.filter.call(svg.querySelectorAll("g.wm-layer"), function (g) {
      return g.style.display !== "none"; }).map(function (g) { return g.getAttribute("data-level"); });
  } catch (e) { out.error = String(e && e.stack || e); }
  document.getElementById("out").textContent = JSON.stringify(out);
});
</script></body></html>"""


def run_harness(tmp_path: Path, html: str, zone: str, width: int = PHONE_PX, level: str = "parcel") -> dict:
    """Open ``html`` in an iframe ``width`` px wide, click zone ``zone`` of ``level`` on the map, return what the
    page showed."""
    (tmp_path / "report.html").write_text(html, encoding="utf-8")
    page = tmp_path / "harness.html"
    page.write_text(HARNESS % {"width": width, "zone": zone, "level": level}, encoding="utf-8")
    try:
        dom = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                              "--allow-file-access-from-files", "--virtual-time-budget=20000", "--dump-dom",
                              page.as_uri()], capture_output=True, text=True, timeout=240, check=False).stdout
    except subprocess.TimeoutExpired:
        pytest.fail("chromium did not finish within 240 s")
    m = re.search(r'<pre id="out">(.*?)</pre>', dom, flags=re.S)
    assert m and m.group(1) != "pending", f"the harness did not run: {dom[:500]}"
    import html as html_lib

    out = json.loads(html_lib.unescape(m.group(1)))
    assert "error" not in out, out["error"]
    return out


@needs_chromium
def test_click_on_a_parcel_shows_its_carbon_equal_to_the_zone_table_at_phone_width(html: str, tmp_path: Path):
    out = run_harness(tmp_path, html, "P69")
    # the browser found P69's own path at its centre, and the click selected it
    data = _data(html)
    assert out["hitK"] == str([z[1] for z in data["levels"]["parcel"]["zones"]].index("P69"))
    assert out["selected"] == 1 and out["shownLayers"] == ["parcel"]
    # the panel shows what the zone table shows for P69 in 2024 (780 t C, 702 – 858, by hand above)
    p = _Tables()
    p.feed(html)
    row = next(cells for _, cells in body_rows(p.tables["zones-2024-parcel"]) if cells[1] == "P69")
    assert out["panel"]["carbon"] == row[6] == "780"
    assert out["panel"]["interval"] == row[7] == "702 – 858"
    assert out["panel"]["density"] == row[10] == "45.50"
    assert out["panel"]["coverage"] == row[3] and out["panel"]["canopy"] == row[5]
    assert out["title"] == "地块 parcel 69" and out["panel"]["zone_id"] == "P69"
    assert out["targets"] == ["✓ 达标 met · 绿化覆盖率 green coverage ≥ 40 %: 46.0 (≥ 40.0; gap +6.0)"]
    # at 390 px nothing scrolls sideways: the page is no wider than the screen, nor the summary
    assert out["clientWidth"] == PHONE_PX
    assert out["scrollWidth"] <= PHONE_PX, out
    assert out["summaryScroll"] <= out["summaryClient"] and out["summaryRight"] <= PHONE_PX


@needs_chromium
def test_phone_width_screenshot_shows_the_summary_without_sideways_scrolling(html: str, tmp_path: Path):
    report = tmp_path / "report.html"
    report.write_text(html, encoding="utf-8")
    shot = tmp_path / "phone.png"
    subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
                    f"--window-size={PHONE_PX},1600", report.as_uri()], capture_output=True, timeout=240, check=False)
    assert shot.exists(), "chromium wrote no screenshot"
    img = mpimg.imread(str(shot))[..., :3]
    assert img.shape[:2] == (1600, PHONE_PX)
    # the summary box's pale green (#eef6ee) reaches close to both edges: it is laid out to the screen's width
    pale = (np.abs(img - np.array([0xee, 0xf6, 0xee]) / 255).sum(axis=2) < 0.02)
    cols = np.flatnonzero(pale.any(axis=0))
    assert cols.size and cols.min() < 30 and cols.max() > PHONE_PX - 30


def _cmap(stream: bytes) -> dict[int, str]:
    """A ToUnicode CMap's glyph code -> text (bfchar and bfrange entries)."""
    out: dict[int, str] = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", stream, flags=re.S):
        for src, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            out[int(src, 16)] = bytes.fromhex(dst.decode()).decode("utf-16-be", "replace")
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", stream, flags=re.S):
        for lo, hi, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            for k, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                out[code] = chr(int(dst, 16) + k)
    return out


def pdf_text(data: bytes) -> str:
    """The text of a PDF Chromium printed (Skia, no object streams): each content stream's hex strings mapped
    through the ToUnicode CMap of the font selected by the last ``/Fn size Tf``. Enough to find a sentence;
    not a general PDF reader."""
    objects: dict[int, tuple[bytes, bytes | None]] = {}
    for m in re.finditer(rb"(\d+) 0 obj(.*?)endobj", data, flags=re.S):
        body, stream = m.group(2), None
        sm = re.search(rb"stream\r?\n(.*)endstream", body, flags=re.S)
        if sm:
            raw = sm.group(1)
            try:
                stream = zlib.decompress(raw) if b"/FlateDecode" in body[:sm.start()] else raw
            except zlib.error:
                stream = None
            body = body[:sm.start()]
        objects[int(m.group(1))] = (body, stream)
    font_cmaps = {}
    for num, (body, _) in objects.items():
        tu = re.search(rb"/ToUnicode\s+(\d+) 0 R", body)
        if b"/Font" in body and tu and objects.get(int(tu.group(1)), (b"", None))[1] is not None:
            font_cmaps[num] = _cmap(objects[int(tu.group(1))][1])
    names = {}
    for body, _ in objects.values():
        for fonts in re.findall(rb"/Font\s*<<(.*?)>>", body, flags=re.S):
            for name, num in re.findall(rb"/(\w+)\s+(\d+) 0 R", fonts):
                if int(num) in font_cmaps:
                    names[name] = font_cmaps[int(num)]
    text = []
    for _, stream in objects.values():
        if stream is None or b"Tf" not in stream:
            continue
        cmap: dict[int, str] = {}
        for m in re.finditer(rb"/(\w+)\s+[\d.]+\s+Tf|<([0-9A-Fa-f]+)>", stream):
            if m.group(1):
                cmap = names.get(m.group(1), {})
            else:
                h = m.group(2).decode()
                text.append("".join(cmap.get(int(h[i:i + 4], 16), "") for i in range(0, len(h) - 3, 4)))
    return "".join(text)


@needs_chromium
def test_print_to_pdf_holds_the_summary(html: str, tmp_path: Path):
    report = tmp_path / "report.html"
    report.write_text(html, encoding="utf-8")
    pdf = tmp_path / "report.pdf"
    subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--print-to-pdf={pdf}",
                    "--no-pdf-header-footer", report.as_uri()], capture_output=True, timeout=240, check=False)
    assert pdf.exists(), "chromium wrote no PDF"
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
    assert pages >= 5  # A4, a page break before each section
    text = re.sub(r"\s+", "", pdf_text(data))
    # the summary's city stock and sink (test_report.test_summary_gives_city_carbon_with_interval_and_co2e)
    for phrase in ("123,457tC", "110,000–130,000", "+1,543tC/yr", "碳储量", "达标met46"):
        assert phrase in text, phrase
    assert "@media print" in html


@needs_chromium
def test_demo_run_map_click_shows_the_parcel_tables_carbon(baseline_run, tmp_path: Path):
    """The baseline demo run's own report: a click on the parcel of median carbon shows that parcel's carbon and
    interval from results/{last year}/zones/parcel.csv, rounded as the report rounds."""
    from greensink.report.text import auto_decimals, format_interval, format_number

    results = baseline_run / "results"
    year = max(int(p.name) for p in results.iterdir() if p.name.isdigit())
    html = (results / "report.html").read_text(encoding="utf-8")
    parcels = pd.read_csv(results / f"{year}/zones/parcel.csv", dtype={"zone_id": str})
    parcels = parcels[parcels["carbon_t"] > 0].sort_values("carbon_t")
    r = parcels.iloc[len(parcels) // 2]
    out = run_harness(tmp_path, html, r["zone_id"])
    assert out["panel"]["zone_id"] == r["zone_id"]
    assert out["panel"]["carbon"] == format_number(r["carbon_t"])
    assert out["panel"]["interval"] == format_interval(r["carbon_t_lo"], r["carbon_t_hi"], auto_decimals(r["carbon_t"]))
    assert float(out["panel"]["carbon"].replace(",", "")) == pytest.approx(r["carbon_t"], rel=0.01, abs=0.006)
    assert out["scrollWidth"] <= PHONE_PX
    section = html[html.index('<section id="webmap"'):html.index("</section>", html.index('<section id="webmap"'))]
    assert len(section.encode()) < 1_000_000  # simplified zones and a 500 px image: small


# ---------------------------------------------------------------------------------------------
# Touch: real touch input through the DevTools protocol (CDP over --remote-debugging-pipe, standard library only)


class DevTools:
    """Headless Chromium driven over ``--remote-debugging-pipe``: JSON messages ending in NUL on the browser's
    fd 3 (commands) and fd 4 (answers and events). One page target, attached with a flat session."""

    def __init__(self, profile: Path):
        import fcntl
        import os

        def high(fd: int) -> int:  # every end at fd >= 10, close on exec: dup2 to 3 and 4 below clobbers none
            out = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
            os.close(fd)
            return out

        self._to_r, self._to_w = map(high, os.pipe())  # we write, chromium reads on its fd 3
        self._from_r, self._from_w = map(high, os.pipe())  # chromium writes on its fd 4, we read
        to_r, from_w = self._to_r, self._from_w

        def fds() -> None:  # in the child: its two ends as fd 3 and 4 (dup2 makes them inheritable)
            os.dup2(to_r, 3)
            os.dup2(from_w, 4)

        cmd = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--allow-file-access-from-files",
               "--remote-debugging-pipe", "about:blank"]
        self.proc = subprocess.Popen(cmd, preexec_fn=fds, close_fds=False,  # noqa: PLW1509
                                     stdout=subprocess.DEVNULL, stderr=open(profile.parent / "chromium.log", "wb"))
        os.close(self._to_r)
        os.close(self._from_w)
        self._buf, self._id, self.session, self._log = b"", 0, None, profile.parent / "chromium.log"
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    def _read(self, timeout: float = 60.0) -> dict:
        import os
        import select

        while b"\0" not in self._buf:
            ready, _, _ = select.select([self._from_r], [], [], timeout)
            if not ready:
                pytest.fail(f"chromium sent nothing for {timeout} s")
            chunk = os.read(self._from_r, 1 << 20)
            if not chunk:
                log = (self._log.read_text(errors="replace") if self._log.exists() else "")[-3000:]
                pytest.fail(f"chromium closed the DevTools pipe:\n{log}")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, **params) -> dict:
        import os

        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self._to_w, json.dumps(msg).encode() + b"\0")
        while True:
            answer = self._read()
            if answer.get("id") == self._id:
                assert "error" not in answer, (method, answer["error"])
                return answer.get("result", {})

    def js(self, expression: str):
        """The value of ``expression`` in the page (JSON-serialisable), awaited when it is a promise."""
        out = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in out, out["exceptionDetails"]
        return out["result"].get("value")

    def touch(self, kind: str, points: list[tuple[float, float]]) -> None:
        """One touch event: ``kind`` touchStart | touchMove | touchEnd with a finger at each of ``points`` (CSS px)."""
        self.send("Input.dispatchTouchEvent", type=kind,
                  touchPoints=[{"x": x, "y": y, "id": i} for i, (x, y) in enumerate(points)])

    def wait_for(self, expression: str, timeout: float = 20.0):
        """Poll ``expression`` until it is truthy (input is handled asynchronously: a tap becomes a click once the
        browser's gesture detector has seen the touch end); its value, or a failure after ``timeout`` s."""
        import time

        end = time.monotonic() + timeout
        while not (value := self.js(expression)):
            if time.monotonic() > end:
                pytest.fail(f"still false after {timeout} s: {expression}")
            time.sleep(0.05)
        return value

    def settle(self) -> None:
        """Wait until the page has handled the input sent so far (two animation frames)."""
        self.js("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))")

    def close(self) -> None:
        import os

        try:
            self.send("Browser.close")
        except Exception:  # noqa: BLE001 - the browser may be gone already
            pass
        self.proc.wait(timeout=30)
        os.close(self._to_w)
        os.close(self._from_r)


@pytest.fixture
def phone(tmp_path: Path):
    """A 390 x 844 px touch screen (mobile viewport, touch events enabled) in headless Chromium."""
    browser = DevTools(tmp_path / "profile")
    browser.send("Emulation.setDeviceMetricsOverride", width=PHONE_PX, height=844, deviceScaleFactor=1, mobile=True)
    browser.send("Emulation.setTouchEmulationEnabled", enabled=True, maxTouchPoints=5)
    yield browser
    browser.close()


def _open(browser: DevTools, tmp_path: Path, html: str) -> None:
    (tmp_path / "report.html").write_text(html, encoding="utf-8")
    browser.send("Page.navigate", url=(tmp_path / "report.html").as_uri())
    for _ in range(600):
        if browser.js("document.readyState") == "complete":
            return
        import time

        time.sleep(0.05)
    pytest.fail("the report did not load within 30 s")


VIEW = "Array.from(document.getElementById('wm-svg').getAttribute('viewBox').split(' '), Number)"
# the map's content box on the screen (CSS px): its border box less the borders
RECT = """((s) => { const r = s.getBoundingClientRect(), c = getComputedStyle(s), px = k => parseFloat(c[k]);
  return [r.left + px("borderLeftWidth"), r.top + px("borderTopWidth"),
          r.width - px("borderLeftWidth") - px("borderRightWidth"), r.height - px("borderTopWidth") - px("borderBottomWidth")];
})(document.getElementById("wm-svg"))"""


def _meet(view: list[float], rect: list[float]) -> tuple[float, float, float]:
    """SVG's default preserveAspectRatio (xMidYMid meet) by hand: (px per unit, x and y offset of the viewBox's
    origin on the screen)."""
    s = min(rect[2] / view[2], rect[3] / view[3])
    return s, rect[0] + (rect[2] - view[2] * s) / 2 - view[0] * s, rect[1] + (rect[3] - view[3] * s) / 2 - view[1] * s


def _zone_centre(browser: DevTools, level: str, zone: str) -> tuple[float, float]:
    """Screen point (CSS px) of the centre of ``zone``'s bounding box, from the path's own CTM."""
    return tuple(browser.js(f"""(() => {{
      const data = JSON.parse(document.getElementById("wm-data").textContent);
      const k = data.levels["{level}"].zones.findIndex(z => z[1] === "{zone}");
      const p = document.querySelector('#wm-svg g[data-level="{level}"] path[data-k="' + k + '"]');
      const b = p.getBBox(), m = p.getScreenCTM(), x = b.x + b.width / 2, y = b.y + b.height / 2;
      return [m.a * x + m.c * y + m.e, m.b * x + m.d * y + m.f];
    }})()"""))


def _drag(browser: DevTools, start: tuple[float, float], delta: tuple[float, float], steps: int = 8) -> None:
    (x0, y0), (dx, dy) = start, delta
    browser.touch("touchStart", [(x0, y0)])
    for i in range(1, steps + 1):
        browser.touch("touchMove", [(x0 + dx * i / steps, y0 + dy * i / steps)])
    browser.touch("touchEnd", [])
    browser.settle()


@needs_chromium
def test_touch_drag_pans_by_the_dragged_distance_and_a_tap_shows_the_parcels_carbon(html: str, tmp_path: Path,
                                                                                     phone: DevTools):
    """On a 390 px touch screen a planner drags parcel P69 to the middle of the map: the map moves by exactly the
    dragged distance (the viewBox shifts by -drag / (px per unit), the scale worked out here from the map's box
    and SVG's meet rule, not read from the page) and P69 ends under the finger; the page itself does not scroll.
    A tap on P69 then shows its carbon equal to the report's own zone table (780 t C, 702 - 858, as in the
    click test)."""
    _open(phone, tmp_path, html)
    phone.js("document.querySelector('input[name=wm-level][value=parcel]').click()")
    phone.js("document.getElementById('wm-svg').scrollIntoView({block: 'center'}); true")
    phone.settle()
    assert phone.js("navigator.maxTouchPoints") == 5 and phone.js("matchMedia('(pointer: coarse)').matches")
    assert phone.js("getComputedStyle(document.getElementById('wm-svg')).touchAction") == "none"
    before, rect = phone.js(VIEW), phone.js(RECT)
    scroll = phone.js("window.scrollY")
    units_per_px = 1 / _meet(before, rect)[0]
    # drag parcel P69 (near the map's top right corner) to the middle of the map
    start, centre = _zone_centre(phone, "parcel", "P69"), (rect[0] + rect[2] / 2, rect[1] + rect[3] / 2)
    dx, dy = centre[0] - start[0], centre[1] - start[1]
    assert abs(dx) > 100 and abs(dy) > 100
    _drag(phone, start, (dx, dy))
    after = phone.js(VIEW)
    assert after[2:] == pytest.approx(before[2:])  # a pan, not a zoom
    assert after[0] - before[0] == pytest.approx(-dx * units_per_px, abs=0.5)
    assert after[1] - before[1] == pytest.approx(-dy * units_per_px, abs=0.5)
    assert _zone_centre(phone, "parcel", "P69") == pytest.approx(centre, abs=0.5)  # it went where the finger went
    assert phone.js("window.scrollY") == scroll  # touch-action none: the drag moved the map, not the page
    assert phone.js("document.querySelectorAll('#wm-svg path.wm-sel').length") == 0  # a drag is not a tap

    # a tap on P69, now in the middle, selects it and shows the zone table's numbers
    x, y = centre
    phone.touch("touchStart", [(x, y)])
    phone.touch("touchEnd", [])
    phone.wait_for("document.querySelector('#wm-info [data-field=zone_id]') !== null")
    panel = phone.js("Object.fromEntries(Array.from(document.querySelectorAll('#wm-info [data-field]'), "
                     "e => [e.getAttribute('data-field'), e.textContent]))")
    p = _Tables()
    p.feed(html)
    row = next(cells for _, cells in body_rows(p.tables["zones-2024-parcel"]) if cells[1] == "P69")
    assert panel["zone_id"] == "P69"
    assert panel["carbon"] == row[6] == "780" and panel["interval"] == row[7] == "702 – 858"
    assert panel["density"] == row[10]
    assert phone.js(VIEW) == pytest.approx(after)  # the tap did not move the map


@needs_chromium
def test_two_finger_pinch_zooms_about_the_fingers_and_the_page_scrolls_off_the_map(html: str, tmp_path: Path,
                                                                                  phone: DevTools):
    """Two fingers moving apart symmetrically from 60 to 180 px zoom in 3x about their midpoint (the map point
    under the midpoint stays under it); a one-finger drag up on the page off the map scrolls the page
    (touch-action none is on the map only)."""
    _open(phone, tmp_path, html)
    phone.js("document.getElementById('wm-svg').scrollIntoView({block: 'center'}); true")
    phone.settle()
    before, rect = phone.js(VIEW), phone.js(RECT)
    cx, cy = rect[0] + rect[2] * 0.4, rect[1] + rect[3] * 0.5
    # the map point under (cx, cy) before, from the viewBox and the box alone
    scale, ox, oy = _meet(before, rect)
    px, py = (cx - ox) / scale, (cy - oy) / scale
    phone.touch("touchStart", [(cx - 30, cy), (cx + 30, cy)])
    for half in range(35, 95, 5):
        phone.touch("touchMove", [(cx - half, cy), (cx + half, cy)])
    phone.touch("touchEnd", [])
    phone.settle()
    after = phone.js(VIEW)
    assert after[2] == pytest.approx(before[2] / 3, rel=1e-3) and after[3] == pytest.approx(before[3] / 3, rel=1e-3)
    scale, ox, oy = _meet(after, rect)
    assert (cx - ox) / scale == pytest.approx(px, abs=0.5) and (cy - oy) / scale == pytest.approx(py, abs=0.5)

    # off the map the page scrolls as usual: a drag up on the summary moves the page, not the map
    phone.js("window.scrollTo(0, 0); true")
    for y in (400, 700):  # the drag starts and ends on the page, off the map
        assert phone.js(f"(e => e !== null && e.closest('#wm-svg') === null)(document.elementFromPoint(195, {y}))")
    _drag(phone, (195, 700), (0, -300), steps=15)
    assert phone.wait_for("window.scrollY > 100")  # the scroll runs on the compositor, a few frames after the touches
    assert phone.js(VIEW) == pytest.approx(after)


@needs_chromium
def test_mouse_drag_still_pans_and_is_not_a_click(html: str, tmp_path: Path):
    """The same Pointer Events code with a mouse (DevTools Input.dispatchMouseEvent, 1000 px desktop): a left-button
    drag pans by the dragged distance and selects nothing; a right-button drag does not pan; a click selects."""
    browser = DevTools(tmp_path / "profile")
    try:
        browser.send("Emulation.setDeviceMetricsOverride", width=1000, height=900, deviceScaleFactor=1, mobile=False)
        _open(browser, tmp_path, html)
        browser.js("document.querySelector('input[name=wm-level][value=parcel]').click()")
        browser.js("document.getElementById('wm-svg').scrollIntoView({block: 'center'}); true")
        browser.settle()
        before, rect = browser.js(VIEW), browser.js(RECT)
        units_per_px = 1 / _meet(before, rect)[0]

        def mouse(kind: str, x: float, y: float, button: str = "left") -> None:
            browser.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button=button,
                         buttons={"left": 1, "right": 2}[button] if kind != "mouseReleased" else 0, clickCount=1)

        x0, y0 = rect[0] + rect[2] / 2, rect[1] + rect[3] / 2
        for button in ("right", "left"):
            mouse("mousePressed", x0, y0, button)
            for i in range(1, 9):
                mouse("mouseMoved", x0 - 15 * i, y0 + 5 * i, button)
            mouse("mouseReleased", x0 - 120, y0 + 40, button)
            browser.settle()
            if button == "right":
                assert browser.js(VIEW) == pytest.approx(before)
        after = browser.js(VIEW)
        assert after[0] - before[0] == pytest.approx(120 * units_per_px, abs=0.5)
        assert after[1] - before[1] == pytest.approx(-40 * units_per_px, abs=0.5)
        assert browser.js("document.querySelector('#wm-info [data-field=zone_id]') === null")  # a drag, not a click
        x, y = _zone_centre(browser, "parcel", "P69")
        mouse("mousePressed", x, y)
        mouse("mouseReleased", x, y)
        assert browser.wait_for("(e => e && e.textContent)(document.querySelector('#wm-info [data-field=zone_id]'))"
                                ) == "P69"
    finally:
        browser.close()
