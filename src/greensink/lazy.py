"""Lazy scenes: the masked scenes of a year as a dask array on the analysis grid.

:func:`scene_stack` wraps the one reader of the ingest, :func:`~greensink.ingest.read_scene_window`,
so local files, the demo and STAC assets are harmonised and masked exactly as by the windowed
composite; it does not use odc-stac or stackstac. Each chunk of the stack is one scene in one
square window of the grid, read through the same warp onto the whole grid when (and only when)
the chunk is computed: building the array opens no file.

The dask engine of the composite (:func:`greensink.composite.composite_dask`) reduces this stack;
this module knows nothing of composites, so the composite imports it and not the other way round.

:func:`dask_scheduler` says where such a graph is computed (``imagery.dask``): on the job's threads
(``threads``, the default), on a ``dask.distributed`` LocalCluster the job starts with its threads
and closes (``local``), or on an existing ``dask.distributed`` scheduler given by address, which the
job only connects to and leaves running.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize
from rasterio.windows import Window

from greensink.errors import ConfigError, InputDataError
from greensink.grid import Grid
from greensink.ingest import Scene, read_scene_window

log = logging.getLogger(__name__)

STACK_BANDS = ("red", "nir", "clear")


def _axis_chunks(n: int, size: int) -> tuple[int, ...]:
    return tuple(min(size, n - i) for i in range(0, n, size))


def _read_block(scene: Scene, grid: Grid, row_off: int, col_off: int, height: int, width: int) -> np.ndarray:
    """One chunk of the stack: (1, 3, height, width) float32 red, nir, clear (0/1)."""
    red, nir, clear = read_scene_window(scene, grid, Window(col_off, row_off, width, height))
    block = np.empty((1, 3, height, width), dtype=np.float32)
    block[0, 0], block[0, 1], block[0, 2] = red, nir, clear
    return block


def scene_stack(scenes: Sequence[Scene], grid: Grid, chunk_px: int = 1024) -> da.Array:
    """The scenes on ``grid`` as a lazy (n_scenes, 3, rows, cols) float32 dask array of bands
    red, nir (reflectance, NaN where no data) and clear (1 clear sky, 0 not), chunked
    (1, 3, chunk_px, chunk_px) (smaller at the grid's right and bottom edges).

    Each chunk is :func:`~greensink.ingest.read_scene_window` of one scene in that chunk's window;
    nothing is opened until the chunk is computed. The graph is deterministic: the same scenes,
    grid and chunk size give the same array name."""
    if not scenes:
        raise InputDataError("No scene falls in the season of this year. Add scenes or widen season.start/season.end.")
    if int(chunk_px) != chunk_px or chunk_px < 1:
        raise ValueError(f"chunk_px must be a whole number of pixels >= 1. Got {chunk_px!r}.")
    chunk_px = int(chunk_px)
    scenes = list(scenes)
    rows, cols = _axis_chunks(grid.height, chunk_px), _axis_chunks(grid.width, chunk_px)
    name = "scene-stack-" + tokenize(scenes, grid, chunk_px)
    graph = {}
    for s, scene in enumerate(scenes):
        r0 = 0
        for i, h in enumerate(rows):
            c0 = 0
            for j, w in enumerate(cols):
                graph[(name, s, 0, i, j)] = (_read_block, scene, grid, r0, c0, h, w)
                c0 += w
            r0 += h
    return da.Array(graph, name, chunks=((1,) * len(scenes), (3,), rows, cols), dtype=np.float32)


# ----------------------------------------------------------------------------- where a graph is computed

SCHEDULERS = ("threads", "local")  # imagery.dask.scheduler, besides the address of a running dask.distributed scheduler
ADDRESS = re.compile(r"^(tcp|tls|ucx|inproc)://\S+$")
CONNECT_TIMEOUT_S = 10.0


@dataclass
class DaskScheduler:
    """Where :func:`dask_scheduler` computes: ``options`` are the keyword arguments of ``dask.compute``
    (``scheduler`` and, for the threaded scheduler, ``num_workers``); ``client`` and ``cluster`` are the
    ``dask.distributed`` Client and, when the job started it, its LocalCluster (None otherwise)."""

    kind: str
    options: dict[str, Any]
    description: str
    client: Any = None
    cluster: Any = None
    workers: int = field(default=1)


def _threaded(threads: int) -> DaskScheduler:
    if threads == 1:
        return DaskScheduler("threads", {"scheduler": "synchronous"}, "1 thread (synchronous scheduler)")
    return DaskScheduler("threads", {"scheduler": "threads", "num_workers": threads},
                         f"{threads} threads (threaded scheduler)", workers=threads)


def _local_cluster(threads: int, processes: bool, workers: int | None, memory_limit: str | int | None):
    """A LocalCluster of ``threads`` threads in all: ``workers`` workers (None: one worker of all the threads
    in the job's process, or one single-threaded worker process per thread) of threads // workers threads each."""
    from dask.utils import parse_bytes
    from distributed import LocalCluster

    if isinstance(memory_limit, str):
        try:
            parse_bytes(memory_limit)
        except ValueError as exc:
            raise ConfigError(f"imagery.dask.memory_limit must be a number of bytes or a size like 2GiB or 500MB. "
                              f"Got {memory_limit!r}. Write it so, or null for dask's auto.") from exc
    n = workers or (threads if processes else 1)
    n = max(1, min(int(n), threads))
    per = max(1, threads // n)
    cluster = LocalCluster(n_workers=n, threads_per_worker=per, processes=processes,
                           memory_limit="auto" if memory_limit is None else memory_limit,
                           dashboard_address=":0", scheduler_port=0)  # any free port: many jobs on one node
    return cluster, n, per


@contextlib.contextmanager
def dask_scheduler(threads: int = 1, scheduler: str = "threads", *, processes: bool = False, workers: int | None = None,
                   memory_limit: str | int | None = None, timeout_s: float = CONNECT_TIMEOUT_S) -> Iterator[DaskScheduler]:
    """Where to compute a dask graph, as a context (the ``imagery.dask`` section of the config).

    ``scheduler``:

    * ``threads`` (default): dask's threaded scheduler on ``threads`` threads of this process
      (synchronous for one); nothing is started.
    * ``local``: a ``dask.distributed`` LocalCluster sized to the job, ``threads`` threads in all
      over ``workers`` workers (None: one worker holding every thread when ``processes`` is False,
      one single-threaded worker process per thread when True), each with ``memory_limit``
      (a byte count or a string like ``"2GiB"``; None: distributed's "auto", the machine's memory
      over the workers). The cluster and its client are closed when the context ends, also on error.
    * an address (``tcp://host:8786``, ``tls://``, ``ucx://``, ``inproc://``): a Client of that
      running scheduler; ``threads``, ``processes``, ``workers`` and ``memory_limit`` do not apply
      (the cluster is sized by whoever started it). The client is closed at the end; the cluster
      is not (this job did not start it). A scheduler not answering within ``timeout_s`` seconds
      raises ConfigError naming the key, the address and the fix.

    The client is never made dask's default: a graph runs on it only when computed with
    ``**scheduler.options``."""
    threads = max(int(threads or 1), 1)
    if scheduler == "threads":
        yield _threaded(threads)
        return
    if scheduler == "local":
        cluster, n, per = _local_cluster(threads, processes, workers, memory_limit)
        client = None
        try:
            from distributed import Client

            client = Client(cluster, set_as_default=False)
            kind = "processes" if processes else "threads"
            yield DaskScheduler("local", {"scheduler": client}, f"dask.distributed LocalCluster of {n} worker {kind} "
                                f"x {per} thread(s) at {cluster.scheduler_address}", client, cluster, n)
        finally:
            if client is not None:
                client.close()
            cluster.close()
        return
    if not isinstance(scheduler, str) or not ADDRESS.match(scheduler):
        raise ConfigError(f"imagery.dask.scheduler must be threads, local or the address of a dask.distributed "
                          f"scheduler (tcp://host:port). Got {scheduler!r}. Use one of these.")
    from distributed import Client

    try:
        client = Client(scheduler, timeout=timeout_s, set_as_default=False)
    except Exception as exc:  # OSError (timed out, refused, unknown host) or whatever a non-dask server makes of the handshake
        raise ConfigError(
            f"imagery.dask.scheduler: no dask.distributed scheduler answered at {scheduler} within {timeout_s:g} s "
            f"({type(exc).__name__}: {exc}). Start it first (`dask scheduler` and `dask worker {scheduler}` on nodes "
            "that see the scenes' files and have greensink installed), fix the address, or use scheduler: local "
            "(a cluster on the job's own threads).") from exc
    try:
        n = len(client.scheduler_info().get("workers", {}))
        yield DaskScheduler("address", {"scheduler": client}, f"dask.distributed scheduler {scheduler} "
                            f"({n} worker(s) when connected)", client, None, n)
    finally:
        client.close()


def dask_options(section: Mapping | None) -> dict[str, Any]:
    """The keyword arguments of :func:`dask_scheduler` (besides ``threads``) from the config's
    ``imagery.dask`` section (``scheduler``, ``processes``, ``workers``, ``memory_limit``, ``timeout_s``);
    keys left out take the function's defaults."""
    keys = ("scheduler", "processes", "workers", "memory_limit", "timeout_s")
    return {k: section[k] for k in keys if section and section.get(k) is not None}


__all__ = ["ADDRESS", "SCHEDULERS", "STACK_BANDS", "DaskScheduler", "dask_options", "dask_scheduler", "scene_stack"]
