"""Tests of greensink.lazy (the scenes as a lazy dask array) and the dask engine of greensink.composite.

The stack opens no file until computed, and each chunk is read_scene_window of its window (edge
chunks included). The dask composite equals the windowed composite_to_file bit for bit, whatever
the chunk size and the number of threads, also for scenes warped from other lattices and CRSs.
Scenes are the tiny Sentinel-2 scenes of tests/test_composite.py.
"""

from __future__ import annotations

import shutil
import threading
import time

import numpy as np
import pytest
import rasterio
import yaml
from affine import Affine
from rasterio.windows import Window

from greensink import io, lazy
from greensink.composite import BANDS, composite_dask, composite_dask_to_file, composite_to_file, composite_year
from greensink.errors import InputDataError
from greensink.grid import Grid
from greensink.ingest import Scene, read_scene_window
from greensink.lazy import scene_stack
from greensink.workflow import composite_threads
from scenes_on_lattices import scenes_on_lattices
from test_composite import GRID, make_scenes, scl_layers


def moved(scenes: list[Scene], src, dst) -> list[Scene]:
    """The scenes with their files in folder ``dst`` instead of ``src`` (not copied)."""
    def swap(p):
        return None if p is None else p.replace(str(src), str(dst))
    return [Scene(s.scene_id, s.datetime, s.sensor, swap(s.red), swap(s.nir), swap(s.quality), s.scale, s.offset)
            for s in scenes]


def test_scene_stack_opens_no_file_until_computed(tmp_path, monkeypatch):
    made = tmp_path / "made"
    made.mkdir()
    scenes = make_scenes(made, scl_layers())
    later = tmp_path / "later"  # does not exist yet when the graph is built
    stack = scene_stack(moved(scenes, made, later), GRID, chunk_px=4)
    comp = composite_dask(moved(scenes, made, later), GRID, "median", chunk_px=4)
    assert stack.shape == (3, 3, GRID.height, GRID.width) and stack.dtype == np.float32
    assert stack.chunks == ((1, 1, 1), (3,), (4, 4, 2), (4, 4))
    assert comp.shape == (3, GRID.height, GRID.width) and comp.chunks == ((3,), (4, 4, 2), (4, 4))
    shutil.copytree(made, later)
    calls = []
    real = lazy.read_scene_window
    monkeypatch.setattr(lazy, "read_scene_window", lambda *a: calls.append(a[2]) or real(*a))
    np.testing.assert_array_equal(stack.compute(scheduler="synchronous"),
                                  scene_stack(scenes, GRID, chunk_px=4).compute(scheduler="synchronous"))
    assert len(calls) == 2 * 3 * 3 * 2  # two stacks of 3 scenes × 3 × 2 chunks, each chunk read once
    whole, _ = composite_year(scenes, GRID, "median")
    np.testing.assert_array_equal(comp.compute(scheduler="synchronous"), whole)


def test_scene_stack_graph_is_deterministic(tmp_path):
    scenes = make_scenes(tmp_path, scl_layers())
    assert scene_stack(scenes, GRID, 4).name == scene_stack(list(scenes), GRID, 4).name
    assert scene_stack(scenes, GRID, 4).name != scene_stack(scenes, GRID, 3).name
    assert scene_stack(scenes, GRID, 4).name != scene_stack(scenes[:2], GRID, 4).name
    assert composite_dask(scenes, GRID, "median", 4).name != composite_dask(scenes, GRID, "max-ndvi", 4).name


@pytest.mark.parametrize("window", [Window(0, 0, 3, 3), Window(3, 6, 3, 3), Window(6, 9, 2, 1), Window(0, 9, 8, 1)])
def test_scene_stack_chunks_equal_read_scene_window(tmp_path, window):
    # chunk_px 3 on the 10 × 8 grid: the last row of chunks is 1 row, the last column 2 columns
    scenes = make_scenes(tmp_path, scl_layers())
    stack = scene_stack(scenes, GRID, chunk_px=3)
    assert stack.chunks[2:] == ((3, 3, 3, 1), (3, 3, 2))
    rows = slice(window.row_off, window.row_off + window.height)
    cols = slice(window.col_off, window.col_off + window.width)
    got = stack[:, :, rows, cols].compute(scheduler="synchronous")
    for i, s in enumerate(scenes):
        red, nir, clear = read_scene_window(s, GRID, window)
        np.testing.assert_array_equal(got[i, 0], red)
        np.testing.assert_array_equal(got[i, 1], nir)
        np.testing.assert_array_equal(got[i, 2], clear.astype(np.float32))
    assert set(np.unique(got[:, 2])) <= {0.0, 1.0}


