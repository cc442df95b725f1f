"""Tests of the dask engine on dask.distributed (imagery.dask; greensink.lazy.dask_scheduler).

The composite computed on a LocalCluster the job starts (worker threads, or worker processes), and
on an external scheduler started here and given by address, is the windowed engine's composite:
the same pixels (NaN in the same places), counts, statistics and file bytes, and the threaded dask
engine's too. The windowed engine is in turn checked against a composite computed here with numpy
from the generated DNs and SCL classes (scenes on the grid's own lattice, so reading is the identity).
A job never leaves a cluster it started running, also when the composite fails, and never closes a
cluster it did not start; an address where no scheduler answers fails within seconds with a
ConfigError naming the key and the address, and writes nothing.

The scenes are generated here: 5 Sentinel-2 L2A-like scenes of 37 × 29 pixels with random DNs and
random SCL classes (clear 4, 5, 6; masked 3, 8, 9, 10), one pixel masked in every scene.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from affine import Affine
from distributed import Client, LocalCluster
from distributed.core import Status
from distributed.deploy.spec import SpecCluster

from greensink import config, io
from greensink.composite import composite_dask_to_file, composite_to_file, run_composite
from greensink.errors import ConfigError, InputDataError
from greensink.grid import Grid
from greensink.ingest import Scene
from greensink.lazy import dask_options, dask_scheduler

GRID = Grid("EPSG:32651", Affine(10.0, 0.0, 350000.0, 0.0, -10.0, 3460100.0), width=29, height=37)
N_SCENES = 5
CLEAR, MASKED = (4, 5, 6), (3, 8, 9, 10)
CHUNK = 8  # 37 × 29 in 8 × 8 chunks: 5 × 4 chunks, the last row of 5 rows and the last column of 5 columns


def _tif(path: Path, arr: np.ndarray) -> str:
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=1, dtype=arr.dtype,
                       crs=GRID.crs, transform=GRID.transform) as dst:
        dst.write(arr, 1)
    return str(path)


def generated(folder: Path, seed: int = 14) -> tuple[list[Scene], np.ndarray, np.ndarray, np.ndarray]:
    """The scenes, and their red and NIR DNs and SCL classes as (scene, row, col) arrays."""
    rng = np.random.default_rng(seed)
    shape = (N_SCENES, *GRID.shape)
    red = rng.integers(200, 3000, shape).astype(np.uint16)
    nir = rng.integers(1500, 6000, shape).astype(np.uint16)
    scl = np.where(rng.random(shape) < 0.35, rng.choice(MASKED, shape), rng.choice(CLEAR, shape)).astype(np.uint8)
    scl[:, 11, 17] = 9  # never clear
    scenes = [Scene(f"s{i}", f"2021-0{5 + i}-01", "sentinel2-l2a", _tif(folder / f"red{i}.tif", red[i]),
                    _tif(folder / f"nir{i}.tif", nir[i]), _tif(folder / f"scl{i}.tif", scl[i]), 1e-4, 0.0)
              for i in range(N_SCENES)]
    return scenes, red, nir, scl


@pytest.fixture(scope="module")
def scenes_and_truth(tmp_path_factory):
    return generated(tmp_path_factory.mktemp("scenes"))


@pytest.fixture(scope="module")
def windowed(scenes_and_truth, tmp_path_factory):
    """The windowed engine's median composite file and statistics (the reference)."""
    path = tmp_path_factory.mktemp("windowed") / "composite.tif"
    stats = composite_to_file(scenes_and_truth[0], GRID, path, "median", 16, tags={"ingest_masked_pct": 1.5})
    return path, stats


