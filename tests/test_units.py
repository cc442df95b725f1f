"""Tests of greensink.units: the conversions by hand, on numbers and arrays."""

from __future__ import annotations

import numpy as np

from greensink.units import CO2_PER_C, M2_PER_HA, c_to_co2e, format_m, ha_to_m2, kg_to_t, m2_to_ha


def test_area_conversions_by_hand():
    assert M2_PER_HA == 10_000.0  # 100 m × 100 m
    assert m2_to_ha(10_000) == 1.0 and m2_to_ha(100.0) == 0.01  # a 10 m pixel is 0.01 ha
    assert ha_to_m2(2.5) == 25_000.0
    np.testing.assert_array_equal(m2_to_ha(np.array([0.0, 5_000.0, np.nan])), [0.0, 0.5, np.nan])
    assert ha_to_m2(m2_to_ha(1234.5)) == 1234.5


def test_carbon_to_co2e_is_the_molar_mass_ratio():
    assert c_to_co2e(12.0) == 44.0  # 12 t C -> 44 t CO2
    assert CO2_PER_C == 44.0 / 12.0
    np.testing.assert_allclose(c_to_co2e(np.array([3.0, -6.0])), [11.0, -22.0])


def test_metres_are_written_without_exponents():
    assert format_m(690015.0) == "690015" and format_m(3520815.5) == "3520815.5"
    assert format_m(12.5) == "12.5" and format_m(-2.5) == "-2.5" and format_m(1e-7) == "0"


def test_kg_to_t_by_hand():
    assert kg_to_t(1500.0) == 1.5  # 1 t = 1000 kg
    assert kg_to_t(np.array([0.0, 250.0])).tolist() == [0.0, 0.25]
