"""Tests of greensink.change (yearly sink per pixel and zone) and greensink.targets
(targets file and per-zone evaluation). Expectations are worked out in the comments.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from shapely.geometry import box

from greensink.aggregate import zone_draw_sums
from greensink.carbon import pixel_function
from greensink.change import change_table, difference_function
from greensink.errors import ConfigError
from greensink.targets import evaluate, read_targets

CRS = "EPSG:32651"
NAN = np.nan

# --- difference_function -------------------------------------------------------------------------


def const_fn(est: list[float], draws: list[list[float]]):
    e, d = np.asarray(est), np.asarray(draws)
    return lambda idx: (e[idx], d[:, idx])


def test_difference_function_divides_by_years_and_pairs_draws():
    fn0 = const_fn([1.0, 2.0, NAN], [[1.0, 2.0, NAN], [3.0, 4.0, NAN]])
    fn1 = const_fn([5.0, 10.0, 3.0], [[3.0, 6.0, 3.0], [9.0, 8.0, 3.0]])
    est, draws = difference_function(fn0, fn1, 2)(np.arange(3))
    # (5 − 1)/2 = 2, (10 − 2)/2 = 4, NaN stays NaN (no observation in the first year)
    np.testing.assert_allclose(est, [2.0, 4.0, NAN])
    # draw k of year 1 minus draw k of year 0: (3 − 1)/2, (6 − 2)/2; (9 − 3)/2, (8 − 4)/2
    np.testing.assert_allclose(draws, [[1.0, 2.0, NAN], [3.0, 2.0, NAN]])


@pytest.mark.parametrize("years", [0, -1])
def test_difference_function_refuses_non_positive_years(years):
    fn = const_fn([1.0], [[1.0]])
    with pytest.raises(ValueError, match="years between stocks must be > 0"):
        difference_function(fn, fn, years)


# --- change_table --------------------------------------------------------------------------------


def zones() -> gpd.GeoDataFrame:
    # zone order b, a, c on purpose; areas 2 ha (100 m × 200 m), 1 ha, 0.5 ha
    return gpd.GeoDataFrame(
        {"zone_id": ["b", "a", "c"], "parent_id": ["X", "X", "X"], "level": ["parcel"] * 3, "name": ["B", "A", "C"]},
        geometry=[box(0, 0, 100, 200), box(100, 0, 200, 100), box(200, 0, 300, 50)], crs=CRS)


def year_table(carbon: dict, green: dict) -> pd.DataFrame:
    ids = ["a", "b", "c"]  # not the order of zones()
    area = {"a": 1.0, "b": 2.0, "c": 0.5}
    return pd.DataFrame({"zone_id": ids, "area_ha": [area[i] for i in ids],
                         "carbon_t": [carbon[i] for i in ids], "green_area_ha": [green[i] for i in ids]})


def test_change_table_by_hand():
    t0 = year_table({"a": 10.0, "b": 40.0, "c": 5.0}, {"a": 0.5, "b": 1.5, "c": 0.2})
    t1 = year_table({"a": 16.0, "b": 36.0, "c": 5.0}, {"a": 0.75, "b": 1.0, "c": 0.2})
    # 2023 -> 2025 (2 years), zones in the order b, a, c:
    # sink b = (36 − 40)/2 = −2, a = (16 − 10)/2 = 3, c = 0 t C/yr; three draws each
    est = np.array([-2.0, 3.0, 0.0])
    draws = np.array([[-3.0, -2.0, -1.5], [2.0, 3.0, 5.0], [-0.5, 0.0, 0.5]])
    out = change_table(zones(), t0, t1, 2023, 2025, (est, draws))
    assert out["zone_id"].tolist() == ["b", "a", "c"]  # the zones argument's order
    assert out["name"].tolist() == ["B", "A", "C"] and out.crs == CRS
    assert out.geometry.iloc[1].equals(box(100, 0, 200, 100))
    assert out["year_from"].tolist() == [2023] * 3 and out["year_to"].tolist() == [2025] * 3
    assert out["carbon_t_from"].tolist() == [40.0, 10.0, 5.0]
    assert out["carbon_t_to"].tolist() == [36.0, 16.0, 5.0]
    np.testing.assert_allclose(out["sink_t_yr"], (out["carbon_t_to"] - out["carbon_t_from"]) / 2)
    np.testing.assert_allclose(out["sink_t_yr"], [-2.0, 3.0, 0.0])
    # 90 % bounds of three draws d0 ≤ d1 ≤ d2: d0 + 0.1 (d1 − d0), d1 + 0.9 (d2 − d1)
    # b: −3 + 0.1 = −2.9, −2 + 0.45 = −1.55; a: 2.1, 4.8; c: −0.45, 0.45
    np.testing.assert_allclose(out["sink_t_yr_lo"], [-2.9, 2.1, -0.45])
    np.testing.assert_allclose(out["sink_t_yr_hi"], [-1.55, 4.8, 0.45])
    assert (out["sink_t_yr_lo"] <= out["sink_t_yr"]).all() and (out["sink_t_yr"] <= out["sink_t_yr_hi"]).all()
    # per ha: −2/2 = −1, 3/1 = 3, 0/0.5 = 0 t C/ha/yr; CO2e × 44/12
    np.testing.assert_allclose(out["sink_t_ha_yr"], [-1.0, 3.0, 0.0])
    np.testing.assert_allclose(out["sink_co2e_t_yr"], [-2 * 44 / 12, 3 * 44 / 12, 0.0])
    # green area: b 1.5 -> 1.0 (−0.5, a loss), a 0.5 -> 0.75 (+0.25), c unchanged (0: no net loss)
    np.testing.assert_allclose(out["green_area_change_ha"], [-0.5, 0.25, 0.0])
    assert out["no_net_loss"].tolist() == [False, True, True]


def test_change_table_interval_contains_estimate():
    # If the draws sit all above the estimate, the lower bound is pulled down to it.
    t = year_table({"a": 1.0, "b": 1.0, "c": 1.0}, {"a": 1.0, "b": 1.0, "c": 1.0})
    out = change_table(zones(), t, t, 2023, 2024, (np.zeros(3), np.ones((3, 4))))
    assert out["sink_t_yr_lo"].tolist() == [0.0, 0.0, 0.0]
    assert out["sink_t_yr_hi"].tolist() == [1.0, 1.0, 1.0]


def test_change_table_single_draw_uses_estimate():
    t = year_table({"a": 1.0, "b": 1.0, "c": 1.0}, {"a": 1.0, "b": 1.0, "c": 1.0})
    est = np.array([0.5, -0.5, 0.0])
    out = change_table(zones(), t, t, 2023, 2024, (est, np.full((3, 1), 9.0)))
    assert out["sink_t_yr_lo"].tolist() == est.tolist() == out["sink_t_yr_hi"].tolist()


def test_sink_from_paired_pixel_draws():
    # One type on a 1 × 2 grid, fully typed, NDVI 0.4 then 0.6 over 2 years. C = a + 10·NDVI with
    # draws a = 1, 2, 0 in both years (paired): per pixel (7 − 5)/2 = 1 t C/ha/yr in every draw,
    # so the zone interval collapses to the estimate: the common uncertainty cancels.
    model = {"types": {"G1": {"form": "linear", "params": {"a": 1.0, "b": 10.0},
                              "bootstrap": [[1.0, 10.0], [2.0, 10.0], [0.0, 10.0]]}}}
    frac = np.ones((1, 1, 2), dtype=np.float32)
    fn0 = pixel_function(model, ["G1"], frac, np.array([[0.4, 0.4]], dtype=np.float32))
    fn1 = pixel_function(model, ["G1"], frac, np.array([[0.6, 0.6]], dtype=np.float32))
    matrix = sp.csr_matrix(np.array([[1.0, 0.5]]))  # one zone: pixel 0 and half of pixel 1
    [(est, draws)] = zone_draw_sums([matrix], difference_function(fn0, fn1, 2), np.arange(2), 0.01)
    # (1 + 0.5) px × 1 t C/ha/yr × 0.01 ha = 0.015 t C/yr
    np.testing.assert_allclose(est, [0.015], rtol=1e-6)
    np.testing.assert_allclose(draws, [[0.015, 0.015, 0.015]], rtol=1e-6)


# --- targets -------------------------------------------------------------------------------------


def test_read_targets_missing_file_is_no_targets(tmp_path):
    assert read_targets(tmp_path / "absent.yaml") == []


def test_read_targets_reads_valid_file(tmp_path):
    path = tmp_path / "targets.yaml"
    path.write_text('targets:\n  - {level: city, indicator: green_coverage_pct, op: ">=", value: 40, label: "绿化覆盖率"}\n',
                    encoding="utf-8")
    assert read_targets(path) == [
        {"level": "city", "indicator": "green_coverage_pct", "op": ">=", "value": 40, "label": "绿化覆盖率"}]
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    assert read_targets(empty) == []


def test_read_targets_lists_every_problem_with_its_index(tmp_path):
    path = tmp_path / "targets.yaml"
    path.write_text(
        "targets:\n"
        '  - {level: city, indicator: green_coverage_pct, op: ">=", value: 40}\n'
        '  - {level: city, indicator: green_coverage_pct, op: "=>", value: 40}\n'
        '  - {level: city, indicator: green_coverage_pct, op: ">=", value: "forty"}\n'
        '  - {level: city, op: ">=", value: 40}\n'
        '  - {level: city, indicator: green_coverage_pct, op: ">=", value: yes}\n'
        "  - city\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        read_targets(path)
    msg = str(err.value)
    assert "targets[0]" not in msg
    assert "targets[1]: op must be one of ['>=', '>', '<=', '<']. Got '=>'" in msg
    assert "targets[2]: value must be a number. Got 'forty'" in msg
    assert "targets[3]: missing key 'indicator'" in msg
    assert "targets[4]: value must be a number. Got True" in msg  # YAML yes is a boolean, not 1
    assert "targets[5]: must be a mapping" in msg and "'city'" in msg
    assert str(path) in msg


def zone_values() -> pd.DataFrame:
    return pd.DataFrame({"zone_id": ["z1", "z2", "z3"], "name": ["一", "二", "三"],
                         "green_coverage_pct": [45.0, 30.0, NAN], "carbon_t": [1.0, 2.0, 3.0],
                         "notes": ["", "", ""]})


def test_evaluate_met_missed_gap_and_no_data():
    targets = [{"level": "block", "indicator": "green_coverage_pct", "op": ">=", "value": 40, "label": "绿化覆盖率 ≥ 40 %"}]
    out = evaluate({"block": zone_values()}, targets)
    assert list(out.columns) == ["level", "zone_id", "name", "indicator", "label", "op", "target", "value", "status", "gap"]
    assert out["zone_id"].tolist() == ["z1", "z2", "z3"]
    assert out["status"].tolist() == ["met", "missed", "no data"]
    # gap = value − target: 45 − 40 = +5 (met), 30 − 40 = −10 (the shortfall), NaN for no data
    assert out["gap"].iloc[0] == 5.0 and out["gap"].iloc[1] == -10.0 and math.isnan(out["gap"].iloc[2])
    assert math.isnan(out["value"].iloc[2])
    assert out["label"].tolist() == ["绿化覆盖率 ≥ 40 %"] * 3
    assert out["target"].tolist() == [40.0] * 3


def test_evaluate_other_operators_and_default_label():
    values = zone_values()
    out = evaluate({"block": values}, [
        {"level": "block", "indicator": "carbon_t", "op": "<=", "value": 2},
        {"level": "block", "indicator": "carbon_t", "op": ">", "value": 2},
        {"level": "block", "indicator": "carbon_t", "op": "<", "value": 2},
    ])
    assert out["status"].tolist() == ["met", "met", "missed", "missed", "missed", "met", "met", "missed", "missed"]
    assert out["gap"].tolist() == [-1.0, 0.0, 1.0] * 3
    assert out["label"].tolist() == ["carbon_t"] * 9


def test_evaluate_unknown_indicator_lists_usable_columns():
    with pytest.raises(ConfigError, match=r"indicator 'green_cover' is not a column of the block table") as err:
        evaluate({"block": zone_values()}, [{"level": "block", "indicator": "green_cover", "op": ">=", "value": 1}])
    msg = str(err.value)
    assert "green_coverage_pct" in msg and "carbon_t" in msg
    assert "notes" not in msg and "zone_id" not in msg


def test_evaluate_skips_levels_without_a_table():
    targets = [{"level": "district", "indicator": "green_coverage_pct", "op": ">=", "value": 40},
               {"level": "block", "indicator": "green_coverage_pct", "op": ">=", "value": 40}]
    out = evaluate({"block": zone_values()}, targets)
    assert out["level"].tolist() == ["block"] * 3
    empty = evaluate({}, targets)
    assert empty.empty and "status" in empty.columns


@pytest.mark.parametrize(("text", "expected"), [
    ("targets: [{level: city\n", "not valid YAML"),
    ("- level: city\n", "the top level must be a mapping of keys to values. Got a list"),
    ("targets: {level: city, indicator: green_coverage_pct, op: '>=', value: 40}\n",
     "targets: must be a list of targets (level, indicator, op, value). Got a dict"),
])
def test_read_targets_bad_file_names_it_and_the_fix(tmp_path, text, expected):
    path = tmp_path / "targets.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        read_targets(path)
    msg = str(err.value)
    assert msg.startswith(str(path)) and expected in msg
    assert "config/targets.yaml" in msg or "'- level: ...'" in msg  # the fix
