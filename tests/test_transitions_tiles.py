"""Rule transitions tile by tile (tiles.size_px): the zone sums stream over the tiles with their tile coverage
(greensink.tiling.coverage_pieces) and the class rasters are written strip by strip; the outputs equal the
untiled run's (whole-grid coverage), and a small case is checked by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from shapely.geometry import box

from greensink import io
from greensink.transitions import run_transitions, transition_pairs
from test_zoning_tiles import (
    LEVELS,
    NAN,
    X0,
    Y0,
    assert_json_close,
    assert_tables_equal,
    city_and_blocks,
    grid,
    level_files,
)

YEARS = [2021, 2022, 2024]
TYPES = ["G1", "G2"]


def outputs(base: Path, years: list[int], typed: bool) -> dict:
    pairs = transition_pairs(years)
    return {"classes": base / "classes.tif", "types": [base / "greenspace_types.tif"] if typed else [],
            "csv": [base / f"{level}.csv" for level in LEVELS],
            "matrices": [base / f"matrix_{a}_{b}.csv" for a, b in pairs],
            "type_matrices": [base / f"greenspace_matrix_{a}_{b}.csv" for a, b in pairs] if typed else [],
            "summary": base / "transitions.json"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    """A 37 × 29 grid in tiles of 8 px, three years of random classes, carbon and two type fractions, with
    unobserved pixels (NaN class, NaN fractions) and unknown carbon."""
    tmp = tmp_path_factory.mktemp("transitions_tiles")
    rows, cols, size = 37, 29, 8
    g = grid(rows, cols)
    zones, whole, tiles = level_files(tmp, g, city_and_blocks(rows, cols), size)
    rng = np.random.default_rng(7)
    classes, carbon, fractions = [], [], []
    for y in YEARS:
        c = rng.integers(0, 4, (rows, cols)).astype(np.float32)
        c[rng.random((rows, cols)) < 0.06] = NAN
        classes.append(io.write_raster(tmp / f"classes_{y}.tif", c, g))
        d = rng.uniform(0, 60, (rows, cols)).astype(np.float32)
        d[rng.random((rows, cols)) < 0.04] = NAN
        carbon.append(io.write_raster(tmp / f"carbon_{y}.tif", np.stack([d, d * 0.8, d * 1.2]), g))
        f = rng.dirichlet([1, 1, 1], rows * cols).T[:2].reshape(2, rows, cols).astype(np.float32)
        f[:, rng.random((rows, cols)) < 0.03] = NAN
        f[:, :5, :] = np.round(f[:, :5, :])  # whole pixels of one type: conversions from one type to another
        fractions.append(io.write_raster(tmp / f"fractions_{y}.tif", f, g, band_names=TYPES))
    bases = []
    for tiled in (False, True):
        base = tmp / ("tiled" if tiled else "whole")
        base.mkdir()
        run_transitions(zones, tiles if tiled else whole, tmp / "grid.json", classes, carbon, fractions,
                        outputs(base, YEARS, True), years=YEARS, levels=LEVELS, types=TYPES, types_by_year=True,
                        compress="deflate", size_px=size if tiled else None)
        bases.append(base)
    return bases[0], bases[1]


def test_tiled_transition_tables_equal_the_untiled(runs) -> None:
    whole, tiled = runs
    for level in LEVELS:
        a, b = (pd.read_csv(base / f"{level}.csv", keep_default_na=False, na_values=[""]) for base in (whole, tiled))
        assert {"vegetation", "greenspace_type"} <= set(a["kind"]) and a["carbon_change_t"].isna().any()
        assert_tables_equal(a, b)
    for a, b in zip(transition_pairs(YEARS), transition_pairs(YEARS), strict=True):
        for name in (f"matrix_{a[0]}_{a[1]}.csv", f"greenspace_matrix_{b[0]}_{b[1]}.csv"):
            assert_tables_equal(pd.read_csv(whole / name), pd.read_csv(tiled / name))
    assert_json_close(json.loads((whole / "transitions.json").read_text()),
                      json.loads((tiled / "transitions.json").read_text()))


def test_tiled_transition_rasters_equal_the_untiled(runs) -> None:
    whole, tiled = runs
    for name in ("classes.tif", "greenspace_types.tif"):
        with rasterio.open(whole / name) as a, rasterio.open(tiled / name) as b:
            assert a.descriptions == b.descriptions == tuple(str(y) for y in YEARS) and a.tags() == b.tags()
            np.testing.assert_array_equal(a.read(), b.read())


def test_transitions_by_hand_on_uneven_tiles(tmp_path: Path) -> None:
    """2 × 3 grid in tiles of 2 px (a 2 × 2 and a 2 × 1 tile); one zone Z over x 5-30 m (half of column 0).

    classes 2021 [[1, 1, 3], [0, NaN, 3]] -> 2022 [[3, 1, 3], [0, 2, 0]]; carbon 2021 [[5, 5, 40], [0, 9, 40]],
    2022 [[30, 6, 42], [0, 9, NaN]] t C/ha; a pixel is 0.01 ha."""
    g = grid(2, 3)
    levels = {"city": [("C", "", box(X0, Y0, X0 + 30, Y0 + 20))], "block": [("Z", "C", box(X0 + 5, Y0, X0 + 30, Y0 + 20))]}
    zones, _, tiles = level_files(tmp_path, g, levels, 2)
    cls = [io.write_raster(tmp_path / f"c{y}.tif", np.array(v, np.float32), g)
           for y, v in ((2021, [[1, 1, 3], [0, NAN, 3]]), (2022, [[3, 1, 3], [0, 2, 0]]))]
    carbon = [io.write_raster(tmp_path / f"k{y}.tif", np.array(v, np.float32), g)
              for y, v in ((2021, [[5, 5, 40], [0, 9, 40]]), (2022, [[30, 6, 42], [0, 9, NAN]]))]
    out = outputs(tmp_path / "out", [2021, 2022], False)
    (tmp_path / "out").mkdir()
    run_transitions(zones, tiles, tmp_path / "grid.json", cls, carbon, [], out, years=[2021, 2022], levels=LEVELS,
                    types=[], types_by_year=False, size_px=2)
    z = pd.read_csv(out["csv"][1], keep_default_na=False, na_values=[""]).set_index(["from_class", "to_class"])
    # Z covers pixel (0, 0) and (1, 0) by half, the rest whole
    assert z.loc[("grass", "tree"), "area_ha"] == pytest.approx(0.005)  # (0, 0), half
    assert z.loc[("grass", "tree"), "carbon_change_t"] == pytest.approx(0.125)  # 25 t C/ha × 0.005 ha
    assert z.loc[("grass", "grass"), "carbon_change_t"] == pytest.approx(0.01)  # (0, 1): 1 t C/ha × 0.01 ha
    assert z.loc[("tree", "tree"), "carbon_change_t"] == pytest.approx(0.02)  # (0, 2)
    assert z.loc[("none", "none"), "area_ha"] == pytest.approx(0.005)  # (1, 0), half
    assert z.loc[("no data", "shrub"), "area_ha"] == pytest.approx(0.01)  # (1, 1): unobserved in 2021
    # (1, 2) tree -> none with unknown 2022 carbon: area known, carbon NaN (not 0), none of it known
    assert z.loc[("tree", "none"), "area_ha"] == pytest.approx(0.01)
    assert np.isnan(z.loc[("tree", "none"), "carbon_change_t"]) and z.loc[("tree", "none"), "carbon_known_ha"] == 0
    m = pd.read_csv(out["matrices"][0], index_col=0)
    assert m.loc["total", "total"] == pytest.approx(0.06) and m.loc["grass", "tree"] == pytest.approx(0.01)
    with rasterio.open(out["classes"]) as src:
        np.testing.assert_array_equal(src.read(2), [[3, 1, 3], [0, 2, 0]])
