"""The fill of unobserved typed land once per year (greensink.carbon.fill, rule fill; issue 14 item 2).

Checked: type_fill is, bit for bit, the function aggregate, change and scenarios called before it moved here (its
old body is kept below as the reference); it equals an independent numpy computation (the fraction-weighted mean
of each type's curve over its observed pixels, the between-pixel sd, the draws' means plus sd × the type's z); the
partial sums of uneven tiles, added, give it within rtol 1e-12; rule fill's runners on real GeoTIFFs (untiled:
bit for bit type_fill of the rasters; tiled: tile jobs on windows and the gather, within 1e-12); fill.json round
trips exactly, None stays null, and a stale file (other models, other year) or a missing tile is refused.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from greensink import io
from greensink.aggregate import content_sha256
from greensink.carbon import (
    fill_values,
    iter_chunks,
    model_variants,
    models_digest,
    ndvi_gate,
    needs_imagery,
    observed_pixels,
    predictor_layers,
    read_fill,
    run_fill,
    run_fill_gather,
    run_fill_tile,
    served_variants,
    type_fill,
    type_fill_from_sums,
    type_fill_sums,
    type_records,
    write_fill,
)
from greensink.errors import InputDataError
from greensink.grid import Grid, Tile
from greensink.model import predict

TYPES = ["G1", "G2", "TAB", "GATE", "NONE"]
B = 7
SEED = 5


def make_models() -> dict:
    """G1: C = 1 + 10 NDVI (NDVI only); G2: C = 2 + 8 NDVI + 20 canopy with an NDVI-only companion
    C = 4 + 12 NDVI where the canopy is unknown; TAB: a table constant (needs no imagery: no fill); GATE: a
    constant 12 t C/ha gated at NDVI >= 0.3; NONE: a curve on land never observed (no fill: None)."""
    rng = np.random.default_rng(3)

    def boot(*centre):
        return (np.array(centre) * (1 + 0.1 * rng.standard_normal((B, len(centre))))).tolist()

    return {"seed": SEED, "types": {
        "G1": {"form": "linear", "predictors": ["ndvi"], "params": {"a": 1.0, "b": 10.0}, "bootstrap": boot(1.0, 10.0),
               "source": "plots"},
        "G2": {"form": "linear", "predictors": ["ndvi", "canopy"], "params": {"a": 2.0, "b_ndvi": 8.0, "b_canopy": 20.0},
               "bootstrap": boot(2.0, 8.0, 20.0), "source": "plots",
               "ndvi_only": {"form": "linear", "predictors": ["ndvi"], "params": {"a": 4.0, "b": 12.0},
                             "bootstrap": boot(4.0, 12.0)}},
        "TAB": {"form": "constant", "predictors": ["ndvi"], "params": {"c": 9.0}, "bootstrap": boot(9.0), "source": "coefficients"},
        "GATE": {"form": "constant", "predictors": ["ndvi"], "params": {"c": 12.0}, "bootstrap": boot(12.0),
                 "source": "coefficients", "ndvi_min": 0.3},
        "NONE": {"form": "linear", "predictors": ["ndvi"], "params": {"a": 3.0, "b": 5.0}, "bootstrap": boot(3.0, 5.0),
                 "source": "plots"},
    }}


def make_rasters(rows: int, cols: int, seed: int = 11) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Fractions (float32, whole and partial pixels; G1 on ~90 % of pixels so a 300 × 140 grid has more than
    one CHUNK_PIXELS chunk of it), NDVI with never-observed pixels (NaN) and NDVI below 0 (G1's curve floored at
    0 there), canopy unknown in the left third (G2's companion serves it). NONE lies only where NDVI is NaN."""
    rng = np.random.default_rng(seed)
    frac = np.zeros((len(TYPES), rows, cols), np.float32)
    ndvi = rng.uniform(-0.2, 0.9, (rows, cols)).astype(np.float32)
    ndvi[rng.random((rows, cols)) < 0.1] = np.nan
    ndvi[: rows // 5, cols // 2:] = np.nan  # a never-clear block
    canopy = rng.uniform(0.0, 0.8, (rows, cols)).astype(np.float32)
    canopy[:, : cols // 3] = np.nan
    frac[0] = np.where(rng.random((rows, cols)) < 0.9, rng.choice([1.0, 0.3, 0.55], (rows, cols)), 0.0)
    for k in (1, 2, 3):
        frac[k] = np.where(rng.random((rows, cols)) < 0.3, rng.uniform(0.05, 0.4, (rows, cols)), 0.0)
    frac[4] = np.where(np.isnan(ndvi) & (rng.random((rows, cols)) < 0.5), 0.25, 0.0)
    return frac, {"ndvi": ndvi, "canopy": canopy}


def type_fill_before(models: dict, types, fractions: np.ndarray, predictors, seed: int = 0) -> dict[str, dict]:
    """carbon.pixels.type_fill as it was before it moved to carbon/fill.py (commit cf11dc2), verbatim but for
    the imports: the reference the moved function must equal bit for bit."""
    frac = fractions.reshape(len(types), -1)
    layers = predictor_layers(predictors)
    ndvi = layers.get("ndvi")
    out: dict[str, dict] = {}
    for k, (t, tm) in enumerate(zip(types, type_records(models, types), strict=True)):
        if not needs_imagery(tm):
            continue
        variants = model_variants(tm)
        n_draws = variants[0][3].shape[0]
        w_sum, v_sum, v2_sum = 0.0, 0.0, 0.0
        d_sum = np.zeros(n_draws)
        for idx in iter_chunks(np.flatnonzero(frac[k] > 0)):
            f = frac[k, idx].astype(np.float64)
            todo = np.ones(idx.size, dtype=bool)
            gate = ndvi_gate(tm, ndvi, idx)
            for _, (preds, form, params, boot), use, xu in served_variants(variants, layers, idx, todo,
                                                                           observed_pixels(layers, idx),
                                                                           tm.ndvi_min is not None):
                if use.any():
                    g = gate if np.isscalar(gate) else gate[use]
                    v = g * np.maximum(predict(form, params, xu, preds), 0.0)
                    w = f[use]
                    w_sum += float(w.sum())
                    v_sum += float((w * v).sum())
                    v2_sum += float((w * v * v).sum())
                    d_sum += (g * np.maximum(predict(form, boot, xu, preds), 0.0)) @ w
        if w_sum <= 0:
            out[t] = {"fill_t_ha": None, "spread_t_ha": None, "observed_ha_px": 0.0, "draws": None}
            continue
        mean = v_sum / w_sum
        spread = math.sqrt(max(v2_sum / w_sum - mean * mean, 0.0))
        z = np.random.default_rng([int(seed), zlib.crc32(t.encode("utf-8")), 7]).standard_normal(n_draws)
        draws = np.maximum(d_sum / w_sum + spread * z, 0.0)
        out[t] = {"fill_t_ha": mean, "spread_t_ha": spread, "observed_ha_px": w_sum, "draws": draws}
    return out


def assert_same_bits(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for t in a:
        for key in ("fill_t_ha", "spread_t_ha", "observed_ha_px"):
            assert (a[t][key] is None and b[t][key] is None) or np.float64(a[t][key]).tobytes() == np.float64(b[t][key]).tobytes(), (t, key)
        assert (a[t]["draws"] is None and b[t]["draws"] is None) or (
            np.asarray(a[t]["draws"], np.float64).tobytes() == np.asarray(b[t]["draws"], np.float64).tobytes()), t


def max_rel_diff(a: dict, b: dict) -> float:
    """Largest relative difference of any number of two fills (None must match None); a draw relative to the
    larger of itself and the type's fill (a draw floored near 0 is a difference of nearly equal numbers)."""
    worst = 0.0
    assert a.keys() == b.keys()
    for t in a:
        for key in ("fill_t_ha", "spread_t_ha", "observed_ha_px", "draws"):
            if a[t][key] is None or b[t][key] is None:
                assert a[t][key] is None and b[t][key] is None, (t, key)
                continue
            x, y = np.asarray(a[t][key], np.float64), np.asarray(b[t][key], np.float64)
            scale = np.maximum(np.abs(y), abs(b[t]["fill_t_ha"]) if key == "draws" else 1e-300)
            worst = max(worst, float(np.max(np.abs(x - y) / scale)))
    return worst


def test_type_fill_is_the_function_before_the_move_bit_for_bit_and_the_hand_computed_means():
    models = make_models()
    frac, preds = make_rasters(300, 140)
    assert (frac[0] > 0).sum() > 32_768  # G1 spans two chunks of CHUNK_PIXELS: the chunked sums are exercised
    fill = type_fill(models, TYPES, frac, preds, seed=SEED)
    assert_same_bits(fill, type_fill_before(models, TYPES, frac, preds, seed=SEED))
    assert_same_bits(fill, type_fill_from_sums([type_fill_sums(models, TYPES, frac, preds)], models, TYPES, SEED))
    assert set(fill) == {"G1", "G2", "GATE", "NONE"}  # TAB needs no imagery: no fill
    assert fill["NONE"] == {"fill_t_ha": None, "spread_t_ha": None, "observed_ha_px": 0.0, "draws": None}
    assert "NONE" not in fill_values(fill)  # its land stays unknown, never 0

    # independent: numpy over the whole grid at once (no chunks, no model choice machinery)
    nd, can = preds["ndvi"].astype(np.float64), preds["canopy"].astype(np.float64)
    seen = np.isfinite(nd)
    m = models["types"]

    def expect(t, w, v, vb):
        z = np.random.default_rng([SEED, zlib.crc32(t.encode()), 7]).standard_normal(B)
        mean = np.sum(w * v) / np.sum(w)
        sd = math.sqrt(np.sum(w * (v - mean) ** 2) / np.sum(w))
        return mean, sd, np.sum(w), np.maximum((vb * w).sum(axis=1) / np.sum(w) + sd * z, 0.0)

    f = frac[0].astype(np.float64)
    on = (f > 0) & seen
    b1 = np.array(m["G1"]["bootstrap"])
    want = {"G1": expect("G1", f[on], np.maximum(1 + 10 * nd[on], 0),
                         np.maximum(b1[:, :1] + b1[:, 1:] * nd[on], 0))}
    f = frac[1].astype(np.float64)
    main, comp = (f > 0) & seen & np.isfinite(can), (f > 0) & seen & ~np.isfinite(can)
    b2, bc = np.array(m["G2"]["bootstrap"]), np.array(m["G2"]["ndvi_only"]["bootstrap"])
    v = np.concatenate([np.maximum(2 + 8 * nd[main] + 20 * can[main], 0), np.maximum(4 + 12 * nd[comp], 0)])
    vb = np.concatenate([np.maximum(b2[:, :1] + b2[:, 1:2] * nd[main] + b2[:, 2:] * can[main], 0),
                         np.maximum(bc[:, :1] + bc[:, 1:] * nd[comp], 0)], axis=1)
    want["G2"] = expect("G2", np.concatenate([f[main], f[comp]]), v, vb)
    f = frac[3].astype(np.float64)
    on = (f > 0) & seen
    gate = (nd[on] >= 0.3).astype(float)
    want["GATE"] = expect("GATE", f[on], 12.0 * gate, np.array(m["GATE"]["bootstrap"]) * gate)
    assert main.sum() > 1000 and comp.sum() > 1000 and 0 < gate.mean() < 1  # both branches, the gate both ways
    for t, (mean, sd, w, draws) in want.items():
        assert fill[t]["fill_t_ha"] == pytest.approx(mean, rel=1e-12), t
        assert fill[t]["spread_t_ha"] == pytest.approx(sd, rel=1e-9), t  # E[v²] − mean² loses a few digits
        assert fill[t]["observed_ha_px"] == pytest.approx(w, rel=1e-12), t
        np.testing.assert_allclose(fill[t]["draws"], draws, rtol=1e-9, err_msg=t)
    # a sanity number someone could get wrong: G1's fill is not its mean over all its pixels (NaN NDVI excluded)
    assert 4.0 < fill["G1"]["fill_t_ha"] < 5.5 and fill["GATE"]["fill_t_ha"] < 12.0


def uneven_tiles(rows: int, cols: int) -> list[Tile]:
    """A hand-cut partition: row cuts 0, 7, 150, rows; column cuts 0, 61, cols (tiles of 7 to 150 rows)."""
    rcuts, ccuts = [0, 7, 150, rows], [0, 61, cols]
    return [Tile(f"r{i:03d}c{j:03d}", r0, c0, r1 - r0, c1 - c0)
            for i, (r0, r1) in enumerate(zip(rcuts[:-1], rcuts[1:], strict=True))
            for j, (c0, c1) in enumerate(zip(ccuts[:-1], ccuts[1:], strict=True))]


@pytest.mark.parametrize("cut", ["hand", "grid64"])
def test_the_sums_of_uneven_tiles_give_the_whole_grid_fill(cut):
    models = make_models()
    frac, preds = make_rasters(300, 140)
    grid = Grid("EPSG:32651", Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 3_600_000.0), width=140, height=300)
    tiles = uneven_tiles(300, 140) if cut == "hand" else grid.tiles(64)
    assert sum(t.height * t.width for t in tiles) == 300 * 140
    parts = [json.loads(json.dumps(type_fill_sums(models, TYPES, frac[:, t.rows, t.cols],
                                                  {k: v[t.rows, t.cols] for k, v in preds.items()})))
             for t in tiles]  # through JSON, as the tile files carry them
    tiled = type_fill_from_sums(parts, models, TYPES, SEED)
    whole = type_fill(models, TYPES, frac, preds, seed=SEED)
    diff = max_rel_diff(tiled, whole)
    assert diff < 1e-12, diff
    # the tiles differ from each other (a tile's own fill would be wrong): their G1 means spread
    means = [p["G1"]["v_sum"] / p["G1"]["w_sum"] for p in parts if p["G1"]["w_sum"] > 0]
    assert max(means) - min(means) > 0.05


# --- the rules' runners on GeoTIFFs -------------------------------------------------------------------------

SHAPE = (37, 29)
SIZE_PX = 16  # tiles of 16 × 16, 16 × 13, 16 × 16, 16 × 13, 5 × 16, 5 × 13


def write_case(tmp_path: Path) -> tuple[Path, dict[str, Path], Path, Path, np.ndarray, dict]:
    frac, preds = make_rasters(*SHAPE, seed=2)
    grid = Grid("EPSG:32651", Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 3_600_000.0), width=SHAPE[1], height=SHAPE[0])
    fpath = io.write_raster(tmp_path / "fractions.tif", frac, grid, band_names=TYPES)
    ppaths = {k: io.write_raster(tmp_path / f"{k}.tif", v[None], grid, band_names=[k]) for k, v in preds.items()}
    ppaths["fvc"] = tmp_path / "not_used.tif"  # a predictor no model uses is not read
    models = io.write_json(tmp_path / "models.json", make_models())
    grid_json = tmp_path / "grid.json"
    grid_json.write_text(json.dumps(grid.to_dict()), encoding="utf-8")
    return models, ppaths, fpath, grid_json, frac, preds


def run_tiled(tmp_path: Path, models, ppaths, fpath, grid_json, year=2024) -> tuple[dict, list[Path]]:
    grid = Grid.read(grid_json)
    paths = []
    for t in grid.tiles(SIZE_PX):
        p = tmp_path / "tiles" / f"fill_{t.id}.json"
        run_fill_tile(models, ppaths, fpath, p, types=TYPES, year=year, tile_id=t.id, size_px=SIZE_PX)
        paths.append(p)
    return run_fill_gather(paths, models, grid_json, tmp_path / "tiled_fill.json", types=TYPES, year=year,
                           size_px=SIZE_PX), paths


def test_rule_fill_untiled_and_tiled_on_geotiffs(tmp_path):
    models, ppaths, fpath, grid_json, frac, preds = write_case(tmp_path)
    out = tmp_path / "fill.json"
    fill = run_fill(models, ppaths, fpath, out, types=TYPES, year=2024)
    direct = type_fill(make_models(), TYPES, io.read_raster(fpath), {k: io.read_raster(ppaths[k]) for k in preds},
                       seed=SEED)
    assert_same_bits(fill, direct)  # the untiled rule is type_fill of the rasters, bit for bit
    assert_same_bits(read_fill(out), fill)  # exact round trip through fill.json

    record = json.loads(out.read_text())
    assert record["year"] == 2024 and record["seed"] == SEED and record["format"] == 1
    assert record["models_sha256"] == content_sha256(make_models()) == models_digest(make_models())
    assert record["types"]["NONE"] == {"fill_t_ha": None, "spread_t_ha": None, "observed_ha_px": 0.0, "draws": None}
    assert "null" in out.read_text() and len(record["types"]["G1"]["draws"]) == B

    tiled, paths = run_tiled(tmp_path, models, ppaths, fpath, grid_json)
    diff = max_rel_diff(tiled, fill)
    assert diff < 1e-12, diff
    assert_same_bits(read_fill(tmp_path / "tiled_fill.json"), tiled)
    # each tile file holds its window's sums: the corner tile's, by the array function on that window
    corner = json.loads(paths[-1].read_text())
    assert corner["tile"] == "r002c001"
    want = type_fill_sums(make_models(), TYPES, frac[:, 32:37, 16:29], {k: v[32:37, 16:29] for k, v in preds.items()})
    assert corner["types"] == json.loads(json.dumps(want))


def test_stale_fill_files_and_missing_tiles_are_refused(tmp_path):
    models, ppaths, fpath, grid_json, _, _ = write_case(tmp_path)
    out = tmp_path / "fill.json"
    run_fill(models, ppaths, fpath, out, types=TYPES, year=2024)
    current = make_models()
    read_fill(out, models=current, year=2024)  # its own models and year: accepted
    other = make_models()
    other["types"]["G1"]["params"]["b"] = 11.0
    with pytest.raises(InputDataError, match=r"fill\.json: field 'models_sha256'.*other models"):
        read_fill(out, models=other)
    with pytest.raises(InputDataError, match=r"field 'year' is 2024, expected 2025"):
        read_fill(out, year=2025)
    write_fill(tmp_path / "old.json", {}, year=2024, seed=0, models_sha256="x")
    rec = json.loads((tmp_path / "old.json").read_text())
    (tmp_path / "old.json").write_text(json.dumps({**rec, "format": 0}))
    with pytest.raises(InputDataError, match="format found: 0"):
        read_fill(tmp_path / "old.json")

    _, paths = run_tiled(tmp_path, models, ppaths, fpath, grid_json)
    with pytest.raises(InputDataError, match=r"needs the sums of 6 tiles; got 5 \(missing \['r001c000'\]\)"):
        run_fill_gather([p for p in paths if "r001c000" not in p.name], models, grid_json, tmp_path / "x.json",
                        types=TYPES, year=2024, size_px=SIZE_PX)
    with pytest.raises(InputDataError, match="r000c001"):  # the same tile twice
        run_fill_gather([paths[0], paths[1], paths[1]], models, grid_json, tmp_path / "x.json", types=TYPES,
                        year=2024, size_px=SIZE_PX)
    io.write_json(models, other)  # models.json refitted after the tiles: every tile file is stale
    with pytest.raises(InputDataError, match=r"fill_r000c000\.json: field 'models_sha256'"):
        run_fill_gather(paths, models, grid_json, tmp_path / "x.json", types=TYPES, year=2024, size_px=SIZE_PX)
    assert not (tmp_path / "x.json").exists()


def test_a_predictor_on_another_grid_is_refused(tmp_path):
    models, ppaths, fpath, _, _, _ = write_case(tmp_path)
    small = Grid("EPSG:32651", Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 3_600_000.0), width=20, height=20)
    ppaths["canopy"] = io.write_raster(tmp_path / "canopy_small.tif", np.zeros((1, 20, 20), np.float32), small,
                                       band_names=["canopy"])
    with pytest.raises(InputDataError, match=r"canopy_small\.tif: a 20 × 20 raster.*another grid"):
        run_fill(models, ppaths, fpath, tmp_path / "fill.json", types=TYPES, year=2024)


