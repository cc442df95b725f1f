"""Comparability of two years' products (issue 12 item 7): a change across sensors or harmonisation
settings is refused (default) or flagged, never differenced silently.

The scenes tables are written by hand as rule ingest writes them (results/{year}/ingest/scenes.json with
scene records and, from this version, ``products``); the profiles are greensink's built-in ones, whose
scale and offset are those of the sensors' product guides (Sentinel-2 L2A DN/10000, Landsat C2 L2
DN x 0.0000275 - 0.2).
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from greensink import comparability
from greensink.ingest import resolve_profiles

S2 = {"scene_id": "S2A_20230601", "sensor": "sentinel2-l2a", "scale": 1e-4, "offset": -0.1}
S2_OLD = {"scene_id": "S2A_20210601", "sensor": "sentinel2-l2a", "scale": 1e-4, "offset": 0.0}  # baseline < 04.00
LANDSAT = {"scene_id": "LC09_20240610", "sensor": "landsat-c2-l2", "scale": 2.75e-5, "offset": -0.2}


def products(*scenes, profiles=None):
    return comparability.year_products(list(scenes), resolve_profiles(profiles))


def test_year_products_name_the_sensors_and_their_profiles_settings():
    rec = products(S2, LANDSAT, S2)
    assert rec["sensors"] == ["landsat-c2-l2", "sentinel2-l2a"]
    assert rec["harmonisation"]["landsat-c2-l2"] == {"scale": 2.75e-5, "offset": -0.2, "offset_rule": "none"}
    assert rec["harmonisation"]["sentinel2-l2a"] == {"scale": 1e-4, "offset": 0.0, "offset_rule": "sentinel2-baseline"}


def test_same_sensor_across_a_processing_baseline_is_comparable():
    # the offset of the two scenes differs (-0.1 after baseline 04.00, 0 before) but that is the profile's rule
    # applied to each scene's date: the harmonisation settings are the same, so the years are comparable
    rec = comparability.compare(products(S2_OLD), products(S2), 2021, 2023)
    assert rec["comparable"] is True and rec["note"] == ""


def test_different_sensors_are_refused_by_default_and_flagged_on_request():
    rec = comparability.compare(products(S2), products(LANDSAT), 2023, 2024)
    assert rec["comparable"] is False
    assert rec["note"] == "sensors differ: 2023 sentinel2-l2a; 2024 landsat-c2-l2"
    with pytest.raises(comparability.IncompatibleProductsError) as err:
        comparability.check(rec, "refuse")
    msg = str(err.value)
    assert "change 2023-2024" in msg and "sentinel2-l2a" in msg and "change.incompatible: flag" in msg
    flagged = comparability.check(rec, "flag")
    assert flagged["mode"] == "flag" and flagged["comparable"] is False
    table = comparability.add_columns(pd.DataFrame({"zone_id": ["a", "b"], "sink_t_yr": [1.0, -2.0]}), flagged)
    assert table["comparable"].tolist() == [False, False]
    assert table["comparability_note"].tolist() == [rec["note"]] * 2
    assert table["sink_t_yr"].tolist() == [1.0, -2.0]  # the change itself is left as computed


def test_a_custom_profile_with_another_scale_is_not_comparable():
    # a user profile over the built-in Landsat one, changing only its scale (e.g. reflectance x 10000 products)
    custom = products(LANDSAT, profiles={"landsat-c2-l2": {"scale": 1e-4, "offset": 0.0}})
    rec = comparability.compare(products(LANDSAT), custom, 2023, 2024)
    assert rec["comparable"] is False
    assert rec["note"] == ("harmonisation of landsat-c2-l2 differs between 2023 and 2024: scale 2.75e-05 -> 0.0001, "
                           "offset -0.2 -> 0.0")


def test_unknown_mode_is_a_clear_error():
    with pytest.raises(comparability.GreensinkError, match="change.incompatible must be one of"):
        comparability.check(comparability.compare(products(S2), products(S2), 2023, 2024), "ignore")


def test_run_comparability_reads_two_scenes_tables(tmp_path):
    """Rule comparability's runner on two scenes tables of different sensors: refused, or flagged to a record;
    a table without products (an older greensink's) takes its scenes' sensors with the built-in profiles."""
    a, b, out = tmp_path / "2023.json", tmp_path / "2024.json", tmp_path / "comparability.json"
    a.write_text(json.dumps({"year": 2023, "scenes": [S2], "products": products(S2)}))
    b.write_text(json.dumps({"year": 2024, "scenes": [LANDSAT]}))  # no products: an older record
    with pytest.raises(comparability.IncompatibleProductsError):
        comparability.run_comparability(str(a), str(b), str(out), mode="refuse")
    assert not out.exists()
    rec = comparability.run_comparability(str(a), str(b), str(out), mode="flag")
    assert json.loads(out.read_text())["comparable"] is False and rec["years"] == [2023, 2024]
    assert rec["products"]["2024"]["sensors"] == ["landsat-c2-l2"]
    c = tmp_path / "2025.json"
    c.write_text(json.dumps({"year": 2025, "scenes": [S2, S2_OLD], "products": products(S2, S2_OLD)}))
    assert comparability.run_comparability(str(a), str(c), str(out), mode="refuse")["comparable"] is True
