"""One comparison of a tiled run's zone tables with an untiled run's (tests/test_change_tiles.py,
tests/test_trend_tiles.py): the same columns in the same order, the geometry equal, every float column equal within
``rtol`` with NaN exactly where NaN (empty is not zero), every other column equal."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd


def assert_tables_close(untiled: gpd.GeoDataFrame, tiled: gpd.GeoDataFrame, what: str, rtol: float = 1e-12,
                        atol: float = 1e-12, floor: float = 0.0) -> float:
    """Assert ``tiled`` equals ``untiled`` as the module doc says; returns the largest relative difference of the
    float values whose magnitude is above ``floor`` (0: every nonzero value)."""
    a, b = untiled, tiled
    assert list(a.columns) == list(b.columns) and len(a) == len(b), what
    worst = 0.0
    for col in a.columns:
        if col == "geometry":
            assert a.geometry.equals(b.geometry), what
        elif pd.api.types.is_float_dtype(a[col]):
            x, y = a[col].to_numpy(float), b[col].to_numpy(float)
            np.testing.assert_array_equal(np.isnan(x), np.isnan(y), err_msg=f"{what} {col}")
            np.testing.assert_allclose(y, x, rtol=rtol, atol=atol, err_msg=f"{what} {col}")
            ok = np.isfinite(x) & (np.abs(x) > floor)
            if ok.any():
                worst = max(worst, float(np.max(np.abs(y[ok] - x[ok]) / np.abs(x[ok]))))
        else:
            pd.testing.assert_series_equal(b[col], a[col], check_names=False, obj=f"{what} {col}")
    return worst
