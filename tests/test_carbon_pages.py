"""The carbon stage without numpy's huge-page advice (greensink.carbon.maps.small_pages): checked on the kernel's own
record of each mapping (/proc/self/smaps, VmFlags ``hg`` = madvise(MADV_HUGEPAGE)), numpy's setting restored after
the stage and after an error, the user's NUMPY_MADVISE_HUGEPAGE respected, and the map the same either way."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

from greensink.carbon import carbon_map_streamed
from greensink.carbon.maps import HUGEPAGE_ENV, _hugepage_setter, small_pages

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_carbon_stream import TYPES, make_models, write_inputs  # noqa: E402

BIG = 2 << 30  # bytes, never touched (np.empty): above numpy's 4 MiB threshold for the advice and far above glibc's
# largest mmap threshold (32 MiB) and any free chunk a test worker's heap may hold, so each such array is a fresh
# mapping of its own. A 40 MiB probe failed once in the full suite: a long-lived worker's heap had a freed chunk that
# large in a region advised earlier (the flag stays with the region), and malloc served the probe from it.


def _probe() -> np.ndarray:
    """A fresh numpy array of BIG bytes (address space only: no page is touched)."""
    return np.empty(BIG // 8)


def _advised(arr: np.ndarray) -> bool:
    """Whether the kernel holds the mapping in the middle of ``arr`` under madvise(MADV_HUGEPAGE)."""
    addr = arr.ctypes.data + arr.nbytes // 2
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and not head.endswith(":"):
            lo, hi = (int(v, 16) for v in head.split("-"))
            inside = lo <= addr < hi
        elif inside and line.startswith("VmFlags:"):
            return "hg" in line.split()[1:]
    raise AssertionError(f"no mapping holds address {addr:#x}")


def _numpy_advises() -> bool:
    """Whether this numpy, kernel and process give a fresh big array the advice at all (else nothing to test)."""
    setter = _hugepage_setter()
    if setter is None or not Path("/proc/self/smaps").exists():
        return False
    before = setter(True)
    try:
        return _advised(_probe())
    finally:
        setter(before)


needs_advice = pytest.mark.skipif(not _numpy_advises(), reason="numpy gives no huge-page advice here "
                                  "(not Linux, no transparent huge pages, or no runtime switch)")


def _setting() -> bool:
    setter = _hugepage_setter()
    now = setter(True)
    setter(now)
    return now


@needs_advice
def test_small_pages_switches_the_advice_off_and_restores_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(HUGEPAGE_ENV, raising=False)
    assert _setting() is True  # numpy's default
    assert _advised(_probe())  # the control: outside, the kernel records the advice
    with small_pages() as off:
        assert off is True
        assert not _advised(_probe())
        assert _setting() is False
    assert _setting() is True
    assert _advised(_probe())
    with pytest.raises(RuntimeError, match="inside"), small_pages():
        raise RuntimeError("an error inside the stage")
    assert _setting() is True


@needs_advice
def test_the_users_numpy_setting_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HUGEPAGE_ENV, "1")
    with small_pages() as off:
        assert off is False
        assert _advised(_probe())


@needs_advice
def test_the_carbon_stage_runs_without_the_advice_and_gives_the_same_map(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    models = make_models()
    fpath, ppaths, _, _ = write_inputs(tmp_path)
    seen = []

    def progress(_i: int, _n: int) -> None:  # called inside the stage, after each strip
        seen.append(_advised(_probe()))

    outs = {}
    for label, env in (("off", None), ("numpy's", "1")):
        if env is None:
            monkeypatch.delenv(HUGEPAGE_ENV, raising=False)
        else:
            monkeypatch.setenv(HUGEPAGE_ENV, env)
        seen.clear()
        out = tmp_path / f"carbon_{label}.tif"
        stats = carbon_map_streamed(models, TYPES, fpath, ppaths, out, strip_rows=8, progress=progress,
                                    interval_method="tabulated")
        outs[label] = (hashlib.sha256(out.read_bytes()).hexdigest(), stats)
        assert seen == [env is not None] * 3  # 23 rows in strips of 8: the advice as chosen in every strip
        assert _setting() is True  # restored after the stage
    assert outs["off"] == outs["numpy's"]


@needs_advice
def test_the_carbon_mosaic_runs_without_the_advice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule carbon_mosaic (run_carbon_mosaic) too: the real mosaic_files, watched from a wrapper around it."""
    import json

    import greensink.carbon.run as carbon_run
    from greensink import io
    from greensink.carbon import run_carbon, run_carbon_mosaic
    from test_tiles_stages import carbon_case

    monkeypatch.delenv(HUGEPAGE_ENV, raising=False)
    models, preds, fpath, sepath, types = carbon_case(tmp_path)
    kw = {"types": types, "year": 2024, "seed": 4, "uncertainty": {"pixel_interval": "tabulated"}}
    whole = tmp_path / "whole.tif"
    run_carbon(models, preds, fpath, sepath, whole, tmp_path / "whole.json", **kw)
    grid = io.read_grid(fpath)
    tiles = grid.tiles(8)
    paths = [tmp_path / f"carbon_{t.id}.tif" for t in tiles]
    jsons = [tmp_path / f"carbon_{t.id}.json" for t in tiles]
    for t, p, j in zip(tiles, paths, jsons, strict=True):
        run_carbon(models, preds, fpath, sepath, p, j, tile_id=t.id, size_px=8, **kw)
    grid_json = tmp_path / "grid.json"
    grid_json.write_text(json.dumps(grid.to_dict()), encoding="utf-8")
    real, seen = carbon_run.mosaic_files, []

    def watched(*args, **kwargs):
        seen.append(_advised(_probe()))
        return real(*args, **kwargs)

    monkeypatch.setattr(carbon_run, "mosaic_files", watched)
    out = tmp_path / "mosaic.tif"
    run_carbon_mosaic(paths, jsons, grid_json, out, tmp_path / "mosaic.json", size_px=8)
    assert seen == [False]
    assert _setting() is True
    assert out.read_bytes() == whole.read_bytes()
