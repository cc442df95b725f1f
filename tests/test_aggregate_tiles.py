"""Aggregation from per-tile zone partial sums (tiles.size_px): the sums of the tiles add up to the whole grid's,
and the tables finished from them are the untiled zone tables.

Grid: 23 × 30 pixels of 10 m (top-left corner X0, Y1 = 500 000, 3 500 000 in EPSG:32651), the tabulated-interval
tests' five types (four curves fitted to plots, one table type; whole, edge and mixed pixels, NaN NDVI) with a
residual field, NDVI error and edge error all on, 200 draws. Tiles of 8 px: 3 rows × 4 columns, the last row
7 px high and the last column 6 px wide (uneven). Zones: the city (the whole grid and a margin outside it), two
districts split at x = 125 m (inside tile column 1), parcels: one across the corner of four tiles (pixel rows
5–10.5, columns 6–10.3 around the corner at row 8, column 8), one never observed clear (NDVI NaN on all its
pixels, rows 17–21, columns 25–29, inside one tile), one between pixel edges, one whole tile.

The whole-grid reference is :func:`greensink.aggregate.zone_table` on the whole coverage matrix (the untiled
rule's path); independent checks use the dense coverage matrix and numpy (not the chunked CSR sums) and areas
by hand.
"""

from __future__ import annotations

import dataclasses

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from affine import Affine
from shapely.geometry import box

from greensink.aggregate import (
    draw_sums_of,
    zone_draw_sums,
    zone_partial_sums,
    zone_table,
    zone_table_from_sums,
)
from greensink.carbon import fill_values, pixel_function, type_density, type_fill, typed_pixels
from greensink.coverage import coverage_matrix
from greensink.errors import InputDataError
from greensink.grid import Grid
from greensink.uncertainty import Noise, ResidualField, noise_spec
from greensink.vegetation import CLASS_SHRUB, CLASS_TREE, class_mask
from greensink.zone_sums import ZoneSums, gather, read_tile_sums, write_tile_sums
from test_carbon_tabulated import TYPES, _models, _rasters

NAN = np.nan
CRS = "EPSG:32651"
X0, Y1 = 500_000.0, 3_500_000.0
ROWS, COLS = 23, 30
SIZE_PX = 8
GRID = Grid(CRS, Affine(10.0, 0.0, X0, 0.0, -10.0, Y1), width=COLS, height=ROWS)
UNC = {"residual": {"enabled": True}, "ndvi": {"enabled": True}, "edges": {"enabled": True, "position_sd_m": 1.5}}
SEED, YEAR = 4, 2024
NEVER_SEEN = (slice(17, 22), slice(25, 30))  # rows 17-21, columns 25-29: tile r002c003 (rows 16-22, cols 24-29)


def px_box(col0: float, row0: float, col1: float, row1: float):
    """Rectangle in pixel coordinates (col right, row down) of the grid."""
    return box(X0 + 10 * col0, Y1 - 10 * row1, X0 + 10 * col1, Y1 - 10 * row0)


def zone_layers() -> list[gpd.GeoDataFrame]:
    def layer(level, rows):
        return gpd.GeoDataFrame({"zone_id": [r[0] for r in rows], "parent_id": [r[1] for r in rows], "level": level,
                                 "name": [f"zone {r[0]}" for r in rows]}, geometry=[r[2] for r in rows], crs=CRS)

    return [layer("city", [("C", "", px_box(-1, -1, COLS + 1, ROWS + 1))]),
            layer("district", [("W", "C", px_box(0, 0, 12.5, ROWS)), ("E", "C", px_box(12.5, 0, COLS, ROWS))]),
            layer("parcel", [("corner", "W", px_box(6, 5, 10.3, 10.5)), ("unseen", "E", px_box(25, 17, 30, 22)),
                             ("edges", "E", px_box(13.25, 2.5, 21.75, 6.25)), ("tile", "W", px_box(0, 0, 8, 8))])]


@dataclasses.dataclass
class Case:
    models: dict
    frac: np.ndarray
    rasters: dict
    se: np.ndarray
    fill: dict
    zones: list
    matrices: list