@pytest.mark.parametrize("method", ["median", "max-ndvi"])
@pytest.mark.parametrize("chunk_px,threads", [(1, 1), (3, 2), (4, 1), (512, 1), (512, 3)])
def test_dask_composite_file_is_the_windowed_composite_file(tmp_path, method, chunk_px, threads):
    scenes = make_scenes(tmp_path, scl_layers())
    a = tmp_path / "windows.tif"
    stats_a = composite_to_file(scenes, GRID, a, method, 512, tags={"ingest_masked_pct": 12.5})
    b = tmp_path / "out" / "dask.tif"
    calls = []
    stats_b = composite_dask_to_file(scenes, GRID, b, method, chunk_px, progress=lambda i, n: calls.append((i, n)),
                                     threads=threads, tags={"ingest_masked_pct": 12.5})
    assert stats_b == stats_a
    assert calls[-1] == (-(-GRID.height // chunk_px),) * 2
    np.testing.assert_array_equal(io.read_raster(b), io.read_raster(a))  # NaN in the same places
    with rasterio.open(b) as src:
        assert src.descriptions == BANDS and src.tags()["ingest_masked_pct"] == "12.5"
    assert io.sha256(a) == io.sha256(b)
    assert sorted(p.name for p in b.parent.iterdir()) == ["dask.tif"]


def test_composite_to_file_engine_dask_is_the_same_file(tmp_path):
    scenes = make_scenes(tmp_path, scl_layers())
    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    assert composite_to_file(scenes, GRID, a, "median", 4) == composite_to_file(scenes, GRID, b, "median", 4,
                                                                               engine="dask", threads=2)
    assert io.sha256(a) == io.sha256(b)
    with pytest.raises(ValueError, match="engine"):
        composite_to_file(scenes, GRID, tmp_path / "c.tif", engine="spark")


def test_dask_composite_all_masked_writes_nothing_and_no_scenes_names_the_season(tmp_path):
    scenes = make_scenes(tmp_path, [np.full(GRID.shape, 9), np.full(GRID.shape, 8)])
    (tmp_path / "out").mkdir()
    with pytest.raises(InputDataError, match="All 80 pixels are masked"):
        composite_dask_to_file(scenes, GRID, tmp_path / "out" / "composite.tif", "median", 4)
    assert list((tmp_path / "out").iterdir()) == []
    with pytest.raises(InputDataError, match="season"):
        scene_stack([], GRID)


@pytest.mark.parametrize("lattices", [
    pytest.param([0, 1], id="upsampled-and-other-zone"),
    # a scene finer than the grid (7 m onto 10 m): window-independent only because ingest pins GDAL's
    # kernel scale (XSCALE / YSCALE) for the whole scene; without that it differed by up to 9 %
    pytest.param([0, 1, 2], id="with-downsampled"),
])
def test_dask_composite_of_reprojected_scenes_is_chunk_size_independent(tmp_path, lattices):
    # scenes on another lattice (20 m shifted by 3.3 m) and in another UTM zone, warped bilinearly onto
    # the grid: every chunk reads through the warp onto the whole grid, so chunk edges leave no seams
    grid = Grid("EPSG:32651", Affine(10.0, 0.0, 350000.0, 0.0, -10.0, 3460000.0), width=75, height=65)
    scenes = scenes_on_lattices(tmp_path, lattices, np.random.default_rng(7), scale=2)
    for method in ("median", "max-ndvi"):
        whole, _ = composite_year(scenes, grid, method, block_rows=512)
        assert whole[2].max() == len(scenes) and (whole[2] == 0).any()
        for chunk_px in (16, 30, 64, 100):
            got = composite_dask(scenes, grid, method, chunk_px).compute(scheduler="threads", num_workers=2)
            np.testing.assert_array_equal(got, whole)


@pytest.mark.parametrize("threads", [1, 3])
def test_dask_composite_runs_on_the_given_number_of_threads(tmp_path, monkeypatch, threads):
    # composite_to_file(engine="dask", threads=n), as rule composite calls it with snakemake.threads:
    # the chunk reads run on n threads at once, never more (one thread: the calling thread, synchronously),
    # and the file is the windowed composite's. The first n reads wait for each other at a barrier,
    # which only passes if the scheduler's pool really has n workers (with fewer it times out).
    scenes = make_scenes(tmp_path, scl_layers())
    a, b = tmp_path / "windows.tif", tmp_path / "dask.tif"
    stats_a = composite_to_file(scenes, GRID, a, "median", 2)
    barrier = threading.Barrier(threads, timeout=20)
    lock = threading.Lock()
    state = {"running": 0, "peak": 0, "calls": 0, "threads": set()}
    real = lazy.read_scene_window

    def counted(*args):
        with lock:
            state["running"] += 1
            state["calls"] += 1
            state["peak"] = max(state["peak"], state["running"])
            state["threads"].add(threading.get_ident())
            first = state["calls"] <= threads
        try:
            if first:
                barrier.wait()  # BrokenBarrierError if fewer than `threads` reads can run at once
            time.sleep(0.002)
            return real(*args)
        finally:
            with lock:
                state["running"] -= 1

    monkeypatch.setattr(lazy, "read_scene_window", counted)
    stats_b = composite_to_file(scenes, GRID, b, "median", 2, engine="dask", threads=threads)
    assert state["calls"] == 3 * 5 * 4  # 3 scenes × 5 × 4 chunks of 2 × 2 px on the 10 × 8 grid
    assert state["peak"] == threads
    if threads == 1:
        assert state["threads"] == {threading.get_ident()}  # the synchronous scheduler, in this thread
    assert stats_b == stats_a and io.sha256(a) == io.sha256(b)


@pytest.mark.parametrize("engine,cores,expected", [
    ("dask", 4, 4), ("dask", 1, 1), ("dask", 64, 8), ("dask", None, 8), ("windows", 4, 1),
])
def test_composite_threads_follow_the_cores_for_the_dask_engine_only(engine, cores, expected):
    assert composite_threads({"imagery": {"engine": engine}}, cores) == expected


@pytest.mark.parametrize("scheduler,cores,expected", [
    *[(s, 4, 4) for s in lazy.SCHEDULERS], *[(s, 64, 8) for s in lazy.SCHEDULERS], (None, 3, 3),
    ("tcp://node01:8786", 4, 1), ("tls://10.0.0.5:8786", 64, 1), ("inproc://192.168.1.2/123/1", None, 1),
])
def test_composite_threads_are_one_when_a_remote_scheduler_computes(scheduler, cores, expected):
    # the schedulers run on the job's threads (lazy.SCHEDULERS: threaded, a LocalCluster of the job's threads) get
    # the cores up to 8; an address (the schema's pattern) is a running cluster: the job only waits on it
    assert scheduler is None or scheduler in lazy.SCHEDULERS or lazy.ADDRESS.match(scheduler)  # valid settings only
    dask = {} if scheduler is None else {"scheduler": scheduler}
    assert composite_threads({"imagery": {"engine": "dask", "dask": dask}}, cores) == expected
    assert composite_threads({"imagery": {"engine": "windows", "dask": dask}}, cores) == 1


@pytest.mark.workflow
def test_rule_composite_asks_for_the_cores_with_the_dask_engine(tmp_path):
    # the dry run of the untiled composite: rule composite gets the cores given (--cores 2 here) with
    # imagery.engine dask, and one thread with the windowed engine (snakemake shows no threads line for 1)
    from test_workflow import small_config, snakemake

    path = small_config(tmp_path)
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))

    def composite_job(engine):
        cfg["imagery"]["engine"] = engine
        path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
        out = snakemake(tmp_path, "-n", "--", "results/2023/composite.tif").stdout
        return out.split("rule composite:", 1)[1].split("resources:", 1)[0]  # the job's lines up to its resources

    assert "threads: 2" in composite_job("dask")
    assert "threads:" not in composite_job("windows")
