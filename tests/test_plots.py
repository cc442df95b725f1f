"""Tests of greensink.plots: field plots checked, located on the grid and sampled.

The hand grid is 6 × 6 pixels of 10 m in EPSG:32651 with its top-left corner at
(X0, Y1) = (500 000, 3 500 060); the centre of pixel (row, col) is
(X0 + 10 col + 5, Y1 - 10 row - 5).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer
from shapely.geometry import Point, box

from greensink.errors import InputDataError
from greensink.grid import Grid
from greensink.plots import prepare_plots, sample

CRS = "EPSG:32651"
X0, Y0, Y1 = 500_000.0, 3_500_000.0, 3_500_060.0
GRID = Grid.from_bounds((X0, Y0, X0 + 60, Y1), 10, CRS)
TYPES = ["G1", "G2", "G3", "XG", "EG"]
CFG = {"id_column": "pid", "carbon_column": "c", "type_column": "kind", "year_column": "yr"}


def centre(row: int, col: int) -> tuple[float, float]:
    return X0 + 10 * col + 5, Y1 - 10 * row - 5


def plots(geoms: list, crs: str | None = CRS, **overrides) -> gpd.GeoDataFrame:
    n = len(geoms)
    cols = {"pid": [f"p{i + 1}" for i in range(n)], "c": [10.0] * n, "kind": ["G1"] * n, "yr": [2023] * n}
    cols.update(overrides)
    return gpd.GeoDataFrame(cols, geometry=geoms, crs=crs)


def test_grid_is_the_hand_grid():
    assert GRID.shape == (6, 6) and GRID.bounds == (X0, Y0, X0 + 60, Y1)


def test_point_at_pixel_centre_gets_its_row_and_col():
    # (2, 3): centre (X0 + 35, Y1 - 25); (0, 0) and (5, 5) are the corner pixels.
    gdf = plots([Point(*centre(2, 3)), Point(*centre(0, 0)), Point(*centre(5, 5))],
                kind=["G1", "XG", "EG"], yr=[2023, 2024, 2023], c=[12.5, "n/a", 0])
    out = prepare_plots(gdf, CFG, TYPES, GRID, "plots.gpkg")
    assert list(out.columns) == ["plot_id", "type", "year", "carbon_t_ha", "x_m", "y_m", "row", "col"]
    assert out["plot_id"].tolist() == ["p1", "p2", "p3"]
    assert out["type"].tolist() == ["G1", "XG", "EG"]
    assert out["year"].tolist() == [2023, 2024, 2023]
    assert out["year"].dtype.kind == "i"
    assert out["carbon_t_ha"].tolist() == [12.5, "n/a", 0]  # as read; greensink.model checks numbers
    assert out["x_m"].tolist() == [X0 + 35, X0 + 5, X0 + 55]
    assert out["y_m"].tolist() == [Y1 - 25, Y1 - 5, Y1 - 55]
    assert out["row"].tolist() == [2, 0, 5]
    assert out["col"].tolist() == [3, 0, 5]


def test_points_in_another_crs_are_reprojected():
    to_ll = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    lon, lat = to_ll.transform(*centre(4, 1))
    out = prepare_plots(plots([Point(lon, lat)], crs="EPSG:4326"), CFG, TYPES, GRID, "plots.gpkg")
    assert out["x_m"].iloc[0] == pytest.approx(X0 + 15, abs=1e-3)
    assert out["y_m"].iloc[0] == pytest.approx(Y1 - 45, abs=1e-3)
    assert (out["row"].iloc[0], out["col"].iloc[0]) == (4, 1)


def test_polygon_plots_use_the_centroid():
    # A 6 m × 6 m square centred on pixel (1, 4)'s centre (X0 + 45, Y1 - 15), and a point.
    cx, cy = centre(1, 4)
    gdf = plots([box(cx - 3, cy - 3, cx + 3, cy + 3), Point(*centre(3, 3))])
    out = prepare_plots(gdf, CFG, TYPES, GRID, "plots.gpkg")
    assert out["x_m"].tolist() == pytest.approx([cx, X0 + 35])
    assert out["y_m"].tolist() == pytest.approx([cy, Y1 - 35])
    assert out["row"].tolist() == [1, 3] and out["col"].tolist() == [4, 3]


def test_every_problem_is_listed_in_one_error():
    gdf = plots(
        [Point(*centre(0, 0)), Point(*centre(1, 1)), Point(X0 + 75, Y1 - 5), Point(*centre(2, 2))],
        pid=["a", "b", "far", "d"], kind=["G1", "ZZ", "G1", "XG"], yr=[2023, 2023, 2023, "20x3"],
    )
    with pytest.raises(InputDataError) as err:
        prepare_plots(gdf, CFG, TYPES, GRID, "plots.gpkg")
    msg = str(err.value)
    assert msg.startswith("3 problem(s) with the plots")
    assert "plots.gpkg row 2 (plot 'b'): kind must be one of ['G1', 'G2', 'G3', 'XG', 'EG']. Got 'ZZ'" in msg
    assert "plots.gpkg row 4 (plot 'd'): yr must be a year. Got '20x3'" in msg
    # x = X0 + 75 is right of the grid (it ends at X0 + 60)
    assert "plots.gpkg row 3 (plot 'far'): location (500075.0, 3500055.0) is outside the analysis area" in msg
    assert "row 1" not in msg


def test_plot_left_of_or_below_grid_is_outside():
    gdf = plots([Point(X0 - 5, Y1 - 5), Point(X0 + 5, Y0 - 5)], pid=["left", "below"])
    with pytest.raises(InputDataError, match=r"2 problem\(s\)") as err:
        prepare_plots(gdf, CFG, TYPES, GRID, "plots.gpkg")
    assert "plot 'left'" in str(err.value) and "plot 'below'" in str(err.value)


def test_missing_type_is_reported_not_crashing():
    gdf = plots([Point(*centre(0, 0)), Point(*centre(1, 1))], kind=["G1", None])
    with pytest.raises(InputDataError, match=r"row 2 \(plot 'p2'\): kind must be one of"):
        prepare_plots(gdf, CFG, TYPES, GRID, "plots.gpkg")


def test_missing_column_and_missing_crs():
    gdf = plots([Point(*centre(0, 0))]).drop(columns=["yr"])
    with pytest.raises(InputDataError, match=r"column\(s\) not found: year_column='yr'"):
        prepare_plots(gdf, CFG, TYPES, GRID, "plots.gpkg")
    with pytest.raises(InputDataError, match=r"plots\.gpkg: the layer has no CRS"):
        prepare_plots(plots([Point(*centre(0, 0))], crs=None), CFG, TYPES, GRID, "plots.gpkg")


def test_sample_returns_the_raster_values():
    raster = np.arange(36, dtype=np.float32).reshape(6, 6)  # value = 6 row + col
    out = prepare_plots(plots([Point(*centre(2, 3)), Point(*centre(5, 0))]), CFG, TYPES, GRID, "plots.gpkg")
    values = sample(raster, out["row"], out["col"])
    assert values.tolist() == [15.0, 30.0]  # 6·2 + 3, 6·5 + 0
    assert sample(raster, np.array([0, 1]), np.array([5, 1])).tolist() == [5.0, 7.0]


def test_plots_in_mixed_pixels_are_screened_with_a_reason_not_dropped_silently():
    from greensink.plots import own_type_share, screen_mixed

    # 2 types on a 1 x 3 grid: pixel 0 is all G1, pixel 1 is 30 % G1 / 70 % XG, pixel 2 is 40 % XG
    fractions = np.zeros((2, 1, 3), dtype=np.float32)
    fractions[0, 0, :2] = [1.0, 0.3]
    fractions[1, 0, 1:] = [0.7, 0.4]
    plots = pd.DataFrame({"plot_id": ["a", "b", "c", "d"], "type": ["G1", "G1", "XG", "XG"],
                          "row": [0, 0, 0, 0], "col": [0, 1, 1, 2]})
    share = own_type_share(plots, fractions, ["G1", "XG"])
    np.testing.assert_allclose(share, [1.0, 0.3, 0.7, 0.4], rtol=1e-6)
    used, left_out = screen_mixed(plots, share, 0.5)
    assert used["plot_id"].tolist() == ["a", "c"]
    assert left_out["plot_id"].tolist() == ["b", "d"]
    assert left_out["screened"].iloc[0] == "only 30% of the plot's pixel is type G1 (< 50%)"


def test_footprint_means_over_a_circle_straddling_four_pixels():
    from greensink.plots import footprint_matrix, own_type_share_footprints, sample_footprints, screen_mixed

    # plot a at the corner shared by pixels (1,1) (1,2) (2,1) (2,2): a 10 m circle covers a quarter in each
    # (area pi*100 = 314.2 m² of 4 x 100 m², 78.5 % of each), so its mean is the plain mean of the four
    # values: (7 + 8 + 13 + 14) / 4 = 10.5. Plot b sits at the centre of pixel (4,4) with a 3 m circle,
    # inside that pixel: its value 28.
    raster = np.arange(36, dtype=np.float32).reshape(6, 6)
    plots = pd.DataFrame({"plot_id": ["a", "b"], "type": ["G1", "XG"],
                          "x_m": [X0 + 20.0, centre(4, 4)[0]], "y_m": [Y1 - 20.0, centre(4, 4)[1]]})
    m = footprint_matrix(plots, 10.0, GRID)
    np.testing.assert_allclose(m[0].sum(), np.pi, rtol=2e-3)  # 64-gon area in pixel units (100 m²)
    np.testing.assert_allclose(sample_footprints(m, raster)[0], 10.5, rtol=1e-9)
    small = footprint_matrix(plots, 3.0, GRID)
    np.testing.assert_allclose(sample_footprints(small, raster), [10.5, 28.0], rtol=1e-9)
    # NaN pixels are left out: with (1,1) missing the mean is (8 + 13 + 14) / 3
    holed = raster.copy()
    holed[1, 1] = np.nan
    np.testing.assert_allclose(sample_footprints(m, holed)[0], 35 / 3, rtol=1e-9)
    # own-type share over the footprint: G1 covers pixels (1,1) and (1,2) fully and nothing else -> 0.5
    fractions = np.zeros((2, 6, 6), dtype=np.float32)
    fractions[0, 1, 1:3] = 1.0
    fractions[1, 4, 4] = 0.6
    share = own_type_share_footprints(plots, small, fractions, ["G1", "XG"])
    np.testing.assert_allclose(share, [0.5, 0.6], rtol=1e-6)
    used, left_out = screen_mixed(plots, share, 0.55, "footprint")
    assert left_out["screened"].tolist() == ["only 50% of the plot's footprint is type G1 (< 55%)"]
    with pytest.raises(InputDataError, match="radius_m must be > 0"):
        footprint_matrix(plots, 0, GRID)