@pytest.fixture(scope="module")
def case() -> Case:
    frac, ndvi, se = _rasters(ROWS, COLS)
    ndvi[NEVER_SEEN] = NAN
    se[NEVER_SEEN] = NAN
    finite = np.isfinite(ndvi)
    rng = np.random.default_rng(3)
    classes = np.where(finite, rng.integers(0, 4, ndvi.shape), NAN).astype(np.float32)  # 0 bare .. 3 tree
    rasters = {"ndvi": ndvi,
               "fvc": np.where(finite, np.clip((ndvi - 0.1) / 0.7, 0, 1), NAN).astype(np.float32),
               "vegetation": np.where(finite, ndvi >= 0.2, NAN).astype(np.float32),
               "canopy": np.where(finite, ndvi >= 0.5, NAN).astype(np.float32),
               "tree_shrub": class_mask(classes, (CLASS_SHRUB, CLASS_TREE))}
    field = ResidualField(nugget=0.02, psill=0.015, range_m=150.0, n_plots=80, method="test")
    models = {**_models(), "residual_field": dataclasses.asdict(field)}
    fill = type_fill(models, TYPES, frac, {"ndvi": ndvi}, seed=0)
    zones = zone_layers()
    matrices = [coverage_matrix(list(z.geometry.values), GRID.transform, GRID.shape) for z in zones]
    return Case(models, frac, rasters, se, fill, zones, matrices)


def noise(models: dict) -> Noise:
    spec = noise_spec(UNC, models, seed=SEED, year=YEAR, resolution_m=10.0)
    spec.width, spec.height = GRID.width, GRID.height
    return Noise(spec, 200)


def tile_matrix(whole, tile):
    """The tile's columns of a whole-grid coverage matrix, in the tile's local pixel order (r × tile width + c)."""
    rows, cols = np.mgrid[tile.rows, tile.cols]
    return whole[:, (rows * COLS + cols).ravel()].tocsr()


def sums_of(c: Case, tile=None) -> list[ZoneSums]:
    """zone_partial_sums over the whole grid (tile None) or over one tile's windows, as the rules call it."""
    if tile is None:
        return zone_partial_sums(c.matrices, c.rasters, c.frac, c.models, TYPES, {"ndvi": c.rasters["ndvi"]}, c.fill,
                                 GRID.pixel_area_ha, noise=noise(c.models), ndvi_se=c.se, chunk_pixels=32_768)
    win = (tile.rows, tile.cols)
    rasters = {k: v[win] for k, v in c.rasters.items()}
    return zone_partial_sums([tile_matrix(m, tile) for m in c.matrices], rasters, c.frac[:, tile.rows, tile.cols],
                             c.models, TYPES, {"ndvi": rasters["ndvi"]}, c.fill, GRID.pixel_area_ha,
                             noise=noise(c.models), ndvi_se=c.se[win], row0=tile.row_off, col0=tile.col_off,
                             grid_width=GRID.width, chunk_pixels=13)


@pytest.fixture(scope="module")
def summed(case):
    tiles = GRID.tiles(SIZE_PX)
    per_tile = [sums_of(case, t) for t in tiles]
    whole = [s.dense() for s in sums_of(case)]
    gathered = [gather([p[i] for p in per_tile], len(z)) for i, z in enumerate(case.zones)]
    return tiles, per_tile, whole, gathered


def test_tile_sums_add_up_to_the_whole_grid_sums(case, summed):
    tiles, per_tile, whole, gathered = summed
    assert [t.shape for t in tiles] == [(8, 8)] * 3 + [(8, 6)] + [(8, 8)] * 3 + [(8, 6)] + [(7, 8)] * 3 + [(7, 6)]
    for level, w, g in zip(("city", "district", "parcel"), whole, gathered, strict=True):
        assert set(g) == set(w) and {"draws_t", "part_residual_t", "part_ndvi_t", "part_edges_t"} <= set(w), level
        for name in w:
            assert g[name].shape == w[name].shape, (level, name)
            np.testing.assert_allclose(g[name], w[name], rtol=1e-12, atol=1e-12 * np.abs(w[name]).max(),
                                       err_msg=f"{level} {name}")
    # the comparison is not empty: 200 noisy draws that differ between draws, carbon in every district
    d = whole[1]["draws_t"]
    assert d.shape == (2, 200) and (d.std(axis=1) > 0.01 * d.mean(axis=1)).all()