def _live_clusters() -> list:
    return [c for c in list(SpecCluster._instances) if c.status != Status.closed]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_windowed_reference_is_the_numpy_median_of_the_clear_observations(scenes_and_truth, windowed):
    _, red, nir, scl = scenes_and_truth
    ok = np.isin(scl, CLEAR)
    # reflectance as the reader makes it: DN × 1e-4 in float64, rounded once to float32; median in float64
    refl = {b: np.where(ok, (dn.astype(np.float64) * 1e-4).astype(np.float32), np.nan) for b, dn in
            (("red", red), ("nir", nir))}
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning, match="All-NaN"):
        expect = [np.nanmedian(refl[b].astype(np.float64), axis=0).astype(np.float32) for b in ("red", "nir")]
    got = io.read_raster(windowed[0])
    np.testing.assert_array_equal(got[0], expect[0])
    np.testing.assert_array_equal(got[1], expect[1])
    np.testing.assert_array_equal(got[2], ok.sum(axis=0))
    assert np.isnan(got[0, 11, 17]) and got[2, 11, 17] == 0
    assert np.isnan(got[:2]).sum() == 2 * (ok.sum(axis=0) == 0).sum() >= 2
    assert windowed[1]["never_clear_pct"] == pytest.approx(100 * (ok.sum(axis=0) == 0).mean())


def _same_file(path: Path, stats: dict, windowed) -> None:
    ref_path, ref_stats = windowed
    assert stats == ref_stats
    a, b = io.read_raster(ref_path), io.read_raster(path)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_array_equal(a, b)  # NaN in the same places compare equal
    assert io.sha256(ref_path) == io.sha256(path)


def test_local_cluster_of_worker_threads_equals_windowed_and_threaded_engines(scenes_and_truth, windowed, tmp_path):
    scenes = scenes_and_truth[0]
    before = len(_live_clusters())
    local = composite_dask_to_file(scenes, GRID, tmp_path / "local.tif", "median", CHUNK, threads=2,
                                   dask_config={"scheduler": "local"}, tags={"ingest_masked_pct": 1.5})
    _same_file(tmp_path / "local.tif", local, windowed)
    threaded = composite_dask_to_file(scenes, GRID, tmp_path / "threads.tif", "median", CHUNK, threads=2,
                                      tags={"ingest_masked_pct": 1.5})
    _same_file(tmp_path / "threads.tif", threaded, windowed)
    assert len(_live_clusters()) == before  # the job's cluster is closed


def test_local_cluster_is_sized_to_the_job_threads_and_closed_even_on_error(tmp_path):
    with dask_scheduler(4, "local", workers=2) as s:
        assert sorted(s.client.nthreads().values()) == [2, 2]  # 2 workers × 2 threads = the job's 4 threads
        assert s.options == {"scheduler": s.client} and s.cluster.status == Status.running
    assert s.cluster.status == Status.closed and s.client.status == "closed"
    with dask_scheduler(3, "local") as one:
        assert list(one.client.nthreads().values()) == [3]  # default: one worker of all the threads
    with pytest.raises(RuntimeError, match="inside"), dask_scheduler(2, "local") as held:
        raise RuntimeError("inside the job")
    assert held.cluster.status == Status.closed and held.client.status == "closed"
    # a composite failing on the cluster (every pixel masked) closes it too, and writes nothing
    scenes = generated(tmp_path)[0]
    for s in scenes:
        _tif(Path(s.quality), np.full(GRID.shape, 9, np.uint8))
    before = len(_live_clusters())
    (tmp_path / "out").mkdir()
    with pytest.raises(InputDataError, match="masked"):
        composite_dask_to_file(scenes, GRID, tmp_path / "out" / "c.tif", "median", CHUNK, threads=2,
                               dask_config={"scheduler": "local"})
    assert len(_live_clusters()) == before and list((tmp_path / "out").iterdir()) == []


@pytest.mark.slow  # two spawned worker processes start in about 10 s on 2 busy cores
def test_local_cluster_of_worker_processes_equals_windowed(scenes_and_truth, windowed, tmp_path):
    stats = composite_dask_to_file(scenes_and_truth[0], GRID, tmp_path / "p.tif", "median", CHUNK, threads=2,
                                   dask_config={"scheduler": "local", "processes": True},
                                   tags={"ingest_masked_pct": 1.5})
    _same_file(tmp_path / "p.tif", stats, windowed)


