"""The QGIS project file (greensink.qgis_project), parsed as XML with the standard library.

Opening it in real QGIS is in tests/test_workflow.py (test_qgis_project_opens_in_qgis), on a workflow run.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import PurePosixPath

import pytest
from pyproj import CRS

from greensink.qgis_project import Group, Layer, layers, project_xml, run_tree
from greensink.styles import (
    ATTRIBUTION_STYLE,
    BROWN_GREEN,
    FIXED_RASTERS,
    GREENS,
    VEGETATION_STYLE,
    ZONING_COLUMNS,
    classed_raster_qml,
    raster_qml,
    run_qgis_styles,
    vector_qml,
)

YEARS = [2024, 2022, 2023]  # unsorted on purpose: the tree lists them newest first
PAIRS = [(2022, 2023), (2023, 2024)]
LEVELS = ["city", "district", "block", "parcel"]  # the config's order, coarsest first
EXTENT = (349990.0, 3454990.0, 352010.0, 3457010.0)


def styles_for(tree: Group) -> dict[str, str]:
    """A style per layer as rule qgis_styles writes them (limits made distinct per file to trace them)."""
    out = {}
    for i, layer in enumerate(layers(tree)):
        stem = PurePosixPath(layer.source).stem
        if layer.kind == "raster" and stem in FIXED_RASTERS:
            out[layer.qml] = raster_qml(*FIXED_RASTERS[stem])
        elif layer.kind == "raster" and stem in ("attribution", "classes", "importance", "potential"):
            style = ATTRIBUTION_STYLE if stem == "attribution" else VEGETATION_STYLE
            out[layer.qml] = classed_raster_qml([(c, label, colour) for c, (label, colour) in style.items()])
        elif layer.kind == "raster":
            out[layer.qml] = raster_qml(0.0, 10.0 + i, GREENS if stem == "carbon" else BROWN_GREEN)
        else:
            column = "sink_t_ha_yr" if layer.source.startswith("change/") else "carbon_t_ha"
            out[layer.qml] = vector_qml(column, 0.0, 10.0 + i)
    return out


def parse(crs: str = "EPSG:32651", zoning: bool = False) -> tuple[ET.Element, Group]:
    tree = run_tree(YEARS, PAIRS, LEVELS, zoning)
    text = project_xml(tree, styles_for(tree), crs, EXTENT)
    assert text.startswith("<!DOCTYPE qgis")
    return ET.fromstring(text.split("\n", 1)[1]), tree


def test_groups_per_change_pair_and_year_newest_first_levels_coarsest_on_top():
    root, _ = parse()
    top = root.find("layer-tree-group")
    groups = top.findall("layer-tree-group")
    assert [g.get("name") for g in groups] == [
        "趋势 trend 2022–2024", "碳汇变化 change 2023–2024", "碳汇变化 change 2022–2023", "2024 年 year 2024",
        "2023 年 year 2023", "2022 年 year 2022"]
    # the trend: its zone tables, the trend raster, the transitions' vegetation classes
    trend = groups[0]
    assert [n.get("source") for n in trend.find("layer-tree-group").findall("layer-tree-layer")] == [
        f"./change/trend/zones/{level}.gpkg" for level in LEVELS]
    assert [n.get("source") for n in trend.findall("layer-tree-layer")] == [
        "./change/trend/trend.tif", "./change/trend/transitions/classes.tif"]
    # each year: its zone tables (a subgroup, city on top) then the four rasters; no zoning without zoning
    y2023 = groups[4]
    assert len(y2023.findall("layer-tree-group")) == 1
    zones = y2023.find("layer-tree-group")
    assert zones.get("name") == "分区 zones 2023"
    assert [n.get("source") for n in zones.findall("layer-tree-layer")] == [
        "./2023/zones/city.gpkg", "./2023/zones/district.gpkg", "./2023/zones/block.gpkg", "./2023/zones/parcel.gpkg"]
    assert [n.get("source") for n in y2023.findall("layer-tree-layer")] == [
        "./2023/carbon.tif", "./2023/canopy.tif", "./2023/fvc.tif", "./2023/ndvi.tif"]
    # a change pair: sink zone tables per level, then the sink raster
    pair = groups[2]
    assert [n.get("source") for n in pair.find("layer-tree-group").findall("layer-tree-layer")] == [
        f"./change/2022_2023/zones/{level}.gpkg" for level in LEVELS]
    assert [n.get("source") for n in pair.findall("layer-tree-layer")] == [
        "./change/2022_2023/sink.tif", "./change/2022_2023/lost_patches.gpkg", "./change/2022_2023/attribution.tif"]
    # 3 years x (4 rasters + 4 levels) + 2 pairs x (sink, lost patches, attribution + 4 levels) + trend (2 + 4)
    assert len(root.findall("projectlayers/maplayer")) == 3 * 8 + 2 * 7 + 6 == 44


def test_zoning_is_a_subgroup_of_each_year_with_its_rasters_and_three_tables_per_level():
    root, _ = parse(zoning=True)
    years = root.find("layer-tree-group").findall("layer-tree-group")[3:]
    for group, year in zip(years, (2024, 2023, 2022), strict=True):
        zones, zoning = group.findall("layer-tree-group")
        assert zones.get("name") == f"分区 zones {year}" and zoning.get("name") == f"分区规划 zoning {year}"
        assert zoning.get("checked") == "Qt::Unchecked"
        assert [n.get("source") for n in zoning.findall("layer-tree-layer")] == [
            f"./{year}/zoning/importance.tif", f"./{year}/zoning/potential.tif"]
        assert [n.get("source") for n in zoning.find("layer-tree-group").findall("layer-tree-layer")] == [
            f"./{year}/zoning/{product}_{level}.gpkg"
            for product in ("importance", "potential", "canopy_gap") for level in LEVELS]
    # 44 without zoning + 3 years x (2 rasters + 3 products x 4 levels)
    assert len(root.findall("projectlayers/maplayer")) == 44 + 3 * 14 == 86
    # greensink.io names each zoning table's layer after its file
    sources = [ml.findtext("datasource") for ml in root.iter("maplayer")]
    assert "./2023/zoning/canopy_gap_block.gpkg|layername=canopy_gap_block" in sources
    assert "./change/2022_2023/lost_patches.gpkg|layername=lost_patches" in sources
    assert shown(root.find("layer-tree-group")) == ["greensink_carbon_2024"]  # nothing new switched on


def shown(node: ET.Element, parents: tuple[ET.Element, ...] = ()) -> list[str]:
    """Ids of the layers QGIS draws: the layer and every group above it checked."""
    out = []
    for child in node:
        if child.tag == "layer-tree-group":
            out += shown(child, (*parents, child))
        elif child.tag == "layer-tree-layer" and all(e.get("checked") == "Qt::Checked" for e in (*parents, child)):
            out.append(child.get("id"))
    return out


def test_only_the_newest_carbon_map_is_switched_on():
    root, _ = parse()
    assert shown(root.find("layer-tree-group")) == ["greensink_carbon_2024"]
    # each year's carbon map is checked in its (unchecked) group: ticking the year shows its map
    checked = [n.get("id") for n in root.iter("layer-tree-layer") if n.get("checked") == "Qt::Checked"]
    assert checked == ["greensink_carbon_2024", "greensink_carbon_2023", "greensink_carbon_2022"]
    groups = {g.get("name"): g.get("checked") for g in root.find("layer-tree-group").findall("layer-tree-group")}
    assert groups["2024 年 year 2024"] == "Qt::Checked" and groups["2023 年 year 2023"] == "Qt::Unchecked"
    assert groups["碳汇变化 change 2023–2024"] == "Qt::Unchecked"


def test_every_path_is_relative_to_the_project_file_and_follows_the_output_contract():
    root, _ = parse()
    sources = [ml.findtext("datasource") for ml in root.iter("maplayer")]
    assert all(s.startswith("./") for s in sources)  # QGIS treats only ./ and ../ as relative
    files = sorted(s.split("|")[0][2:] for s in sources)
    # DESIGN.md output paths, relative to results/ where the project file is
    expected = sorted(
        [f"{y}/{n}.tif" for y in (2022, 2023, 2024) for n in ("carbon", "canopy", "fvc", "ndvi")]
        + [f"{y}/zones/{lv}.gpkg" for y in (2022, 2023, 2024) for lv in LEVELS]
        + [f"change/{a}_{b}/sink.tif" for a, b in PAIRS]
        + [f"change/{a}_{b}/zones/{lv}.gpkg" for a, b in PAIRS for lv in LEVELS]
        + [f"change/{a}_{b}/{n}" for a, b in PAIRS for n in ("attribution.tif", "lost_patches.gpkg")]
        + ["change/trend/trend.tif", "change/trend/transitions/classes.tif"]
        + [f"change/trend/zones/{lv}.gpkg" for lv in LEVELS])
    assert files == expected
    # greensink.io names a GeoPackage's layer after its file
    assert "./2023/zones/block.gpkg|layername=block" in sources
    assert root.findtext("properties/Paths/Absolute") == "false"  # saved again, QGIS keeps them relative


def test_tree_references_every_map_layer_by_an_id_qgis_keeps():
    root, _ = parse()
    tree_ids = [n.get("id") for n in root.iter("layer-tree-layer")]
    layer_ids = [ml.findtext("id") for ml in root.iter("maplayer")]
    assert tree_ids == layer_ids and len(set(layer_ids)) == len(layer_ids)
    assert min(len(i) for i in layer_ids) > 10  # QGIS replaces ids of 10 characters or fewer by random ones
    for node, ml in zip(root.iter("layer-tree-layer"), root.iter("maplayer"), strict=True):
        assert node.get("source") == ml.findtext("datasource").split("|")[0]
        assert node.get("name") == ml.findtext("layername")
        assert node.get("providerKey") == ml.findtext("provider") == ("gdal" if ml.get("type") == "raster" else "ogr")


def test_layer_names_are_bilingual_with_units():
    root, _ = parse()
    names = {ml.findtext("id"): ml.findtext("layername") for ml in root.iter("maplayer")}
    assert names["greensink_carbon_2023"] == "碳密度 carbon density 2023 (t C/ha)"
    assert names["greensink_ndvi_2022"] == "归一化植被指数 NDVI 2022"
    assert names["greensink_zones_2024_district"] == "城区 district 2024 碳密度 carbon density (t C/ha)"
    assert names["greensink_sink_2022_2023"] == "年碳汇 yearly sink 2022–2023 (t C/ha/yr)"
    assert names["greensink_sink_2023_2024_parcel"] == "地块 parcel 2023–2024 年碳汇 yearly sink (t C/ha/yr)"


@pytest.mark.parametrize("crs", ["EPSG:32651", "EPSG:4547"])  # UTM 51N; CGCS2000 / 3-degree Gauss-Kruger CM 114E
def test_project_and_layers_carry_the_runs_crs(crs):
    root, _ = parse(crs)
    code = crs.split(":")[1]
    srs_elements = [root.find("projectCrs/spatialrefsys"), root.find("mapcanvas/destinationsrs/spatialrefsys"),
                    *(ml.find("srs/spatialrefsys") for ml in root.iter("maplayer"))]
    for srs in srs_elements:
        assert srs.findtext("authid") == crs and srs.findtext("srid") == code
        assert srs.find("srsid") is None  # QGIS's own database id is unknown here: QGIS then reads the WKT
        assert CRS.from_wkt(srs.findtext("wkt")).to_epsg() == int(code)
        assert srs.findtext("geographicflag") == "false"
    assert root.findtext("mapcanvas/units") == "meters"
    assert [float(root.findtext(f"mapcanvas/extent/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")] == list(EXTENT)
    assert root.findtext("properties/SpatialRefSys/ProjectionsEnabled") == "1"  # else QGIS ignores <projectCrs>


def test_styles_are_embedded_from_each_layers_qml():
    root, tree = parse(zoning=True)
    styles = styles_for(tree)
    by_id = {ml.findtext("id"): ml for ml in root.iter("maplayer")}
    for layer in layers(tree):
        ml = by_id[layer.id]
        qml = ET.fromstring(styles[layer.qml].split("\n", 1)[1])
        if layer.kind == "raster" and qml.find("pipe/rasterrenderer").get("type") == "paletted":
            entries = [(e.get("value"), e.get("color")) for e in ml.findall("pipe/rasterrenderer/colorPalette/paletteEntry")]
            assert entries == [(e.get("value"), e.get("color")) for e in qml.findall("pipe/rasterrenderer/colorPalette/paletteEntry")]
            assert entries, layer.id
        elif layer.kind == "raster":
            want = qml.find("pipe/rasterrenderer/rastershader/colorrampshader")
            got = ml.find("pipe/rasterrenderer/rastershader/colorrampshader")
            assert got.get("maximumValue") == want.get("maximumValue"), layer.id
            assert [i.get("color") for i in got.findall("item")] == [i.get("color") for i in want.findall("item")]
        else:
            renderer = ml.find("renderer-v2")
            assert renderer.get("type") == "graduatedSymbol"
            assert renderer.get("attr") == qml.find("renderer-v2").get("attr")
            assert [r.get("upper") for r in renderer.findall("ranges/range")] == [
                r.get("upper") for r in qml.findall("renderer-v2/ranges/range")]
    # NDVI, FVC, canopy on a fixed 0-1 scale; the sink zone tables coloured by sink, not stock
    ndvi = by_id["greensink_ndvi_2023"].find("pipe/rasterrenderer")
    assert (ndvi.get("classificationMin"), ndvi.get("classificationMax")) == ("0", "1")
    assert by_id["greensink_sink_2022_2023_block"].find("renderer-v2").get("attr") == "sink_t_ha_yr"
    assert by_id["greensink_zones_2022_block"].find("renderer-v2").get("attr") == "carbon_t_ha"


def test_one_year_has_no_change_or_trend_group():
    tree = run_tree([2024], [], ["city", "parcel"])
    assert [g.name for g in tree.children] == ["2024 年 year 2024"]
    assert len(list(layers(tree))) == 4 + 2
    with_zoning = run_tree([2024], [], ["city", "parcel"], zoning=True)
    assert len(list(layers(with_zoning))) == 4 + 2 + 2 + 3 * 2


def test_a_missing_style_or_a_short_id_is_refused():
    tree = run_tree([2024], [], ["city"])
    styles = styles_for(tree)
    del styles["2024/ndvi.qml"]
    with pytest.raises(ValueError, match="2024/ndvi.qml"):
        project_xml(tree, styles, "EPSG:32651", EXTENT)
    short = Group("", (Layer("ndvi_2024", "NDVI", "2024/ndvi.tif", "raster"),))
    with pytest.raises(ValueError, match="longer than 10"):
        project_xml(short, {"2024/ndvi.qml": raster_qml(0, 1)}, "EPSG:32651", EXTENT)


def test_styles_of_the_trend_lost_patches_attribution_classes_and_zoning_tables(tmp_path):
    """rule qgis_styles on small hand-built files: the trend ramp ± the 99th percentile of |trend| (numpy, by hand
    here), the lost patches 0 to the table's max, classed styles on the right band, zoning tables on 0-100 %."""
    import geopandas as gpd
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin
    from shapely.geometry import box

    carbon = tmp_path / "carbon.tif"
    trend = tmp_path / "trend.tif"
    values = np.array([[-3.0, 1.0], [2.0, np.nan]], dtype=np.float32)
    for path, data in ((carbon, np.full((2, 2), 10.0, np.float32)), (trend, values)):
        with rasterio.open(path, "w", driver="GTiff", width=2, height=2, count=1, dtype="float32", crs="EPSG:32651",
                           transform=from_origin(0, 20, 10, 10), nodata=np.nan) as dst:
            dst.write(data, 1)
    zones = gpd.GeoDataFrame({"carbon_t_ha": [5.0, 20.0], "trend_t_ha_yr": [-0.5, 0.25],
                              "carbon_lost_t": [4.0, np.nan]}, geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)],
                             crs="EPSG:32651")
    table = tmp_path / "zones.gpkg"
    zones.to_file(table, layer="zones")
    out = {name: [str(tmp_path / f"{name}.qml")] for name in
           ("carbon", "tables", "trend", "trend_tables", "lost_patches", "attribution", "classes")}
    out |= {"sinks": [], "change": [], "zoning_tables": [str(tmp_path / "potential_block.qml")]}
    limits = run_qgis_styles([carbon], [], [table], [], out, trend=[trend], trend_tables=[table],
                             lost_patches=[table], n_years=3)
    # |trend| = 3, 1, 2 (NaN left out): 99th percentile by linear interpolation 2 + 0.98 x (3 - 2)
    assert limits["trend_max"] == pytest.approx(2.98)
    assert limits["trend_zone_max"] == pytest.approx(0.5)  # 100th percentile of |-0.5|, |0.25|
    assert limits["lost_max"] == pytest.approx(4.0)  # the NaN patch is not a number
    qml = {name: ET.fromstring((tmp_path / f"{name}.qml").read_text(encoding="utf-8").split("\n", 1)[1])
           for name in (*out, "potential_block") if out.get(name) != [] and name != "zoning_tables"}
    shader = qml["trend"].find("pipe/rasterrenderer/rastershader/colorrampshader")
    assert (shader.get("minimumValue"), shader.get("maximumValue")) == ("-2.98", "2.98")
    assert [i.get("color") for i in shader.findall("item")] == list(BROWN_GREEN)
    assert qml["trend_tables"].find("renderer-v2").get("attr") == "trend_t_ha_yr"
    assert qml["lost_patches"].find("renderer-v2").get("attr") == "carbon_lost_t"
    assert qml["potential_block"].find("renderer-v2").get("attr") == ZONING_COLUMNS["potential"] == "potential_pct"
    uppers = [float(r.get("upper")) for r in qml["potential_block"].findall("renderer-v2/ranges/range")]
    assert uppers[:-1] == [20.0, 40.0, 60.0, 80.0]  # five equal classes of 0-100 %
    attribution = qml["attribution"].find("pipe/rasterrenderer")
    assert (attribution.get("type"), attribution.get("band")) == ("paletted", "1")
    # the codes of greensink.change.ATTRIBUTION_CODES, each with its colour
    from greensink.change import ATTRIBUTION_CODES

    assert sorted(int(e.get("value")) for e in attribution.findall("colorPalette/paletteEntry")) == sorted(
        ATTRIBUTION_CODES.values())
    classes = qml["classes"].find("pipe/rasterrenderer")
    assert classes.get("band") == "3"  # the newest of 3 years' bands
    assert {int(e.get("value")) for e in classes.findall("colorPalette/paletteEntry")} == {0, 1, 2, 3}
    with pytest.raises(ValueError, match="zoning zone table"):
        run_qgis_styles([carbon], [], [table], [], {**out, "zoning_tables": [str(tmp_path / "block.qml")]})