def test_draws_of_a_tile_are_the_whole_grids_at_its_pixels(case):
    """Per pixel (not only summed): the tile's pixel function, keyed by global pixel index, gives the whole grid's
    draws of the same pixels bit for bit."""
    t = GRID.tile("r001c002", SIZE_PX)  # rows 8-15, columns 16-23
    inputs = {"ndvi": case.rasters["ndvi"], "ndvi_se": case.se}
    whole_fn = pixel_function(case.models, TYPES, case.frac, inputs, fill=fill_values(case.fill),
                              noise=noise(case.models), sources=True)
    win = (t.rows, t.cols)
    tile_fn = pixel_function(case.models, TYPES, case.frac[:, t.rows, t.cols], {k: v[win] for k, v in inputs.items()},
                             fill=fill_values(case.fill), noise=noise(case.models), sources=True, row0=t.row_off,
                             col0=t.col_off, grid_width=COLS)
    local = typed_pixels(case.frac[:, t.rows, t.cols])
    rows, cols = np.divmod(local, t.width)
    est_w, draws_w, _ = whole_fn((rows + t.row_off) * COLS + cols + t.col_off)
    est_t, draws_t, _ = tile_fn(local)
    assert local.size > 40
    np.testing.assert_array_equal(est_t, est_w)
    np.testing.assert_array_equal(draws_t, draws_w)


def test_only_the_zones_touching_a_tile_are_kept(case, summed):
    tiles, per_tile, _, _ = summed
    ids = {t.id: k for k, t in enumerate(tiles)}
    parcel = {tid: per_tile[k][2].rows.tolist() for tid, k in ids.items()}
    # the corner parcel (row 0) is in the four tiles around pixel (8, 8), the whole-tile parcel (3) in r000c000
    # alone (its edges lie on tile edges: no coverage outside), the never-seen parcel (1) in r002c003 alone
    assert [tid for tid, r in parcel.items() if 0 in r] == ["r000c000", "r000c001", "r001c000", "r001c001"]
    assert [tid for tid, r in parcel.items() if 3 in r] == ["r000c000"]
    assert [tid for tid, r in parcel.items() if 1 in r] == ["r002c003"]
    assert parcel["r002c000"] == []  # no parcel there: an empty part, nothing of the zone arrays' size
    assert per_tile[ids["r002c000"]][2].values["draws_t"].shape == (0, 200)


def test_corner_zone_by_hand(case, summed):
    """The parcel across the corner of four tiles, from the gathered sums, against the dense coverage and numpy."""
    _, _, _, gathered = summed
    g = gathered[2]
    # exact coverage: 4.3 × 5.5 pixels of 0.01 ha
    assert g["cover_px"][0] == pytest.approx(4.3 * 5.5, rel=1e-12)
    cov = np.asarray(case.matrices[2][0].todense()).reshape(ROWS, COLS)
    ndvi = case.rasters["ndvi"].astype(np.float64)
    ok = np.isfinite(ndvi)
    assert g["ndvi_sum"][0] / g["ndvi_covered"][0] == pytest.approx((cov * np.where(ok, ndvi, 0)).sum() / cov[ok].sum(),
                                                                    rel=1e-12)
    assert g["observed_px"][0] == pytest.approx(cov[ok].sum(), rel=1e-12)
    frac = case.frac.astype(np.float64)
    np.testing.assert_allclose(g["type_px"][0], (cov * frac).sum(axis=(1, 2)), rtol=1e-12)


