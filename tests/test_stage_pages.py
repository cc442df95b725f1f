"""numpy's huge-page advice off in the composite stage too (greensink.memory.small_pages on run_composite; the
carbon stage's checks are tests/test_carbon_pages.py): the kernel's own record (/proc/self/smaps, VmFlags ``hg``)
of a big array made inside the stage, numpy's setting restored afterwards, the user's NUMPY_MADVISE_HUGEPAGE
respected, and the composite's file the same bytes either way, its median checked against numpy on the
generated DNs (scenes on the grid's own lattice, so reading is the identity)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

import greensink.composite as composite
from greensink import io
from greensink.grid import Grid
from greensink.ingest import Scene
from greensink.memory import HUGEPAGE_ENV

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_carbon_pages import _advised, _probe, _setting, needs_advice  # noqa: E402

GRID = Grid("EPSG:32651", Affine(10.0, 0.0, 350000.0, 0.0, -10.0, 3460100.0), width=23, height=19)
CLEAR, MASKED = (4, 5, 6), (3, 8, 9, 10)


def _tif(path: Path, arr: np.ndarray) -> str:
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=1, dtype=arr.dtype,
                       crs=GRID.crs, transform=GRID.transform) as dst:
        dst.write(arr, 1)
    return str(path)


def _scenes(folder: Path, n: int = 5) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """scenes.json (rule ingest's record) and grid.json of ``n`` Sentinel-2 L2A-like scenes with random DNs and SCL
    classes, and the red DNs and clear masks as (scene, row, col) arrays."""
    rng = np.random.default_rng(7)
    shape = (n, *GRID.shape)
    red = rng.integers(200, 3000, shape).astype(np.uint16)
    nir = rng.integers(1500, 6000, shape).astype(np.uint16)
    scl = np.where(rng.random(shape) < 0.35, rng.choice(MASKED, shape), rng.choice(CLEAR, shape)).astype(np.uint8)
    scenes = [Scene(f"s{i}", f"2021-0{5 + i}-01", "sentinel2-l2a", _tif(folder / f"red{i}.tif", red[i]),
                    _tif(folder / f"nir{i}.tif", nir[i]), _tif(folder / f"scl{i}.tif", scl[i]), 1e-4, 0.0)
              for i in range(n)]
    scenes_json = folder / "scenes.json"
    scenes_json.write_text(json.dumps({"scenes": [s.to_dict() for s in scenes]}), encoding="utf-8")
    grid_json = folder / "grid.json"
    grid_json.write_text(json.dumps(GRID.to_dict()), encoding="utf-8")
    return scenes_json, grid_json, red, np.isin(scl, CLEAR)


@needs_advice
def test_the_composite_stage_runs_without_the_advice_and_gives_the_same_file(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    scenes_json, grid_json, red, clear = _scenes(tmp_path)
    real, seen = composite.composite_to_file, []

    def watched(*args, **kwargs):  # inside run_composite, where the stage makes its arrays
        seen.append(_advised(_probe()))
        return real(*args, **kwargs)

    monkeypatch.setattr(composite, "composite_to_file", watched)
    files = {}
    for label, env in (("off", None), ("numpy's", "1")):
        if env is None:
            monkeypatch.delenv(HUGEPAGE_ENV, raising=False)
        else:
            monkeypatch.setenv(HUGEPAGE_ENV, env)
        seen.clear()
        out = tmp_path / f"composite_{label}.tif"
        composite.run_composite(scenes_json, grid_json, out, method="median", block_rows=8, compress="zstd")
        assert seen == [env is not None]  # the advice off in the stage unless the user set numpy's switch
        assert _setting() is True  # numpy's setting restored after the stage
        files[label] = out.read_bytes()
    assert files["off"] == files["numpy's"]
    got = io.read_raster(tmp_path / "composite_off.tif")[0].astype(np.float64)
    want = np.full(GRID.shape, np.nan)
    for r, c in np.ndindex(GRID.shape):  # the median reflectance of each pixel's clear observations
        ok = clear[:, r, c]
        if ok.any():
            want[r, c] = np.median(red[ok, r, c] * 1e-4)
    assert np.isnan(got).sum() == (~clear.any(axis=0)).sum()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7, equal_nan=True)