def test_external_scheduler_by_address_gives_the_same_file_and_stays_up(scenes_and_truth, windowed, tmp_path):
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp://", host="127.0.0.1",
                      dashboard_address=":0") as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        stats = composite_dask_to_file(scenes_and_truth[0], GRID, tmp_path / "ext.tif", "median", CHUNK,
                                       threads=1, dask_config={"scheduler": address}, tags={"ingest_masked_pct": 1.5})
        _same_file(tmp_path / "ext.tif", stats, windowed)
        # the job closed only its client: the cluster and its worker serve the next client
        assert cluster.status == Status.running
        with Client(address, timeout=10, set_as_default=False) as again:
            assert list(again.nthreads().values()) == [2]
            assert again.submit(sum, [1, 2, 3]).result() == 6


def test_an_address_where_no_scheduler_answers_fails_within_seconds(scenes_and_truth, tmp_path):
    address = f"tcp://127.0.0.1:{_free_port()}"
    (tmp_path / "out").mkdir()
    t0 = time.monotonic()
    with pytest.raises(ConfigError) as err:
        composite_dask_to_file(scenes_and_truth[0], GRID, tmp_path / "out" / "c.tif", "median", CHUNK,
                               dask_config={"scheduler": address, "timeout_s": 2})
    assert time.monotonic() - t0 < 8
    text = str(err.value)
    assert "imagery.dask.scheduler" in text and address in text and "within 2 s" in text
    assert "dask scheduler" in text and "scheduler: local" in text  # the fix
    assert list((tmp_path / "out").iterdir()) == []


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="memory_limit.*'two gigs'"), dask_scheduler(2, "local", memory_limit="two gigs"):
        pass
    with pytest.raises(ConfigError, match="tcp://host:port.*'node01:8786'"), dask_scheduler(2, "node01:8786"):
        pass
    cfg = config.load(Path(__file__).resolve().parents[1] / "config" / "config.yaml")
    assert dask_options(cfg["imagery"]["dask"]) == {"scheduler": "threads", "processes": False, "timeout_s": 10}
    for bad in ({"scheduler": "node01:8786"}, {"scheduler": "tcp:/node01"}, {"workers": 0}, {"timeout_s": 0},
                {"threads": 4}):
        raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())
        raw.setdefault("imagery", {})["dask"] = bad
        with pytest.raises(ConfigError, match="imagery.dask"):
            config.validate(raw)


def test_run_composite_reads_the_section_through_the_rule_adapter(scenes_and_truth, windowed, tmp_path):
    # run_composite is what workflow/scripts/composite.py calls with params.dask (imagery.dask)
    scenes = scenes_and_truth[0]
    io.write_json(tmp_path / "scenes.json", {"scenes": [s.to_dict() for s in scenes], "summary": {"masked_pct": 1.5}})
    io.write_json(tmp_path / "grid.json", GRID.to_dict())
    stats = run_composite(tmp_path / "scenes.json", tmp_path / "grid.json", tmp_path / "c.tif", method="median",
                          block_rows=CHUNK, compress="zstd", engine="dask", threads=2,
                          dask_config={"scheduler": "local", "processes": False, "workers": None,
                                       "memory_limit": "1GiB", "timeout_s": 10})
    _same_file(tmp_path / "c.tif", stats, windowed)


@pytest.mark.slow  # builds the demo's inputs and composites one year in a snakemake run
def test_workflow_composite_on_a_local_cluster_of_processes_equals_the_baseline(baseline_run, tmp_path):
    # the rule script under Snakemake: spawned worker processes re-import it (its __main__ guard)
    from test_workflow import small_config

    cfg_path = small_config(tmp_path)
    cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    cfg["imagery"].update({"engine": "dask", "dask": {"scheduler": "local", "processes": True}})
    cfg_path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    year = config.load(cfg_path)["years"][0]
    target = f"results/{year}/composite.tif"
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(root / "Snakefile"), "--directory",
                           str(tmp_path), "--configfile", str(cfg_path), "--cores", "2", target],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-6000:]
    log = (tmp_path / f"logs/composite/{year}.log").read_text(encoding="utf-8")
    assert "LocalCluster of 2 worker processes x 1 thread(s)" in log
    a, b = io.read_raster(baseline_run / target), io.read_raster(tmp_path / target)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_array_equal(a, b)
