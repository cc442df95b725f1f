"""The baseline means a scenario's states take, read strip by strip (issue 14 item 2: rule scenario_plan without the
whole baseline in memory), equal to the whole grid's numpy sums bit for bit.

greensink.scenario.states.StreamSum replays numpy's pairwise summation over a stream of known length; it is checked
against np.sum itself on arrays of many lengths (around numpy's 8-value unroll and 128-value block, and long ones)
cut into pieces at random. weighted_means over strips of 1, 2, 3 … rows is checked against the whole-grid formula
the untiled rule used before (np.sum over the masked whole arrays, written out here), on random rasters with
unobserved pixels, zero weights and a layer without any finite pixel, and against small hand-computed means. The
runner (rule scenario_plan) with strips of one row writes the untiled rule's inputs.json byte for byte.
"""

from __future__ import annotations

import numpy as np
import pytest

from greensink.scenario.states import LAYERS, StreamSum, segments, weighted_means

TYPES = ["G1", "XG"]
SPECS = ["type:G1", "type:XG", "canopy", "vegetation", "bare", "bare_untyped"]


def old_means(layers: dict, weight: np.ndarray) -> dict | None:
    """The whole-grid formula (greensink.scenario.burn._weighted_means before the strips), the reference."""
    ok = np.isfinite(layers["ndvi"]) & (weight > 0)
    w = weight[ok].astype(np.float64)
    if w.sum() <= 0:
        return None
    out = {}
    for name in LAYERS:
        v = layers[name][ok].astype(np.float64)
        good = np.isfinite(v)
        out[name] = float(np.sum(w[good] * v[good]) / np.sum(w[good])) if good.any() else float("nan")
    return out


def old_weights(layers: dict, fractions: np.ndarray) -> dict:
    bare = (layers["vegetation"] <= 0).astype(np.float32)
    return {"type:G1": fractions[0], "type:XG": fractions[1], "canopy": np.nan_to_num(layers["canopy"]),
            "vegetation": layers["vegetation"], "bare": bare, "bare_untyped": bare * (fractions.sum(axis=0) <= 0)}


def strips(layers: dict, fractions: np.ndarray, rows: int):
    def blocks():
        for r in range(0, layers["ndvi"].shape[0], rows):
            yield {k: v[r:r + rows] for k, v in layers.items()}, fractions[:, r:r + rows]
    return blocks


@pytest.mark.parametrize("segment", [128, 1024, 1 << 16])
def test_stream_sum_is_numpys_sum_bit_for_bit(segment):
    rng = np.random.default_rng(7)
    lengths = [0, 1, 7, 8, 9, 127, 128, 129, 135, 136, 255, 256, 257, 1000, 1031, 4099, 65_535, 65_536, 65_537,
               200_003, 1_000_001]
    for n in lengths:
        # values of very different magnitudes and signs, so that any other order of the additions rounds differently
        a = rng.standard_normal(n) * np.exp(rng.uniform(-15, 15, n))
        s = StreamSum(n, segment)
        cuts = np.sort(rng.integers(0, n + 1, 5)) if n else np.array([], int)
        for piece in np.split(a, cuts):
            s.add(piece)
        assert s.total() == np.sum(a), n
        assert s.total().hex() == float(np.sum(a)).hex()
    # the check is sharp: adding the same values in another order gives another sum for such a long array
    assert float(np.sum(a[::-1])) != float(np.sum(a)) or float(np.sum(np.sort(a))) != float(np.sum(a))


def test_segments_follow_numpys_split():
    # by hand: 300 values split at 300 // 2 = 150, rounded down to a multiple of 8: 144 | 156; both > 128 split
    # again: 144 at 72 → 72 | 72, 156 at 78 → 72: 72 | 84
    assert segments(300, 128) == [72, 72, 72, 84]
    assert segments(128, 128) == [128] and segments(0, 128) == [0]
    assert sum(segments(1_000_001, 1000)) == 1_000_001 and max(segments(1_000_001, 1000)) <= 1000


def test_stream_sum_refuses_a_wrong_count():
    s = StreamSum(3)
    s.add(np.ones(2))
    with pytest.raises(ValueError, match="3 values was given 2"):
        s.total()
    with pytest.raises(ValueError, match="was given 4"):
        s.add(np.ones(2))
    with pytest.raises(ValueError, match="at least 128"):
        StreamSum(10, segment=64)