@pytest.mark.slow
@pytest.mark.workflow
@pytest.mark.large
def test_rules_fill_and_zone_coverage_tile_through_snakemake_on_the_baseline_run(baseline_run, tmp_path):
    """The baseline run's fill.json (rule fill, untiled) is type_fill of its rasters bit for bit; on a copy of the run
    with tiles.size_px 64, Snakemake's fill_tile jobs and rule fill_gather give the same fill within 1e-12, and
    zone_coverage_tile the whole grid's parcel coverage columns of its tile (only these rules are allowed to run:
    every other file is the baseline's)."""
    import shutil

    import yaml

    from greensink.model import used_predictors
    from test_coverage_tiles import tile_columns
    from test_workflow import snakemake

    run = tmp_path / "run"
    shutil.copytree(baseline_run, run, symlinks=True)
    cfg = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    year = sorted(cfg["years"])[-1]
    models = io.read_json(run / f"results/{year}/model/models.json")
    fractions = run / "results/types/fractions.tif"
    if not fractions.exists():
        fractions = run / f"results/types/{year}/fractions.tif"
    types = io.band_names(fractions)
    used = {q: io.read_raster(run / f"results/{year}/{q}.tif") for q in used_predictors(models, types)}
    direct = type_fill(models, types, io.read_raster(fractions, bands=list(range(1, len(types) + 1))), used,
                       seed=int(models.get("seed", 0)))
    untiled = read_fill(run / f"results/{year}/fill.json", models=models, year=year)
    assert_same_bits(untiled, direct)
    assert any(f["fill_t_ha"] is not None for f in untiled.values())

    cfg["tiles"] = {**(cfg.get("tiles") or {}), "size_px": 64}
    (run / "config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    (run / f"results/{year}/fill.json").unlink()
    snakemake(run, f"results/{year}/fill.json", "results/zones/tiles/parcel_coverage_r001c001.npz",
              "--allowed-rules", "fill_tile", "fill_gather", "zone_coverage_tile", "--rerun-triggers", "mtime")
    grid = Grid.read(run / "results/zones/grid.json")
    tiles = grid.tiles(64)
    assert len(tiles) > 4 and all((run / f"results/{year}/tiles/fill_{t.id}.json").is_file() for t in tiles)
    diff = max_rel_diff(read_fill(run / f"results/{year}/fill.json", models=models, year=year), untiled)
    assert diff < 1e-12, diff

    t = grid.tile("r001c001", 64)
    whole = io.read_sparse(run / "results/zones/parcel_coverage.npz")
    tile_m = io.read_sparse(run / "results/zones/tiles/parcel_coverage_r001c001.npz")
    ref = whole[:, tile_columns(t, grid.width)]
    assert tile_m.shape == ref.shape and tile_m.nnz > 0
    gap = abs(tile_m - ref)
    assert (gap.max() if gap.nnz else 0.0) < 1e-14