# ---------------------------------------------------------------------------------------------
# Scenarios (config scenarios): a group on top, one subgroup per plan, zone tables styled on the difference


def test_scenarios_are_a_group_on_top_one_subgroup_per_plan_in_config_order():
    from greensink.qgis_project import ScenarioLayers

    plans = [ScenarioLayers("new_park", "新建公园 new park", 2024), ScenarioLayers("construction", "", 2023)]
    tree = run_tree(YEARS, PAIRS, LEVELS, False, plans)
    text = project_xml(tree, {**styles_for(tree), **{layer.qml: vector_qml("difference_t", -1.0, 1.0, BROWN_GREEN)
                                                      for layer in layers(tree) if "/zones/" in layer.source
                                                      and layer.source.startswith("scenarios/")}}, "EPSG:32651",
                       EXTENT)
    root = ET.fromstring(text.split("\n", 1)[1]).find("layer-tree-group")
    groups = root.findall("layer-tree-group")
    assert [g.get("name") for g in groups][:2] == ["情景 scenarios", "趋势 trend 2022–2024"]
    scen = groups[0]
    assert scen.get("checked") == "Qt::Unchecked"
    # config order, not sorted; a plan without a label shows its name
    assert [g.get("name") for g in scen.findall("layer-tree-group")] == ["新建公园 new park (2024)",
                                                                         "construction (2023)"]
    park = scen.find("layer-tree-group")
    assert [n.get("source") for n in park.find("layer-tree-group").findall("layer-tree-layer")] == [
        f"./scenarios/new_park/zones/{level}.gpkg" for level in LEVELS]
    assert [n.get("source") for n in park.findall("layer-tree-layer")] == ["./scenarios/new_park/carbon.tif"]
    names = {ml.findtext("id"): ml.findtext("layername")
             for ml in ET.fromstring(text.split("\n", 1)[1]).findall("projectlayers/maplayer")}
    assert names["greensink_scenario_zones_new_park_district"] == (
        "城区 district 新建公园 new park 与2024年之差 difference from 2024 (t C)")
    assert names["greensink_scenario_carbon_construction"] == "碳密度 carbon density construction (t C/ha)"
    # the plans are shown only when ticked (group, subgroups and layers): the project still opens on the newest
    # year's carbon map
    assert {n.get("checked") for n in scen.iter() if n.get("checked")} == {"Qt::Unchecked"}
    # without scenarios nothing changes
    assert run_tree(YEARS, PAIRS, LEVELS) == run_tree(YEARS, PAIRS, LEVELS, False, [])