def random_landscape(rows: int, cols: int, seed: int, height: bool) -> tuple[dict, np.ndarray]:
    rng = np.random.default_rng(seed)
    ndvi = rng.uniform(-0.1, 0.9, (rows, cols)).astype(np.float32)
    ndvi[rng.uniform(size=(rows, cols)) < 0.1] = np.nan  # cloud holes
    veg = (ndvi >= 0.2).astype(np.float32)
    canopy = rng.uniform(0, 1, (rows, cols)).astype(np.float32) * (ndvi >= 0.5)
    canopy[rng.uniform(size=(rows, cols)) < 0.05] = np.nan
    fvc = np.clip((ndvi - 0.05) / 0.8, 0, 1).astype(np.float32)
    fvc[rng.uniform(size=(rows, cols)) < 0.03] = np.nan  # a layer missing where NDVI is observed
    layers = {"ndvi": ndvi, "fvc": fvc, "canopy": canopy,
              "height": (rng.uniform(0, 20, (rows, cols)).astype(np.float32) if height
                         else np.full((rows, cols), np.nan, np.float32)),
              "vegetation": veg, "tree_shrub": (ndvi >= 0.35).astype(np.float32)}
    g1 = np.clip(rng.uniform(-0.5, 1.2, (rows, cols)), 0, 1).astype(np.float32)
    xg = np.clip(rng.uniform(-1.5, 1.0, (rows, cols)), 0, 1).astype(np.float32) * (1 - g1)
    return layers, np.stack([g1, xg]).astype(np.float32)


@pytest.mark.parametrize("height", [True, False])
def test_strip_means_equal_the_whole_grid_formula_bit_for_bit(height):
    layers, fractions = random_landscape(61, 257, 3, height)
    reference = {s: old_means(layers, w) for s, w in old_weights(layers, fractions).items()}
    assert all(v is not None for v in reference.values())
    for rows in (1, 2, 3, 7, 61):
        got = weighted_means(strips(layers, fractions, rows), TYPES, SPECS)
        assert got.has_height is height
        for s in SPECS:
            for name in LAYERS:
                a, b = got[s][name], reference[s][name]
                assert (np.isnan(a) and np.isnan(b)) or a.hex() == b.hex(), (rows, s, name)
        assert bool(np.isnan(got["canopy"]["height"])) is (not height)  # finite nowhere: NaN, not 0


def test_means_by_hand():
    # 2 × 3 pixels; G1 fractions 0.5, 1, 0 / 0.25, 0, 0; NDVI 0.4, 0.6, 0.1 / NaN, 0.8, 0.0.
    # G1's mean NDVI: the unobserved (1, 0) is left out: (0.5 × 0.4 + 1 × 0.6) / 1.5 = 0.8 / 1.5
    ndvi = np.array([[0.4, 0.6, 0.1], [np.nan, 0.8, 0.0]], np.float32)
    veg = (ndvi >= 0.2).astype(np.float32)
    layers = {"ndvi": ndvi, "fvc": ndvi, "canopy": np.zeros_like(ndvi), "height": np.full_like(ndvi, np.nan),
              "vegetation": veg, "tree_shrub": veg}
    fractions = np.stack([np.array([[0.5, 1, 0], [0.25, 0, 0]], np.float32), np.zeros((2, 3), np.float32)])
    got = weighted_means(strips(layers, fractions, 1), TYPES, ["type:G1", "type:XG", "bare_untyped", "canopy"])
    w = np.float64(np.float32(0.4)), np.float64(np.float32(0.6))
    assert got["type:G1"]["ndvi"] == pytest.approx((0.5 * w[0] + w[1]) / 1.5, rel=1e-15)
    # bare land without type: (0, 2) NDVI 0.1 and (1, 2) NDVI 0.0, equal weights: 0.05
    assert got["bare_untyped"]["ndvi"] == pytest.approx((float(np.float32(0.1)) + 0.0) / 2, rel=1e-15)
    assert got["type:XG"] is None and got["canopy"] is None  # no pixel of the weight: no mean (not 0)
    assert np.isnan(got["type:G1"]["height"])


def test_the_plan_rule_in_one_row_strips_writes_the_untiled_record(tmp_path):
    from greensink.scenario.files import SCENARIO_KEYS
    from greensink.scenario.run import run_scenario_inputs, run_scenario_plan
    from test_scenario_tiles import TH, YEARS, write_case
    from test_scenario_tiles import TYPES as CASE_TYPES

    case = write_case(tmp_path)
    veg = {"ndvi_vegetation": TH.ndvi_vegetation, "ndvi_shrub": TH.ndvi_shrub, "ndvi_tree": TH.ndvi_tree}
    kw = {"scenario": case["entry"], "years": YEARS, "types": CASE_TYPES, "type_column": "type",
          "typed_land": True, "vegetation": veg}
    whole, tiled = tmp_path / "whole", tmp_path / "tiled"
    whole.mkdir(), tiled.mkdir()
    out = {k: whole / f"{k}.tif" for k in SCENARIO_KEYS} | {"greenspace": whole / "greenspace.gpkg"}
    run_scenario_inputs(case["changes"], case["grid"], case["paths"], case["stats"], case["models"], out,
                        whole / "models.json", whole / "inputs.json", **kw)
    record = run_scenario_plan(case["changes"], case["grid"], case["paths"], case["stats"], case["models"],
                               tiled / "greenspace.gpkg", tiled / "models.json", tiled / "inputs.json",
                               tiled / "plan.json", strip_pixels=1, **kw)  # 9 strips of one row
    assert (tiled / "inputs.json").read_text() == (whole / "inputs.json").read_text()
    # the construction's NDVI is a mean over bare untyped land, a number with many bits: not 0, not a round value
    built = record["changes"][2]
    assert built["kind"] == "construction" and 0.0 < built["state"]["ndvi"] < 0.2


