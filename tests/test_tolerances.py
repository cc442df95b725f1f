"""Area warnings and "no net loss" use a tolerance of a fraction of a pixel, tested just below and just above it.

Hand cases in EPSG:32651 (metres). At 10 m pixels the area tolerance is 0.1 × 100 m² = 10 m²
(greensink.geometry.area_tolerance_m2); each case has 9 m² (below) and 11 m² (above).
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from greensink.change import change_table
from greensink.geometry import area_tolerance_m2
from greensink.types import resolve_overlaps
from greensink.zones import nest_levels, prepare_level

CRS = "EPSG:32651"
X0, Y0 = 500_000.0, 3_500_000.0


def level(name: str, boxes: dict[str, tuple[float, float, float, float]]) -> gpd.GeoDataFrame:
    """A zone level of boxes given in metres relative to (X0, Y0)."""
    geoms = [box(X0 + a, Y0 + b, X0 + c, Y0 + d) for a, b, c, d in boxes.values()]
    gdf = gpd.GeoDataFrame({"zid": list(boxes)}, geometry=geoms, crs=CRS)
    return prepare_level(gdf, name, "zid", CRS, f"{name}.gpkg")[0]


CITY = {"C": (0, 0, 100, 100)}  # 1 ha


def nest(districts: dict, caplog, resolution_m: float = 10.0):
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="greensink.zones"):
        _, table = nest_levels([level("city", CITY), level("district", districts)], resolution_m)
    return table.iloc[0], [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_area_tolerance_is_a_tenth_of_a_pixel():
    assert area_tolerance_m2(10) == pytest.approx(10.0)
    assert area_tolerance_m2(30) == pytest.approx(90.0)
    assert area_tolerance_m2(0.5) == pytest.approx(0.025)


@pytest.mark.parametrize(("districts", "column", "area_m2"), [
    # overlap: d1 reaches 0.09 m (9 m²) or 0.11 m (11 m²) into d2 over the 100 m height
    ({"d1": (0, 0, 50.09, 100), "d2": (50, 0, 100, 100)}, "overlap_ha", 9.0),
    ({"d1": (0, 0, 50.11, 100), "d2": (50, 0, 100, 100)}, "overlap_ha", 11.0),
    # gap: a 0.09 m or 0.11 m strip between d1 and d2 is left uncovered
    ({"d1": (0, 0, 49.91, 100), "d2": (50, 0, 100, 100)}, "parent_gaps_ha", 9.0),
    ({"d1": (0, 0, 49.89, 100), "d2": (50, 0, 100, 100)}, "parent_gaps_ha", 11.0),
    # outside: d2 reaches 0.09 m or 0.11 m beyond the city's edge (share in the city 5000/5009 > 0.99)
    ({"d1": (0, 0, 50, 100), "d2": (50, 0, 100.09, 100)}, "outside_parents_ha", 9.0),
    ({"d1": (0, 0, 50, 100), "d2": (50, 0, 100.11, 100)}, "outside_parents_ha", 11.0),
])
def test_nesting_warns_only_above_a_tenth_of_a_pixel(caplog, districts, column, area_m2):
    row, warnings = nest(districts, caplog)
    assert row[column] * 1e4 == pytest.approx(area_m2, abs=1e-3)
    assert row["tolerance_ha"] * 1e4 == pytest.approx(10.0)
    above = area_m2 > 10.0
    assert bool(row["tiles_parents"]) is (not above)
    assert len(warnings) == int(above)
    if above:
        assert warnings[0].startswith("zones: district does not tile city: ")
        assert "(areas up to 10 m², 0.1 pixel, are tolerated)" in warnings[0]


def test_tolerance_follows_the_resolution(caplog):
    # 11 m² of overlap is a warning with 10 m pixels, not with 30 m pixels (tolerance 90 m²)
    districts = {"d1": (0, 0, 50.11, 100), "d2": (50, 0, 100, 100)}
    assert len(nest(districts, caplog, 10.0)[1]) == 1
    row, warnings = nest(districts, caplog, 30.0)
    assert warnings == [] and row["tiles_parents"] and row["tolerance_ha"] * 1e4 == pytest.approx(90.0)


def test_a_zone_straddles_only_with_more_than_the_tolerance_outside(caplog):
    # d2 is 0.59 m × 100 m (59 m²): 50 m² in the city, 9 m² outside (share 0.85 < 0.99) -> not a straddler;
    # at 0.61 m × 100 m, 11 m² outside -> a straddler
    below, warned_below = nest({"d1": (0, 0, 99.5, 100), "d2": (99.5, 0, 100.09, 100)}, caplog)
    assert below["straddling_zones"] == 0 and below["straddling_ids"] == "" and warned_below == []
    above, warned_above = nest({"d1": (0, 0, 99.5, 100), "d2": (99.5, 0, 100.11, 100)}, caplog)
    assert above["straddling_zones"] == 1 and above["straddling_ids"] == "d2"
    assert len(warned_above) == 1 and "1 zones straddle parents" in warned_above[0]


@pytest.mark.parametrize(("width_m", "warned"), [(0.09, False), (0.11, True)])
def test_greenspace_overlap_warns_only_above_the_tolerance(caplog, width_m, warned):
    # a G1 park and a G2 belt share a strip width_m × 100 m: 9 m² or 11 m²
    gdf = gpd.GeoDataFrame({"type": ["G1", "G2"]}, crs=CRS,
                           geometry=[box(X0, Y0, X0 + 50 + width_m, Y0 + 100), box(X0 + 50, Y0, X0 + 100, Y0 + 100)])
    with caplog.at_level(logging.INFO, logger="greensink.types"):
        _, overlaps = resolve_overlaps(gdf, "type", ["G1", "G2"], area_tolerance_m2(10))
    assert overlaps["G2"] * 1e4 == pytest.approx(width_m * 100, abs=1e-3)
    records = [r for r in caplog.records if "overlap earlier types" in r.getMessage()]
    assert len(records) == 1
    assert (records[0].levelno == logging.WARNING) is warned
    assert records[0].getMessage().startswith(f"greenspace: {width_m * 100:.6g} m² of type G2 overlap earlier types")


# --- "no net loss" of carbon-sink space ----------------------------------------------------------


def test_no_net_loss_tolerates_a_loss_up_to_half_a_pixel():
    # Tolerance 0.5 pixel of 10 m = 50 m² = 0.005 ha. Green-area change per zone:
    # a −0.17 m² (the case), b −49 m² (just below), c −51 m² (just above), d +20 m², e unknown
    ids = ["a", "b", "c", "d", "e"]
    change_m2 = {"a": -0.17, "b": -49.0, "c": -51.0, "d": 20.0, "e": float("nan")}
    zones = gpd.GeoDataFrame({"zone_id": ids, "parent_id": None, "level": "parcel", "name": ids},
                             geometry=[box(100 * i, 0, 100 * (i + 1), 100) for i in range(5)], crs=CRS)

    def table(green_ha):
        return pd.DataFrame({"zone_id": ids, "area_ha": 1.0, "carbon_t": 10.0, "green_area_ha": green_ha})

    t0 = table([0.5] * 5)
    t1 = table([0.5 + change_m2[i] / 1e4 for i in ids])
    sums = (np.zeros(5), np.zeros((5, 3)))
    tolerance_ha = 0.5 * 100 / 1e4
    out = change_table(zones, t0, t1, 2023, 2024, sums, no_net_loss_tolerance_ha=tolerance_ha)
    np.testing.assert_allclose(out["green_area_change_ha"] * 1e4, [-0.17, -49.0, -51.0, 20.0, np.nan], atol=1e-6)
    assert out["no_net_loss"].tolist() == [True, True, False, True, pd.NA]
    assert out["no_net_loss_tolerance_ha"].tolist() == [0.005] * 5
    # without a tolerance, every shrinkage is a loss, 0.17 m² included
    strict = change_table(zones, t0, t1, 2023, 2024, sums, no_net_loss_tolerance_ha=0.0)
    assert strict["no_net_loss"].tolist() == [False, False, False, True, pd.NA]
    with pytest.raises(ValueError, match="no_net_loss_tolerance_ha must be a number ≥ 0. Got -1"):
        change_table(zones, t0, t1, 2023, 2024, sums, no_net_loss_tolerance_ha=-1)
