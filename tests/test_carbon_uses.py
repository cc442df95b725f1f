"""carbon.json's use counts recorded by the carbon map's own pass (greensink.carbon.stats.UseCodes) against
the separate pass they replace (model_use_counts / model_use_stats, kept as the reference), on hand-built
rasters with typed, untyped, unobserved (NaN NDVI), gated (ndvi_min), companion-served, unserved,
floored and out-of-range pixels, through every path that evaluates a curve: the exact map (pixel_function),
the tabulated map's one-type loop, its pixels solved again from their draws, and its pair tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

import greensink.carbon.pixels as pixels_mod
import greensink.carbon.stats as stats_mod
from greensink import io
from greensink.carbon import (
    IntervalTable,
    carbon_map_streamed,
    model_use_counts,
    model_use_stats,
    tabulated_map,
    use_stats_from_counts,
)
from greensink.carbon.stats import UseCodes
from greensink.grid import Grid, Tile
from greensink.uncertainty import Noise, NoiseSpec, ResidualField

ROWS, COLS = 29, 21
B = 40
TYPES = ["G1", "G2", "G3", "G4", "GATE", "CONST"]
GRID = Grid(crs="EPSG:32651", transform=Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 3_500_290.0), width=COLS, height=ROWS)


def _draws(rng: np.random.Generator, centre: list[float], spread: list[float]) -> list[list[float]]:
    return (np.asarray(centre) + rng.normal(size=(B, len(centre))) * np.asarray(spread)).tolist()


def make_models() -> dict:
    """G1 on NDVI + height with an NDVI-only companion; G2-G3 one-predictor curves; G4 on NDVI + FVC without
    a companion (unserved where FVC is NaN); GATE a linear curve crossing 0 behind an NDVI gate; CONST an
    ungated table density (serves unobserved pixels too: they are not counted)."""
    rng = np.random.default_rng(7)
    return {"types": {
        "G1": {"form": "linear", "predictors": ["ndvi", "height"], "params": {"a": -2.0, "b_ndvi": 30.0, "b_height": 1.5},
               "bootstrap": _draws(rng, [-2.0, 30.0, 1.5], [1.0, 3.0, 0.2]), "source": "plots",
               "predictor_ranges": {"ndvi": [0.2, 0.85], "height": [1.0, 20.0]},
               "ndvi_only": {"form": "linear", "predictors": ["ndvi"], "params": {"a": -4.0, "b": 40.0},
                             "bootstrap": _draws(rng, [-4.0, 40.0], [1.0, 4.0]), "predictor_ranges": {"ndvi": [0.1, 0.8]}}},
        "G2": {"form": "power", "params": {"a": 25.0, "b": 1.3}, "bootstrap": _draws(rng, [25.0, 1.3], [3.0, 0.1]),
               "x_range": [0.3, 0.9], "source": "plots"},
        "G3": {"form": "exponential", "params": {"a": 0.8, "b": 3.0}, "bootstrap": _draws(rng, [0.8, 3.0], [0.1, 0.3]),
               "x_range": [0.0, 0.7], "source": "plots"},
        "G4": {"form": "logarithmic", "predictors": ["ndvi", "fvc"], "params": {"a": 10.0, "b_ndvi": 6.0, "b_fvc": 2.0},
               "bootstrap": _draws(rng, [10.0, 6.0, 2.0], [1.0, 1.0, 0.5]), "source": "plots",
               "predictor_ranges": {"ndvi": [0.2, 0.9], "fvc": [0.1, 1.0]}},
        "GATE": {"form": "linear", "params": {"a": -3.0, "b": 20.0}, "bootstrap": _draws(rng, [-3.0, 20.0], [0.5, 2.0]),
                 "x_range": [0.25, 0.8], "source": "plots", "ndvi_min": 0.3},
        "CONST": {"form": "constant", "predictors": ["ndvi"], "params": {"c": 12.0},
                  "bootstrap": _draws(rng, [12.0], [2.0]), "source": "coefficients"},
    }}


def make_rasters() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(11)
    n = len(TYPES)
    frac = rng.uniform(0, 1, (n, ROWS, COLS)) * (rng.uniform(size=(n, ROWS, COLS)) < 0.35)
    frac /= np.maximum(frac.sum(axis=0), 1.0)
    frac[:, 5:9, 3:11] = 0.0  # untyped
    single = rng.uniform(size=(ROWS, COLS)) < 0.4  # many pixels of one type (the tabulated one-type loop)
    owner = rng.integers(0, n, (ROWS, COLS))
    for k in range(n):
        frac[k] = np.where(single, np.where(owner == k, rng.uniform(0.05, 1.0, (ROWS, COLS)), 0.0), frac[k])
    ndvi = rng.uniform(-0.3, 0.95, (ROWS, COLS))
    ndvi[rng.uniform(size=ndvi.shape) < 0.08] = np.nan
    ndvi[20:23, :] = np.nan  # a cloud
    fvc = np.clip((ndvi + 0.1) / 0.9, 0, 1)
    fvc[:, 15:] = np.nan
    height = rng.uniform(0.0, 25.0, (ROWS, COLS))
    height[rng.uniform(size=height.shape) < 0.3] = np.nan
    return frac.astype(np.float32), {q: a.astype(np.float32) for q, a in (("ndvi", ndvi), ("fvc", fvc),
                                                                           ("height", height))}


def _spec(on: bool = True) -> NoiseSpec:
    fld = ResidualField(nugget=0.02, psill=0.015, range_m=150.0, n_plots=80, method="test")
    return NoiseSpec(seed=3, year=2024, residual=fld if on else None, ndvi=False, position_sd_m=1.5 if on else 0.0,
                     resolution_m=10.0, width=COLS, height=ROWS)


def _files(tmp_path: Path, frac: np.ndarray, preds: dict[str, np.ndarray]) -> tuple[Path, dict[str, Path]]:
    f = io.write_raster(tmp_path / "fractions.tif", frac, GRID, band_names=TYPES)
    return f, {q: io.write_raster(tmp_path / f"{q}.tif", a, GRID, band_names=[q]) for q, a in preds.items()}


def test_the_case_exercises_every_count() -> None:
    models = make_models()
    frac, preds = make_rasters()
    counts = model_use_counts(models, TYPES, frac, preds)
    assert counts["G1"]["served"][1] > 0 and counts["G1"]["served"][0] > 0  # model and companion
    assert counts["G4"]["unserved"] > 0
    for t in TYPES:
        assert counts[t]["pixels"] > counts[t]["observed"] > 0
    for t in ("G1", "GATE"):
        assert counts[t]["floored"] > 0
    for t in ("G1", "G2", "G3", "G4", "GATE"):
        assert counts[t]["outside"] > 0
    flat = frac.reshape(len(TYPES), -1)
    n_of = (flat > 0).sum(axis=0)
    assert (n_of == 1).sum() > 100 and (n_of == 2).sum() > 50 and (n_of > 2).sum() > 10


def test_use_codes_count_like_model_use_counts_by_hand() -> None:
    # 1 type, 5 pixels: NaN NDVI (typed, unobserved), untyped, in range, outside (0.95 > 0.9), floored (value < 0)
    models = {"types": {"T": {"form": "linear", "params": {"a": -2.0, "b": 10.0}, "bootstrap": [[-2.0, 10.0]],
                              "x_range": [0.1, 0.9], "source": "plots"}}}
    frac = np.array([[[1.0, 0.0, 0.5, 1.0, 0.2]]], np.float32)
    ndvi = np.array([np.nan, 0.5, 0.5, 0.95, 0.15])
    uses = UseCodes(models, ["T"], ndvi)
    served = np.array([2, 3, 4])  # what the map serves: observed typed pixels
    raw = -2.0 + 10.0 * ndvi[served]
    uses.record(0, 0, served, ("ndvi",), ndvi[served], raw)
    uses.record(0, 0, served[:1], ("ndvi",), ndvi[served[:1]], raw[:1])  # evaluated again: counted once
    expect = {"T": {"pixels": 4, "observed": 3, "outside": 1, "floored": 1, "served": [3], "unserved": 0}}
    assert uses.counts(frac) == expect == model_use_counts(models, ["T"], frac, ndvi)


@pytest.mark.parametrize("method", ["exact", "tabulated"])
@pytest.mark.parametrize("strip_rows", [1, 6, None])
def test_carbon_json_equals_the_separate_pass(tmp_path: Path, method: str, strip_rows: int | None) -> None:
    models = make_models()
    frac, preds = make_rasters()
    fpath, ppaths = _files(tmp_path, frac, preds)
    got = carbon_map_streamed(models, TYPES, fpath, ppaths, tmp_path / "carbon.tif", strip_rows=strip_rows,
                              chunk_pixels=37, interval_method=method, noise=_spec())
    reference = {"total_t": got["total_t"], "typed_pixels": got["typed_pixels"],
                 "types": model_use_stats(models, TYPES, frac, preds)}  # the previous function over the whole grid
    assert json.dumps(got) == json.dumps(reference)  # carbon.json's text, byte for byte
    io.write_json(tmp_path / "new.json", got)
    io.write_json(tmp_path / "old.json", reference)
    assert (tmp_path / "new.json").read_bytes() == (tmp_path / "old.json").read_bytes()


@pytest.mark.parametrize("method", ["exact", "tabulated"])
def test_a_tiles_use_counts_equal_the_separate_pass_on_its_window(tmp_path: Path, method: str) -> None:
    models = make_models()
    frac, preds = make_rasters()
    fpath, ppaths = _files(tmp_path, frac, preds)
    summed: dict = {}
    for r0, c0, h, w in ((0, 0, 16, 16), (0, 16, 16, COLS - 16), (16, 0, ROWS - 16, 16), (16, 16, ROWS - 16, COLS - 16)):
        tile = Tile(id=f"r{r0}c{c0}", row_off=r0, col_off=c0, height=h, width=w)
        got = carbon_map_streamed(models, TYPES, fpath, ppaths, tmp_path / f"t{r0}_{c0}.tif", strip_rows=5,
                                  interval_method=method, noise=_spec(), tile=tile)
        window = {q: a[r0:r0 + h, c0:c0 + w] for q, a in preds.items()}
        assert got["use_counts"] == model_use_counts(models, TYPES, frac[:, r0:r0 + h, c0:c0 + w], window)
        stats_mod.add_use_counts(summed, got["use_counts"])
    assert use_stats_from_counts(summed) == model_use_stats(models, TYPES, frac, preds)


def test_pair_tables_record_the_counts_too() -> None:
    # the tabulated map through pair tables (grids of >= 16 Mpx in the stage; pairs=True here), one strip
    models = make_models()
    types = ["G2", "G3", "CONST"]  # one-predictor curves and a constant: pair-tabulable
    models = {"types": {t: models["types"][t] for t in types}}
    frac, preds = make_rasters()
    frac = frac[[1, 2, 5]]
    noise = Noise(_spec(), B)
    table = IntervalTable(models, types, noise, 90.0, pairs=True)
    uses = UseCodes(models, types, preds["ndvi"])
    tabulated_map(models, types, frac, {"ndvi": preds["ndvi"]}, table, noise=noise, uses=uses)
    assert any(len(key) == 5 for key in table._tables)  # pair tables were used
    assert uses.counts(frac) == model_use_counts(models, types, frac, preds["ndvi"])


def test_the_curve_is_evaluated_once_per_served_pixel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a counter around the real predict: the stage evaluates each (type, pixel) model value once (exact path,
    # no noise: the point value once, the draws once) and never calls the separate counting pass
    models = make_models()
    frac, preds = make_rasters()
    fpath, ppaths = _files(tmp_path, frac, preds)
    real = pixels_mod.predict
    point = []

    def counting(form, params, x, preds_=None):
        if np.ndim(params) == 1:
            point.append(int(np.size(x) // max(len(preds_ or ("ndvi",)), 1)))
        return real(form, params, x, preds_)

    def forbidden(*_args, **_kwargs):
        raise AssertionError("the separate use-count pass ran")

    monkeypatch.setattr(pixels_mod, "predict", counting)
    monkeypatch.setattr(stats_mod, "predict", forbidden)  # the separate pass's curve evaluation
    got = carbon_map_streamed(models, TYPES, fpath, ppaths, tmp_path / "carbon.tif", strip_rows=7)
    monkeypatch.undo()
    reference = model_use_counts(models, TYPES, frac, preds)
    # served (type, pixel) pairs: observed ones counted in carbon.json, plus CONST's unobserved typed pixels
    ndvi = preds["ndvi"].reshape(-1)
    const_unobserved = int(((frac[TYPES.index("CONST")].reshape(-1) > 0) & ~np.isfinite(ndvi)).sum())
    served = sum(sum(c["served"]) for c in reference.values()) + const_unobserved
    assert sum(point) == served
    assert got["types"] == use_stats_from_counts(reference)