def test_scenario_styles_share_one_diverging_scale_per_level_over_every_plan():
    from greensink.qgis_project import scenario_styles

    nan = float("nan")
    styles = scenario_styles({"district": [[-30.0, 5.0, nan], [0.0, 12.0]], "parcel": [[nan, nan], [0.0, 0.0]]})
    district = ET.fromstring(styles["district"].split("\n", 1)[1]).find("renderer-v2")
    assert district.get("attr") == "difference_t"
    # ± the largest |difference| of the level over both plans, 30 t C (NaN is no difference): five classes of 12 t C
    uppers = [float(r.get("upper")) for r in district.findall("ranges/range")]
    assert uppers[:-1] == [-18.0, -6.0, 6.0, 18.0]
    assert [r.get("label") for r in district.findall("ranges/range")][0] == "< -18 t C"
    colours = [s.find("layer/Option/Option[@name='color']").get("value") for s in district.findall("symbols/symbol")]
    assert colours == ["140,81,10,255", "216,179,101,255", "245,245,245,255", "90,180,172,255", "1,102,94,255"]
    # a level with no change anywhere (all 0 or NaN): ± 1 t C, so the zero class is the neutral middle one
    parcel = ET.fromstring(styles["parcel"].split("\n", 1)[1]).find("renderer-v2")
    assert [float(r.get("upper")) for r in parcel.findall("ranges/range")][:-1] == [-0.6, -0.2, 0.2, 0.6]