def test_the_plan_rule_refuses_a_raster_off_the_grid(tmp_path):
    from greensink import io
    from greensink.errors import InputDataError
    from greensink.grid import Grid
    from greensink.scenario.run import run_scenario_plan
    from test_scenario_tiles import GRID, TH, YEARS, write_case
    from test_scenario_tiles import TYPES as CASE_TYPES

    case = write_case(tmp_path)
    small = Grid(crs=GRID.crs, transform=GRID.transform, width=GRID.width, height=GRID.height - 1)
    case["paths"]["canopy"] = io.write_raster(tmp_path / "canopy_small.tif", np.zeros(small.shape, np.float32),
                                              small, band_names=["canopy"])
    veg = {"ndvi_vegetation": TH.ndvi_vegetation, "ndvi_shrub": TH.ndvi_shrub, "ndvi_tree": TH.ndvi_tree}
    with pytest.raises(InputDataError, match=r"canopy_small.tif: 8 × 11 pixels, but the run's grid .* is 9 × 11"):
        run_scenario_plan(case["changes"], case["grid"], case["paths"], case["stats"], case["models"],
                          tmp_path / "g.gpkg", tmp_path / "m.json", tmp_path / "i.json", tmp_path / "p.json",
                          scenario=case["entry"], years=YEARS, types=CASE_TYPES, type_column="type", typed_land=True,
                          vegetation=veg)


def test_landscape_strips_are_the_whole_rasters_in_row_order(tmp_path):
    """Strips of 3 rows out of rows of 512-row compressed blocks (a 1100-row grid: 3 block rows, the last short)
    put back together are the whole rasters as read_landscape reads them."""
    from affine import Affine

    from greensink import io
    from greensink.grid import Grid
    from greensink.scenario.files import landscape_strips, read_landscape

    grid = Grid(crs="EPSG:32651", transform=Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 3500000.0), width=7, height=1100)
    layers, fractions = random_landscape(grid.height, grid.width, 11, height=False)
    paths = {k: io.write_raster(tmp_path / f"{k}.tif", layers[k], grid, band_names=[k])
             for k in ("ndvi", "fvc", "canopy", "height", "vegetation")}
    classes = np.where(np.isnan(layers["ndvi"]), np.nan, np.where(layers["tree_shrub"] > 0, 3, 1)).astype(np.float32)
    paths["classes"] = io.write_raster(tmp_path / "classes.tif", classes, grid, band_names=["class"])
    paths["fractions"] = io.write_raster(tmp_path / "fractions.tif", fractions, grid, band_names=TYPES)
    with io.open_raster(paths["ndvi"]) as src:
        assert src.block_shapes[0][0] < grid.height  # more than one row of blocks
    import geopandas as gpd

    paths["greenspace"] = io.write_table(tmp_path / "gs.gpkg", gpd.GeoDataFrame({"type": ["G1"]}, geometry=[
        grid_box(grid)], crs=grid.crs), csv=False)
    whole = read_landscape(paths, TYPES, "type")
    got = list(landscape_strips(paths, TYPES, grid, strip_pixels=3 * grid.width))
    assert {f.shape[1] for _, f in got} <= {1, 2, 3} and sum(f.shape[1] for _, f in got) == grid.height
    for name in LAYERS:
        assert np.concatenate([s[name] for s, _ in got]).tobytes() == whole.rasters[name].tobytes(), name
    assert np.concatenate([f for _, f in got], axis=1).tobytes() == whole.fractions.tobytes()
    # and the means over these strips are the whole grid's, bit for bit
    got_means = weighted_means(lambda: landscape_strips(paths, TYPES, grid, 3 * grid.width), TYPES, SPECS)
    ref = {s: old_means(whole.rasters, w) for s, w in old_weights(whole.rasters, whole.fractions).items()}
    for s in SPECS:
        for name in LAYERS:
            a, b = got_means[s][name], ref[s][name]
            assert (np.isnan(a) and np.isnan(b)) or a.hex() == b.hex(), (s, name)


def grid_box(grid):
    import shapely

    return shapely.box(*grid.bounds)