def tables(c: Case, sums: list[dict] | None):
    """Zone tables of every level: zone_table on the whole coverage (sums None; the untiled rule's path) or
    zone_table_from_sums of the given sums."""
    gs = gpd.GeoDataFrame({"type": ["LIN", "TAB"]}, geometry=[px_box(0, 0, 10, 10), px_box(20, 10, 30, 23)], crs=CRS)
    density = type_density(c.models, TYPES, c.frac, {"ndvi": c.rasters["ndvi"]})
    kw = {"fill_t_ha": {t: v["fill_t_ha"] for t, v in c.fill.items()}, "min_observed_pct": 50.0}
    out = []
    if sums is None:
        inputs = {"ndvi": c.rasters["ndvi"], "ndvi_se": c.se}
        fn = pixel_function(c.models, TYPES, c.frac, inputs, fill=fill_values(c.fill), noise=noise(c.models),
                            sources=True)
        draws = zone_draw_sums(c.matrices, fn, typed_pixels(c.frac), GRID.pixel_area_ha)
        for z, m, d in zip(c.zones, c.matrices, draws, strict=True):
            out.append(zone_table(z, m, GRID, c.rasters, density, TYPES, d, gs, "type", ["LIN"], fractions=c.frac, **kw))
        return out
    for z, s in zip(c.zones, sums, strict=True):
        out.append(zone_table_from_sums(z, s, GRID, TYPES, draw_sums_of(s, len(z)), gs, "type", ["LIN"], **kw))
    return out


def test_tables_from_the_tile_sums_are_the_untiled_tables(case, summed):
    _, _, whole, gathered = summed
    ref = tables(case, None)
    untiled = tables(case, whole)
    tiled = tables(case, gathered)
    worst = 0.0
    for r, u, t in zip(ref, untiled, tiled, strict=True):
        pd.testing.assert_frame_equal(u, r, check_exact=True)  # the whole grid's sums give zone_table's table, bit for bit
        assert list(t.columns) == list(r.columns)
        for col in r.columns:
            if col == "geometry" or not pd.api.types.is_numeric_dtype(r[col]):
                assert t[col].tolist() == r[col].tolist(), col
                continue
            a, b = r[col].to_numpy(dtype=float), t[col].to_numpy(dtype=float)
            np.testing.assert_array_equal(np.isnan(b), np.isnan(a), err_msg=col)  # NaN where NaN, not 0
            np.testing.assert_allclose(b, a, rtol=1e-9, err_msg=col)
            ok = np.isfinite(a) & (a != 0)
            worst = max(worst, float(np.max(np.abs(b[ok] / a[ok] - 1), initial=0.0)))
    print(f"worst relative difference tiled vs untiled: {worst:.1e}")
    assert worst < 1e-12  # measured 2.2e-15: sums in another order, a few ulp
    parcel = tiled[2].set_index("zone_id")
    # the never-observed parcel: no clear pixel, so no NDVI, cover or carbon value (NaN), never 0
    unseen = parcel.loc["unseen"]
    assert unseen["observed_pct"] == 0.0 and unseen["grid_area_ha"] == pytest.approx(0.25)
    for col in ("ndvi_mean", "fvc_mean", "green_coverage_pct", "canopy_cover_pct", "tree_shrub_share_pct",
                "carbon_t", "carbon_t_lo", "carbon_t_hi", "carbon_t_ha", "carbon_u_pct"):
        assert np.isnan(unseen[col]), col
    assert parcel.loc["corner", "carbon_t"] > 0 and np.isfinite(parcel.loc["corner", "carbon_t_lo"])


def test_tile_sums_file_round_trip_and_refusals(tmp_path, case, summed):
    tiles, per_tile, _, _ = summed
    levels = ["city", "district", "parcel"]
    n = [len(z) for z in case.zones]
    path = tmp_path / "aggregate_r000c001.npz"
    write_tile_sums(path, dict(zip(levels, per_tile[1], strict=True)), {"tile": "r000c001", "year": YEAR})
    back = read_tile_sums(path, levels, n, expect={"tile": "r000c001", "year": YEAR})
    for level, s in zip(levels, per_tile[1], strict=True):
        assert back[level].rows.tolist() == s.rows.tolist()
        assert set(back[level].values) == set(s.values)
        for k, v in s.values.items():
            np.testing.assert_array_equal(back[level].values[k], v)
    with pytest.raises(InputDataError, match=r"aggregate_r000c001\.npz: tile must be 'r000c000' .* Got 'r000c001'"):
        read_tile_sums(path, levels, n, expect={"tile": "r000c000"})
    with pytest.raises(InputDataError, match=r"n_zones must be \[1, 2, 5\] .* Got \[1, 2, 4\]"):
        read_tile_sums(path, levels, [1, 2, 5])
    with pytest.raises(InputDataError, match=r"levels must be \['city', 'block', 'parcel'\]"):
        read_tile_sums(path, ["city", "block", "parcel"], n)


