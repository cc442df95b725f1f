"""Tests of greensink.types: type codes, overlaps between types, per-type coverage fractions.

The hand grid is 4 × 4 pixels of 10 m in EPSG:32651 with its top-left corner at
(X0, Y1) = (500 000, 3 500 040): pixel (row, col) spans x in [X0 + 10 col, X0 + 10 col + 10]
and y in [Y1 - 10 row - 10, Y1 - 10 row].
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from greensink.errors import InputDataError
from greensink.grid import Grid
from greensink.types import check_type_codes, resolve_overlaps, type_fractions

CRS = "EPSG:32651"
X0, Y0, Y1 = 500_000.0, 3_500_000.0, 3_500_040.0
GRID = Grid.from_bounds((X0, Y0, X0 + 40, Y1), 10, CRS)
TYPES = ["G1", "G2", "G3", "XG", "EG"]


def px_box(col0: float, row0: float, col1: float, row1: float):
    """Rectangle in pixel coordinates (col right, row down) of the hand grid."""
    return box(X0 + 10 * col0, Y1 - 10 * row1, X0 + 10 * col1, Y1 - 10 * row0)


def typed(codes: list, geoms: list) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"type": codes}, geometry=geoms, crs=CRS)


def test_grid_is_the_hand_grid():
    assert GRID.shape == (4, 4) and GRID.bounds == (X0, Y0, X0 + 40, Y1)


# --- check_type_codes ----------------------------------------------------------------------------


def test_check_type_codes_accepts_known_codes():
    gdf = typed(["G1", "XG", "EG"], [px_box(0, 0, 1, 1)] * 3)
    before = gdf.copy()
    assert check_type_codes(gdf, "type", TYPES, "gs.gpkg") is None  # no error raised
    assert gdf.equals(before)  # a check only: the polygons and their codes are left as they were


def test_check_type_codes_unknown_code_lists_code_row_and_known_codes():
    gdf = typed(["G1", "G9", "XG", "park"], [px_box(0, 0, 1, 1)] * 4)
    with pytest.raises(InputDataError) as err:
        check_type_codes(gdf, "type", TYPES, "greenspace.gpkg")
    msg = str(err.value)
    assert "greenspace.gpkg" in msg
    assert "['G9', 'park']" in msg  # the unknown codes, sorted
    assert "row 2: 'G9'" in msg and "row 4: 'park'" in msg  # 1-based rows
    assert "Known codes: ['G1', 'G2', 'G3', 'XG', 'EG']" in msg
    assert "row 1" not in msg and "row 3" not in msg


def test_check_type_codes_missing_code_is_unknown():
    gdf = typed(["G1", None], [px_box(0, 0, 1, 1)] * 2)
    with pytest.raises(InputDataError, match=r"<empty>") as err:
        check_type_codes(gdf, "type", TYPES, "greenspace.gpkg")
    assert "row 2" in str(err.value)


def test_check_type_codes_missing_column():
    gdf = typed(["G1"], [px_box(0, 0, 1, 1)]).rename(columns={"type": "kind"})
    with pytest.raises(InputDataError, match=r"column 'type' not found") as err:
        check_type_codes(gdf, "type", TYPES, "greenspace.gpkg")
    assert "'kind'" in str(err.value) and "greenspace.type_column" in str(err.value)


# --- resolve_overlaps ----------------------------------------------------------------------------


def test_resolve_overlaps_first_listed_type_keeps_the_overlap():
    # G1 covers cols 0-1 (20 m × 40 m = 800 m²), XG covers cols 1-2 (800 m²); they overlap on
    # col 1: 10 m × 40 m = 400 m² = 0.04 ha, which G1 (listed first) keeps.
    gdf = typed(["XG", "G1"], [px_box(1, 0, 3, 4), px_box(0, 0, 2, 4)])
    out, overlaps = resolve_overlaps(gdf, "type", TYPES)
    assert out["type"].tolist() == ["G1", "XG"]  # order of TYPES, not of the rows
    assert out["polygons"].tolist() == [1, 1]
    assert overlaps["G1"] == pytest.approx(0.0)
    assert overlaps["XG"] == pytest.approx(0.04)
    g1, xg = out.geometry
    assert g1.area == pytest.approx(800.0)
    assert xg.area == pytest.approx(400.0)  # 800 - 400 given to G1
    assert g1.intersection(xg).area == pytest.approx(0.0)
    assert xg.equals(px_box(2, 0, 3, 4))
    fr = type_fractions(out, "type", TYPES, GRID)
    assert fr[0].tolist() == [[1, 1, 0, 0]] * 4  # G1: cols 0 and 1
    assert fr[3].tolist() == [[0, 0, 1, 0]] * 4  # XG: col 2 only


def test_resolve_overlaps_merges_polygons_of_one_type():
    # Two G2 polygons overlapping each other (not another type): merged, no overlap reported.
    gdf = typed(["G2", "G2"], [px_box(0, 0, 2, 1), px_box(1, 0, 3, 1)])
    out, overlaps = resolve_overlaps(gdf, "type", TYPES)
    assert out["type"].tolist() == ["G2"] and out["polygons"].tolist() == [2]
    assert out.geometry.iloc[0].area == pytest.approx(300.0)  # 30 m × 10 m
    assert overlaps == {"G2": 0.0}


# --- type_fractions ------------------------------------------------------------------------------


def split_layer() -> gpd.GeoDataFrame:
    """G1: cols 0-1 in full, plus the left 30 % of pixel (0, 2) (x 20..23 m, row 0).
    XG: the right 70 % of pixel (0, 2) (x 23..30 m, row 0) and the right 30 % of column 3
    (x 37..40 m, every row)."""
    return typed(
        ["G1", "G1", "XG", "XG"],
        [px_box(0, 0, 2, 4), px_box(2, 0, 2.3, 1), px_box(2.3, 0, 3, 1), px_box(3.7, 0, 4, 4)],
    )


def test_type_fractions_by_hand():
    out, overlaps = resolve_overlaps(split_layer(), "type", TYPES)
    assert overlaps == {"G1": pytest.approx(0.0), "XG": pytest.approx(0.0)}
    fr = type_fractions(out, "type", TYPES, GRID)
    assert fr.shape == (5, 4, 4) and fr.dtype == np.float32
    g1 = np.array([[1, 1, 0.3, 0], [1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0]])
    xg = np.array([[0, 0, 0.7, 0.3], [0, 0, 0, 0.3], [0, 0, 0, 0.3], [0, 0, 0, 0.3]])
    np.testing.assert_allclose(fr[0], g1, atol=1e-6)
    np.testing.assert_allclose(fr[3], xg, atol=1e-6)
    # G2, G3, EG have no polygons: zero everywhere
    assert not fr[[1, 2, 4]].any()
    # the split pixel (0, 2): 30 % G1 + 70 % XG = fully typed
    assert fr[0, 0, 2] == pytest.approx(0.3, abs=1e-6)
    assert fr[3, 0, 2] == pytest.approx(0.7, abs=1e-6)
    total = fr.sum(axis=0)
    assert total[0, 2] == pytest.approx(1.0, abs=1e-6)
    assert (total <= 1.0 + 1e-6).all()
    # typed area on the grid: G1 8 px + 0.3 = 8.3 px; XG 0.7 + 4 × 0.3 = 1.9 px (× 100 m²)
    assert fr[0].sum() * 100 == pytest.approx(830.0, abs=1e-3)
    assert fr[3].sum() * 100 == pytest.approx(190.0, abs=1e-3)


def test_type_fractions_sum_at_most_one_after_resolving_overlaps():
    # Three types piled on the same pixels; after resolve_overlaps no pixel exceeds 1.
    gdf = typed(["EG", "XG", "G1"], [px_box(0, 0, 4, 4), px_box(0.5, 0.5, 3.5, 3.5), px_box(1.25, 1.25, 2.75, 2.75)])
    out, overlaps = resolve_overlaps(gdf, "type", TYPES)
    fr = type_fractions(out, "type", TYPES, GRID)
    total = fr.sum(axis=0)
    assert (total <= 1.0 + 1e-6).all()
    np.testing.assert_allclose(total, 1.0, atol=1e-6)  # EG fills whatever G1 and XG leave
    # G1 = 1.5 × 1.5 px = 2.25 px; XG = 3 × 3 - 2.25 = 6.75 px; EG = 16 - 9 = 7 px
    assert fr[0].sum() == pytest.approx(2.25, abs=1e-5)
    assert fr[3].sum() == pytest.approx(6.75, abs=1e-5)
    assert fr[4].sum() == pytest.approx(7.0, abs=1e-5)
    # overlaps given away: XG 2.25 px × 100 m² = 225 m²; EG 900 m² (0.0225 and 0.09 ha)
    assert overlaps["XG"] == pytest.approx(0.0225)
    assert overlaps["EG"] == pytest.approx(0.09)


@settings(max_examples=30, deadline=None)
@given(st.lists(
    st.tuples(st.sampled_from(TYPES), st.floats(0, 3), st.floats(0, 3), st.floats(0.2, 2), st.floats(0.2, 2)),
    min_size=1, max_size=5))
def test_fractions_never_exceed_one_and_match_polygon_area(polys):
    # Property: whatever the pile of typed boxes, after resolve_overlaps each pixel's type
    # fractions add to at most 1, and the typed area on the grid equals the merged polygons' area.
    gdf = typed([t for t, *_ in polys], [px_box(c, r, min(c + w, 4), min(r + h, 4)) for _, c, r, w, h in polys])
    out, _ = resolve_overlaps(gdf, "type", TYPES)
    fr = type_fractions(out, "type", TYPES, GRID)
    assert (fr.sum(axis=0) <= 1.0 + 1e-5).all()
    union_px = gdf.geometry.union_all().area / 100.0  # m² -> 10 m pixels
    assert float(fr.sum(dtype=np.float64)) == pytest.approx(union_px, abs=1e-4)


# ----------------------------------------------------------------------------- land-cover rasters


def _landcover(tmp_path, classes, crs="EPSG:32651", res=5.0, nodata=0):
    import rasterio
    from rasterio.transform import from_origin

    path = tmp_path / "landcover.tif"
    with rasterio.open(path, "w", driver="GTiff", width=classes.shape[1], height=classes.shape[0], count=1, dtype="uint8",
                       crs=crs, transform=from_origin(0, 20, res, res), nodata=nodata) as dst:
        dst.write(classes.astype("uint8"), 1)
    return path


def test_landcover_raster_gives_exact_fractions_through_polygons(tmp_path):
    from greensink import io
    from greensink.grid import Grid
    from greensink.types import check_classes_mapped, landcover_polygons, read_class_table

    # 5 m classes under a 2 x 2 grid of 10 m pixels:
    #   1 1 2 2      pixel (0,0): 1,1,1,2 -> G1 0.75, XG 0.25   pixel (0,1): 2,2,2,2 -> XG 1
    #   1 2 2 2
    #   3 3 1 1      pixel (1,0): 3,3,3,3 -> ignored: 0         pixel (1,1): 1,1,1,0(nodata) -> G1 0.75
    #   3 3 1 0
    classes = np.array([[1, 1, 2, 2], [1, 2, 2, 2], [3, 3, 1, 1], [3, 3, 1, 0]])
    path = _landcover(tmp_path, classes)
    grid = Grid.from_bounds((0, 0, 20, 20), 10, "EPSG:32651")
    table = pd.DataFrame({"class": ["1", "2", "3"], "type": ["G1", "XG", "ignore"]})
    mapping = read_class_table(table, TYPES, "classes.csv")
    arr, transform, crs, nodata = io.read_window_over(path, grid.bounds, grid.crs)
    assert check_classes_mapped(arr, nodata, mapping, "lc.tif") == {1: 6, 2: 5, 3: 4}
    polys = landcover_polygons(arr, transform, crs, mapping, nodata)
    typed, _ = resolve_overlaps(polys, "type", TYPES)
    fr = type_fractions(typed, "type", TYPES, grid)
    g1, xg = fr[TYPES.index("G1")], fr[TYPES.index("XG")]
    np.testing.assert_allclose(g1, [[0.75, 0.0], [0.0, 0.75]], atol=1e-6)
    np.testing.assert_allclose(xg, [[0.25, 1.0], [0.0, 0.0]], atol=1e-6)


def test_landcover_class_missing_from_the_table_is_named_with_its_count():
    from greensink.types import check_classes_mapped

    classes = np.array([[1, 9], [9, 0]])
    with pytest.raises(InputDataError, match=r"class\(es\) 9 \(2 pixels\).*'ignore'"):
        check_classes_mapped(classes, 0, {1: "G1"}, "lc.tif")


def test_class_table_with_unknown_type_or_duplicate_class_is_refused():
    from greensink.types import read_class_table

    bad = pd.DataFrame({"class": ["10", "10", "x"], "type": ["G1", "G9", "G2"]})
    with pytest.raises(InputDataError) as err:
        read_class_table(bad, TYPES, "classes.csv")
    text = str(err.value)
    assert "G9" in text and "listed twice" in text and "'x'" in text