def test_run_qgis_project_writes_the_scenario_styles_and_refers_to_the_plans_files(tmp_path):
    """run_qgis_project on a hand-built results/ folder with one year and one plan: the plan's zone tables get the
    difference style beside them, its carbon map a copy of the baseline year's carbon.qml, and every layer of
    the project names a file that exists, relative to the project."""
    import json

    import geopandas as gpd
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin
    from shapely.geometry import box

    from greensink.qgis_project import run_qgis_project

    home = tmp_path / "results"
    levels = ["city", "district"]
    tables = {"city": [-7.5], "district": [2.5, -10.0]}
    for folder in ("2024", "scenarios/park"):
        for level in levels:
            n = len(tables[level])
            gdf = gpd.GeoDataFrame({"zone_id": [f"{level}{i}" for i in range(n)], "carbon_t_ha": np.arange(n) + 1.0,
                                    "difference_t": tables[level]},
                                   geometry=[box(i, 0, i + 1, 1) for i in range(n)], crs="EPSG:32651")
            (home / folder / "zones").mkdir(parents=True, exist_ok=True)
            gdf.to_file(home / folder / "zones" / f"{level}.gpkg", layer=level)
            (home / folder / "zones" / f"{level}.qml").write_text(vector_qml("carbon_t_ha", 0, 9), encoding="utf-8")
    for stem in ("carbon", "canopy", "fvc", "ndvi"):
        for folder in ("2024", "scenarios/park") if stem == "carbon" else ("2024",):
            with rasterio.open(home / folder / f"{stem}.tif", "w", driver="GTiff", width=2, height=2, count=1,
                               dtype="float32", crs="EPSG:32651", transform=from_origin(0, 20, 10, 10)) as dst:
                dst.write(np.ones((2, 2), np.float32), 1)
        (home / "2024" / f"{stem}.qml").write_text(raster_qml(0.0, 42.0 if stem == "carbon" else 1.0),
                                                   encoding="utf-8")
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"crs": "EPSG:32651", "transform": [10, 0, 0, 0, -10, 20], "width": 2, "height": 2}),
                    encoding="utf-8")
    tree = run_qgis_project(grid, home / "greensink.qgs", years=[2024], pairs=[], levels=levels,
                            scenarios=[["park", "新建公园 new park", 2024]])
    assert (home / "scenarios/park/carbon.qml").read_text(encoding="utf-8") == (
        home / "2024/carbon.qml").read_text(encoding="utf-8")
    district = ET.fromstring((home / "scenarios/park/zones/district.qml").read_text(encoding="utf-8")
                             .split("\n", 1)[1]).find("renderer-v2")
    assert district.get("attr") == "difference_t"
    assert [float(r.get("upper")) for r in district.findall("ranges/range")][:-1] == [-6.0, -2.0, 2.0, 6.0]  # ± 10
    city = ET.fromstring((home / "scenarios/park/zones/city.qml").read_text(encoding="utf-8").split("\n", 1)[1])
    assert [float(r.get("upper")) for r in city.findall("renderer-v2/ranges/range")][:-1] == [-4.5, -1.5, 1.5, 4.5]
    root = ET.fromstring((home / "greensink.qgs").read_text(encoding="utf-8").split("\n", 1)[1])
    assert [g.get("name") for g in root.find("layer-tree-group").findall("layer-tree-group")] == [
        "情景 scenarios", "2024 年 year 2024"]
    maplayers = root.findall("projectlayers/maplayer")
    assert len(maplayers) == len(list(layers(tree))) == 2 * (len(levels) + 1) + 3
    for ml in maplayers:
        source = ml.findtext("datasource").split("|")[0]
        assert source.startswith("./") and (home / source).is_file(), source
    park = next(ml for ml in maplayers if ml.findtext("id") == "greensink_scenario_zones_park_district")
    assert park.find("renderer-v2").get("attr") == "difference_t"  # the style embedded is the one written
    assert park.findtext("datasource") == "./scenarios/park/zones/district.gpkg|layername=district"