# ----------------------------------------------------------------------------- the rules' runners on files


def write_case(tmp_path, c: Case):
    """The case as the rules' files: GeoTIFFs of the grid, the zone layers and their coverage (whole grid and per
    tile), models.json and fill.json (rule fill's record of the same fill)."""
    from greensink import io
    from greensink.aggregate import content_sha256
    from greensink.carbon import write_fill
    from greensink.coverage import tile_coverage_matrix

    d = tmp_path / "in"
    d.mkdir()
    classes = np.where(np.isnan(c.rasters["tree_shrub"]), NAN, np.where(c.rasters["tree_shrub"] > 0, 3.0, 1.0))
    files = {name: io.write_raster(d / f"{name}.tif", c.rasters[name][None].astype(np.float32), GRID, band_names=[name])
             for name in ("ndvi", "fvc", "vegetation", "canopy")}
    files["classes"] = io.write_raster(d / "classes.tif", classes[None].astype(np.float32), GRID, band_names=["class"])
    fractions = io.write_raster(d / "fractions.tif", c.frac, GRID, band_names=TYPES)
    se = io.write_raster(d / "ndvi_se.tif", c.se[None], GRID, band_names=["ndvi_se"])
    models = io.write_json(d / "models.json", c.models)
    fill = write_fill(d / "fill.json", c.fill, year=YEAR, seed=0, models_sha256=content_sha256(c.models))
    grid = io.write_json(d / "grid.json", GRID.to_dict())
    levels = [str(z["level"].iloc[0]) for z in c.zones]
    zones, coverage = [], []
    for level, z, m in zip(levels, c.zones, c.matrices, strict=True):
        zones.append(d / f"{level}.gpkg")
        z.to_file(zones[-1], driver="GPKG")
        coverage.append(io.write_sparse(d / f"{level}_coverage.npz", m))
    # the tiles' coverage as rule zone_coverage_tile computes it: exactextract on the tile's sub-grid
    tile_cov = {t.id: [io.write_sparse(d / f"{level}_coverage_{t.id}.npz",
                                       tile_coverage_matrix(list(z.geometry.values), GRID, t))
                       for level, z in zip(levels, c.zones, strict=True)] for t in GRID.tiles(SIZE_PX)}
    gs = gpd.GeoDataFrame({"type": ["LIN", "TAB"]}, geometry=[px_box(0, 0, 10, 10), px_box(20, 10, 30, 23)], crs=CRS)
    gs.to_file(d / "greenspace.gpkg", driver="GPKG")
    return {"files": files, "fractions": fractions, "se": se, "models": models, "fill": fill, "grid": grid,
            "levels": levels, "zones": zones, "coverage": coverage, "tile_cov": tile_cov,
            "greenspace": d / "greenspace.gpkg"}


