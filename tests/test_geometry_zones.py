"""Tests of greensink.geometry (polygon layers made safe) and greensink.zones (nested levels).

Hand cases are in EPSG:32651 (UTM 51N, metres); areas are worked out in the comments
(1 ha = 10 000 m²).
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import Point, Polygon, box

from greensink.errors import InputDataError
from greensink.geometry import prepare_polygons
from greensink.zones import assign_parents, grid_for, nest_levels, prepare_level

CRS = "EPSG:32651"
X0, Y0 = 500_000.0, 3_500_000.0  # a point in UTM 51N (123°E, ~31.6°N)


def layer(geoms: list, crs: str | None = CRS, **columns) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(dict(columns), geometry=list(geoms), crs=crs)


def ubox(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    """A box in metres relative to (X0, Y0)."""
    return box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def zones_level(level: str, boxes: dict[str, Polygon]) -> gpd.GeoDataFrame:
    gdf = layer(list(boxes.values()), zid=list(boxes))
    out, warnings = prepare_level(gdf, level, "zid", CRS, f"{level}.gpkg")
    assert warnings == []
    return out


# --- prepare_polygons ----------------------------------------------------------------------------


def test_prepare_polygons_refuses_layer_without_crs():
    gdf = layer([ubox(0, 0, 10, 10)], crs=None, zid=["a"])
    with pytest.raises(InputDataError, match=r"zones\.gpkg: the layer has no CRS"):
        prepare_polygons(gdf, CRS, "zones.gpkg", "zid")


def test_prepare_polygons_reprojects_geographic_layer_keeping_area():
    # A 1000 m × 800 m UTM rectangle = 80 ha; its corners converted to lon/lat and back must
    # give the same area within 0.1 % (the edges are short, so curvature is negligible).
    utm = ubox(0, 0, 1000, 800)
    to_ll = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    lon, lat = to_ll.transform(*np.asarray(utm.exterior.coords).T)
    geo = layer([Polygon(zip(lon, lat, strict=True))], crs="EPSG:4326", zid=["a"])
    out, warnings = prepare_polygons(geo, CRS, "zones.gpkg", "zid")
    assert out.crs == CRS
    assert warnings == []
    assert out.geometry.iloc[0].area == pytest.approx(utm.area, rel=1e-3)
    assert utm.area == 800_000.0  # 1000 m × 800 m
    assert out.geometry.iloc[0].bounds == pytest.approx(utm.bounds, abs=0.01)


def test_prepare_polygons_repairs_bow_tie_with_warning_naming_the_feature(caplog):
    # Bow-tie (0,0)-(10,10)-(10,0)-(0,10): two triangles of ½ × 10 × 5 = 25 m² each, 50 m² in all.
    bow = Polygon([(X0, Y0), (X0 + 10, Y0 + 10), (X0 + 10, Y0), (X0, Y0 + 10)])
    assert not bow.is_valid
    gdf = layer([ubox(20, 0, 30, 10), bow], zid=["ok", "bow"])
    with caplog.at_level(logging.WARNING, logger="greensink.geometry"):
        out, warnings = prepare_polygons(gdf, CRS, "parcels.gpkg", "zid")
    assert len(out) == 2
    assert len(warnings) == 1
    msg = warnings[0]
    assert "parcels.gpkg" in msg and "row 2" in msg and "'bow'" in msg and "make_valid" in msg
    assert "row 2" in caplog.text
    repaired = out.geometry.iloc[1]
    assert repaired.is_valid and repaired.geom_type == "MultiPolygon"
    assert repaired.area == pytest.approx(50.0)
    assert out.geometry.iloc[0].equals(ubox(20, 0, 30, 10))  # the valid row is untouched


@pytest.mark.parametrize("empty", [Polygon(), None], ids=["empty", "missing"])
def test_prepare_polygons_refuses_empty_geometry_naming_the_row(empty):
    gdf = layer([ubox(0, 0, 10, 10), ubox(10, 0, 20, 10), empty], zid=["a", "b", "c"])
    with pytest.raises(InputDataError, match=r"empty or missing geometry") as err:
        prepare_polygons(gdf, CRS, "blocks.gpkg", "zid")
    assert "blocks.gpkg" in str(err.value)
    assert "row 3 (zid='c')" in str(err.value)
    assert "row 1" not in str(err.value)


def test_prepare_polygons_refuses_point_layer():
    gdf = layer([Point(X0, Y0), Point(X0 + 5, Y0 + 5)], zid=["p1", "p2"])
    with pytest.raises(InputDataError, match=r"features must be polygons") as err:
        prepare_polygons(gdf, CRS, "zones.gpkg", "zid")
    assert "Point" in str(err.value) and "row 1" in str(err.value) and "row 2" in str(err.value)


def test_prepare_polygons_refuses_empty_layer():
    with pytest.raises(InputDataError, match="no features"):
        prepare_polygons(layer([], zid=[]), CRS, "zones.gpkg")


# --- prepare_level -------------------------------------------------------------------------------


def test_prepare_level_missing_id_column_names_it():
    gdf = layer([ubox(0, 0, 10, 10)], code=["a"])
    with pytest.raises(InputDataError, match=r"column 'zone_id' not found") as err:
        prepare_level(gdf, "block", "zone_id", CRS, "block.gpkg")
    assert "block.gpkg" in str(err.value) and "'code'" in str(err.value)


def test_prepare_level_missing_name_column_names_it():
    gdf = layer([ubox(0, 0, 10, 10)], zid=["a"])
    with pytest.raises(InputDataError, match=r"column 'label' not found"):
        prepare_level(gdf, "block", "zid", CRS, "block.gpkg", name_column="label")


def test_prepare_level_blank_ids_name_the_rows():
    gdf = layer([ubox(0, 0, 10, 10), ubox(10, 0, 20, 10), ubox(20, 0, 30, 10), ubox(30, 0, 40, 10)],
                zid=["a", "  ", None, "d"])
    with pytest.raises(InputDataError, match=r"zid is empty at row\(s\) \[2, 3\]"):
        prepare_level(gdf, "parcel", "zid", CRS, "parcel.gpkg")


def test_prepare_level_duplicate_ids_name_the_values():
    gdf = layer([ubox(0, 0, 10, 10), ubox(10, 0, 20, 10), ubox(20, 0, 30, 10), ubox(30, 0, 40, 10)],
                zid=["b", "a", "b ", "c"])  # "b " strips to "b"
    with pytest.raises(InputDataError, match=r"duplicate zid value\(s\) \['b'\]") as err:
        prepare_level(gdf, "parcel", "zid", CRS, "parcel.gpkg")
    assert "parcel.gpkg" in str(err.value) and "'a'" not in str(err.value)


def test_prepare_level_output_sorted_with_contract_columns():
    gdf = layer([ubox(20, 0, 30, 10), ubox(0, 0, 10, 10), ubox(10, 0, 20, 10)],
                code=[3, 1, 2], label=["三", "一", None])
    out, warnings = prepare_level(gdf, "block", "code", CRS, "block.gpkg", name_column="label")
    assert warnings == []
    assert list(out.columns) == ["zone_id", "level", "name", "geometry"]
    assert out["zone_id"].tolist() == ["1", "2", "3"]
    assert out["level"].tolist() == ["block"] * 3
    assert out["name"].tolist() == ["一", "", "三"]  # a missing name becomes "", never "<NA>"
    # geometry travels with its id: zone "1" is the box at x 0..10
    assert out.geometry.iloc[0].equals(ubox(0, 0, 10, 10))
    assert out.geometry.iloc[2].equals(ubox(20, 0, 30, 10))
    assert out.crs == CRS


def test_prepare_level_without_name_column_uses_id_as_name():
    out, _ = prepare_level(layer([ubox(0, 0, 10, 10)], zid=["p1"]), "parcel", "zid", CRS, "p.gpkg")
    assert out["name"].tolist() == ["p1"]


# --- assign_parents / nest_levels ----------------------------------------------------------------


def test_assign_parents_largest_overlap_and_share():
    parents = zones_level("block", {"A": ubox(0, 0, 100, 100), "B": ubox(100, 0, 200, 100)})
    children = zones_level("parcel", {
        "s": ubox(30, 0, 130, 10),   # 70 m in A, 30 m in B -> A, share 700/1000 = 0.7
        "t": ubox(150, 0, 160, 10),  # wholly in B -> share 1
        "u": ubox(300, 0, 310, 10),  # touches nothing -> None, share 0
    })
    pid, share = assign_parents(children, parents)
    assert list(pid) == ["A", "B", None]
    assert share == pytest.approx([0.7, 1.0, 0.0])


def test_assign_parents_mostly_in_second_parent():
    parents = zones_level("block", {"A": ubox(0, 0, 100, 100), "B": ubox(100, 0, 200, 100)})
    children = zones_level("parcel", {"s": ubox(70, 0, 170, 10)})  # 30 m in A, 70 m in B
    pid, share = assign_parents(children, parents)
    assert list(pid) == ["B"]
    assert share == pytest.approx([0.7])


def test_assign_parents_touching_only_is_no_parent():
    # A child sharing only an edge with a parent overlaps it by 0 m²: it has no parent.
    parents = zones_level("block", {"A": ubox(0, 0, 100, 100)})
    children = zones_level("parcel", {"t": ubox(100, 0, 110, 10)})
    pid, share = assign_parents(children, parents)
    assert list(pid) == [None]
    assert share == pytest.approx([0.0])


def nested_levels() -> list[gpd.GeoDataFrame]:
    """City 400 × 200 m (8 ha) -> 2 districts -> 4 blocks -> 8 parcels, exactly nested."""
    city = zones_level("city", {"C": ubox(0, 0, 400, 200)})
    district = zones_level("district", {"D1": ubox(0, 0, 200, 200), "D2": ubox(200, 0, 400, 200)})
    block = zones_level("block", {
        "B1": ubox(0, 0, 200, 100), "B2": ubox(0, 100, 200, 200),
        "B3": ubox(200, 0, 400, 100), "B4": ubox(200, 100, 400, 200),
    })
    parcels = {}
    for b, geom in zip(block["zone_id"], block.geometry, strict=True):
        x0, y0, x1, y1 = geom.bounds
        xm = (x0 + x1) / 2
        parcels[f"{b}a"] = box(x0, y0, xm, y1)
        parcels[f"{b}b"] = box(xm, y0, x1, y1)
    return [city, district, block, zones_level("parcel", parcels)]


def test_nest_levels_exact_nesting():
    levels, report = nest_levels(nested_levels())
    city, district, block, parcel = levels
    assert city["parent_id"].tolist() == [None]
    assert list(city.columns[:2]) == ["zone_id", "parent_id"]
    assert district["parent_id"].tolist() == ["C", "C"]
    assert dict(zip(block["zone_id"], block["parent_id"], strict=True)) == {
        "B1": "D1", "B2": "D1", "B3": "D2", "B4": "D2"}
    assert dict(zip(parcel["zone_id"], parcel["parent_id"], strict=True)) == {
        f"B{i}{s}": b for i, b in zip(range(1, 5), ["B1", "B2", "B3", "B4"], strict=True) for s in "ab"}
    assert parcel["share_in_parent"].tolist() == pytest.approx([1.0] * 8)
    assert report["level"].tolist() == ["district", "block", "parcel"]
    assert report["parent_level"].tolist() == ["city", "district", "block"]
    assert report["zones"].tolist() == [2, 4, 8]
    assert report["area_ha"].tolist() == pytest.approx([8.0, 8.0, 8.0])  # 400 m × 200 m = 8 ha
    for col in ("outside_parents_ha", "parent_gaps_ha", "overlap_ha"):
        assert report[col].tolist() == pytest.approx([0.0, 0.0, 0.0], abs=1e-9)
    assert report["straddling_zones"].tolist() == [0, 0, 0]
    assert report["no_parent_zones"].tolist() == [0, 0, 0]


def test_nest_levels_reports_gaps_overlaps_outside_and_straddlers(caplog):
    city = zones_level("city", {"C": ubox(0, 0, 100, 100)})  # 1 ha
    district = zones_level("district", {
        "d1": ubox(0, 0, 60, 100),     # 0.6 ha
        "d2": ubox(50, 0, 90, 100),    # 0.4 ha; overlaps d1 on x 50..60: 10 × 100 = 1000 m² = 0.1 ha
        "d3": ubox(120, 0, 130, 100),  # 0.1 ha wholly outside the city
        "d4": ubox(95, 0, 105, 100),   # 0.1 ha, half in the city (straddles its edge)
    })
    with caplog.at_level(logging.WARNING, logger="greensink.zones"):
        levels, report = nest_levels([city, district])
    row = report.iloc[0]
    assert row["zones"] == 4
    assert row["area_ha"] == pytest.approx(1.2)  # 0.6 + 0.4 + 0.1 + 0.1
    # outside: d3 (0.1 ha) + the half of d4 beyond x = 100 (5 × 100 = 500 m² = 0.05 ha)
    assert row["outside_parents_ha"] == pytest.approx(0.15)
    # gaps: city x 90..95 not covered: 5 × 100 = 500 m² = 0.05 ha
    assert row["parent_gaps_ha"] == pytest.approx(0.05)
    assert row["overlap_ha"] == pytest.approx(0.1)
    # d3 (share 0) and d4 (share 0.5) are below 99 % in their parent
    assert row["straddling_zones"] == 2
    assert row["straddling_ids"] == "d3 d4"
    assert row["no_parent_zones"] == 1
    d = levels[1].set_index("zone_id")
    assert d.loc["d4", "parent_id"] == "C" and d.loc["d4", "share_in_parent"] == pytest.approx(0.5)
    assert pd.isna(d.loc["d3", "parent_id"])
    assert "does not tile" in caplog.text


def test_grid_for_snaps_outward():
    a = zones_level("block", {"a": box(X0 + 3, Y0 + 7, X0 + 31, Y0 + 41)})
    b = zones_level("parcel", {"b": box(X0 + 20, Y0 + 10, X0 + 57, Y0 + 20)})
    grid = grid_for([a, b], 10, CRS)
    # union bounds (X0+3, Y0+7, X0+57, Y0+41) snapped outward to 10 m: (X0, Y0, X0+60, Y0+50)
    assert grid.bounds == (X0, Y0, X0 + 60, Y0 + 50)
    assert grid.shape == (5, 6)
    assert grid.crs == CRS
    assert shapely.box(*grid.bounds).contains(shapely.union_all([a.geometry.iloc[0], b.geometry.iloc[0]]))


def test_declared_parent_column_is_used_and_checked():
    import shapely as _shapely

    from greensink.errors import InputDataError as _Err
    from greensink.zones import nest_levels as _nest
    from greensink.zones import prepare_level as _prep

    crs = "EPSG:32651"
    parents = gpd.GeoDataFrame({"id": ["A", "B"]}, geometry=[_shapely.box(0, 0, 100, 100), _shapely.box(100, 0, 200, 100)], crs=crs)
    # child "c1" lies 70 % in A and 30 % in B, but the table says its parent is B: the declared parent wins,
    # and its share in that parent (0.3) shows it straddles
    kids = gpd.GeoDataFrame({"id": ["c1", "c2"], "up": ["B", "A"]},
                            geometry=[_shapely.box(30, 0, 130, 50), _shapely.box(0, 50, 100, 100)], crs=crs)
    p, _ = _prep(parents, "district", "id", crs, "d.gpkg")
    c, _ = _prep(kids, "block", "id", crs, "b.gpkg", parent_column="up")
    nested, table = _nest([p, c])
    blocks = nested[1].set_index("zone_id")
    assert blocks.loc["c1", "parent_id"] == "B" and blocks.loc["c2", "parent_id"] == "A"
    assert blocks.loc["c1", "share_in_parent"] == pytest.approx(0.3)
    assert table.iloc[0]["straddling_zones"] == 1
    bad = kids.assign(up=["B", "Z"])
    c_bad, _ = _prep(bad, "block", "id", crs, "b.gpkg", parent_column="up")
    with pytest.raises(_Err, match=r"\['Z'\].*not zone ids of level 'district'"):
        _nest([p, c_bad])
