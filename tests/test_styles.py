"""QGIS style files: well-formed XML with the limits and colours asked for."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from greensink.styles import BROWN_GREEN, GREENS, raster_qml, robust_max, vector_qml


def test_robust_max_ignores_nan_and_outliers():
    values = np.r_[np.arange(100, dtype=float), np.nan, 1e9]  # 101 finite values, one huge
    assert robust_max(values, 99) < 1e6
    assert robust_max(np.array([np.nan])) == 1.0
    assert robust_max(np.zeros(5)) == 1.0  # a zero maximum would make an empty ramp


def test_raster_style_ramps_between_the_limits():
    root = ET.fromstring(raster_qml(0.0, 40.0, GREENS, "t C/ha").split("\n", 1)[1])
    shader = root.find(".//colorrampshader")
    assert float(shader.get("minimumValue")) == 0 and float(shader.get("maximumValue")) == 40
    items = shader.findall("item")
    assert [float(i.get("value")) for i in items] == [0, 10, 20, 30, 40]  # five stops, equal steps
    assert [i.get("color") for i in items] == list(GREENS)


def test_vector_style_has_open_ended_equal_classes_on_the_column():
    root = ET.fromstring(vector_qml("sink_t_ha_yr", -2.0, 2.0, BROWN_GREEN, "t C/ha/yr").split("\n", 1)[1])
    renderer = root.find("renderer-v2")
    assert renderer.get("attr") == "sink_t_ha_yr" and renderer.get("type") == "graduatedSymbol"
    ranges = renderer.findall("ranges/range")
    bounds = [(float(r.get("lower")), float(r.get("upper"))) for r in ranges]
    # 5 classes of width 0.8 over [-2, 2]; the outer ones open-ended so every value is drawn
    assert bounds[1:4] == [(pytest.approx(-1.2), pytest.approx(-0.4)), (pytest.approx(-0.4), pytest.approx(0.4)),
                           (pytest.approx(0.4), pytest.approx(1.2))]
    assert bounds[0][0] < -1e20 and bounds[-1][1] > 1e20
    assert len(renderer.findall("symbols/symbol")) == 5