def test_tiled_rules_write_the_untiled_rules_tables_and_draws(tmp_path, case):
    from greensink import io
    from greensink.aggregate import ZoneDraws, run_aggregate, run_aggregate_gather, run_aggregate_tile

    f = write_case(tmp_path, case)
    levels = f["levels"]
    gs_cfg = {"type_column": "type", "park_types": ["LIN"], "types": {t: t for t in TYPES}}
    kw = {"year": YEAR, "levels": levels, "types": TYPES, "seed": SEED, "uncertainty": UNC}
    out = {name: ([tmp_path / name / f"{lv}.indicators.parquet" for lv in levels],
                  [tmp_path / name / f"{lv}.draws.npz" for lv in levels]) for name in ("whole", "tiled")}
    ref = run_aggregate(f["zones"], f["coverage"], f["grid"], f["files"], f["fractions"], f["greenspace"], f["models"],
                        {"ndvi": f["files"]["ndvi"]}, f["se"], out["whole"][0], greenspace_config=gs_cfg,
                        min_observed_pct=50.0, draws_out=out["whole"][1], fill_json=f["fill"], **kw)
    sums = []
    for t in GRID.tiles(SIZE_PX):
        sums.append(tmp_path / "tiles" / f"aggregate_{t.id}.npz")
        run_aggregate_tile(f["tile_cov"][t.id], f["grid"], f["files"], f["fractions"], f["models"], f["fill"],
                           {"ndvi": f["files"]["ndvi"]}, f["se"], sums[-1], tile_id=t.id, size_px=SIZE_PX, **kw)
    got = run_aggregate_gather(f["zones"], sums, f["grid"], f["greenspace"], f["models"], f["fill"], out["tiled"][0],
                               size_px=SIZE_PX, greenspace_config=gs_cfg, min_observed_pct=50.0,
                               draws_out=out["tiled"][1], **kw)
    for lv, a_path, b_path in zip(levels, out["whole"][1], out["tiled"][1], strict=True):
        a, b = ZoneDraws.read(a_path), ZoneDraws.read(b_path)
        assert (a.zone_ids.tolist(), a.models_sha256, a.n_draws) == (b.zone_ids.tolist(), b.models_sha256, b.n_draws)
        np.testing.assert_allclose(b.estimate, a.estimate, rtol=1e-12, err_msg=lv)
        np.testing.assert_allclose(b.draws, a.draws, rtol=1e-12, atol=1e-12 * np.abs(a.draws).max(), err_msg=lv)
    for lv, a_path, b_path in zip(levels, out["whole"][0], out["tiled"][0], strict=True):
        a, b = gpd.read_parquet(a_path), gpd.read_parquet(b_path)
        assert list(b.columns) == list(a.columns) and b["zone_id"].tolist() == a["zone_id"].tolist()
        for col in a.columns:
            if pd.api.types.is_numeric_dtype(a[col]):
                x, y = a[col].to_numpy(dtype=float), b[col].to_numpy(dtype=float)
                np.testing.assert_array_equal(np.isnan(y), np.isnan(x), err_msg=f"{lv} {col}")
                np.testing.assert_allclose(y, x, rtol=1e-12, err_msg=f"{lv} {col}")
        assert got[lv]["carbon_t"].notna().any()
    # the whole-grid rule read the same fill from fill.json as it would have computed (type_fill): the table is
    # the one without fill.json, bit for bit
    again = run_aggregate(f["zones"], f["coverage"], f["grid"], f["files"], f["fractions"], f["greenspace"],
                          f["models"], {"ndvi": f["files"]["ndvi"]}, f["se"],
                          [tmp_path / "again" / f"{lv}.parquet" for lv in levels], greenspace_config=gs_cfg,
                          min_observed_pct=50.0, **kw)
    for lv in levels:
        pd.testing.assert_frame_equal(again[lv], ref[lv], check_exact=True)
    # refusals: a tile's sums in another tile's place; a fill of other models; a missing tile
    swapped = [sums[1], sums[0], *sums[2:]]
    with pytest.raises(InputDataError, match=r"aggregate_r000c001\.npz: tile must be 'r000c000'"):
        run_aggregate_gather(f["zones"], swapped, f["grid"], f["greenspace"], f["models"], f["fill"], out["tiled"][0],
                             size_px=SIZE_PX, greenspace_config=gs_cfg, **kw)
    with pytest.raises(InputDataError, match=r"has 12 tiles; got 11"):
        run_aggregate_gather(f["zones"], sums[:-1], f["grid"], f["greenspace"], f["models"], f["fill"],
                             out["tiled"][0], size_px=SIZE_PX, greenspace_config=gs_cfg, **kw)
    other = io.write_json(tmp_path / "other_models.json", {**case.models, "seed": 9})
    with pytest.raises(InputDataError, match=r"fill\.json: field 'models_sha256'"):
        run_aggregate_tile(f["tile_cov"]["r000c000"], f["grid"], f["files"], f["fractions"], other, f["fill"],
                           {"ndvi": f["files"]["ndvi"]}, f["se"], tmp_path / "x.npz", tile_id="r000c000",
                           size_px=SIZE_PX, **kw)


def test_tiled_aggregate_jobs_ask_for_their_measured_peak_not_the_whole_grids():
    from greensink import resources

    tiled, untiled = {"tiles": {"size_px": 512}}, {"tiles": {"size_px": None}}
    assert resources.cost_rule("aggregate", tiled) == "aggregate_gather"  # rule aggregate of a tiled run gathers
    assert resources.cost_rule("aggregate", untiled) == "aggregate" and resources.cost_rule("carbon", tiled) == "carbon"
    # benchmarks/README.md, tile_memory.py at 2048² in 512-px tiles (VmHWM of each job's process)
    for rule, mpx, peak in (("aggregate_tile", 512**2 / 1e6, 497), ("aggregate_gather", 2048**2 / 1e6, 305)):
        assert peak <= resources.mem_mb(rule, mpx) < resources.mem_mb("aggregate", mpx), rule
    assert resources.mem_mb("aggregate", 2048**2 / 1e6) >= 1510  # the whole-grid rule's measured peak there


def test_gather_in_zone_blocks_gives_the_one_block_tables_and_reads_one_level(tmp_path, case):
    from greensink.aggregate import run_aggregate_gather, run_aggregate_tile
    from greensink.zone_sums import read_tile_level

    f = write_case(tmp_path, case)
    levels = f["levels"]
    n = [len(z) for z in case.zones]
    gs_cfg = {"type_column": "type", "park_types": ["LIN"], "types": {t: t for t in TYPES}}
    kw = {"year": YEAR, "levels": levels, "types": TYPES, "seed": SEED, "uncertainty": UNC}
    sums = []
    for t in GRID.tiles(SIZE_PX):
        sums.append(tmp_path / "tiles" / f"aggregate_{t.id}.npz")
        run_aggregate_tile(f["tile_cov"][t.id], f["grid"], f["files"], f["fractions"], f["models"], f["fill"],
                           {"ndvi": f["files"]["ndvi"]}, f["se"], sums[-1], tile_id=t.id, size_px=SIZE_PX, **kw)
    got = {}
    for block in (1, 3, 10**6):  # the parcels (4 zones) in 4, 2 and 1 blocks
        paths = [tmp_path / f"b{block}" / f"{lv}.parquet" for lv in levels]
        got[block] = run_aggregate_gather(f["zones"], sums, f["grid"], f["greenspace"], f["models"], f["fill"], paths,
                                          size_px=SIZE_PX, greenspace_config=gs_cfg, min_observed_pct=50.0,
                                          zone_block=block, **kw)
    for lv in levels:
        shares = [c for c in got[10**6][lv].columns if c.startswith("var_share_")]
        assert len(shares) >= 3 and np.isfinite(got[10**6][lv][shares].to_numpy(dtype=float)).any(), lv
        for block in (1, 3):
            pd.testing.assert_frame_equal(got[block][lv], got[10**6][lv], check_exact=True)
    # one level's members, parts apart, and a zone block's rows only: the file's arrays (read_tile_sums) sliced
    path = sums[0]  # tile r000c000: the parcels "corner" (row 0) and "tile" (row 3)
    whole = read_tile_sums(path, levels, n)["parcel"]
    parts = read_tile_level(path, levels, n, "parcel", parts=True, zones=(0, 2))
    rest = read_tile_level(path, levels, n, "parcel")
    keep = (whole.rows >= 0) & (whole.rows < 2)
    assert whole.rows.tolist() == [0, 3]
    assert keep.any() and not keep.all() and parts.rows.tolist() == whole.rows[keep].tolist()
    assert set(parts.values) == {k for k in whole.values if k.startswith("part_")} != set()
    assert set(rest.values) == {k for k in whole.values if not k.startswith("part_")}
    for k, v in parts.values.items():
        np.testing.assert_array_equal(v, whole.values[k][keep])
    for k, v in rest.values.items():
        np.testing.assert_array_equal(v, whole.values[k])
    with pytest.raises(InputDataError, match=r"aggregate_r000c000\.npz: tile must be 'r000c001'"):
        read_tile_level(path, levels, n, "city", expect={"tile": "r000c001"})
