"""Peak memory of the tiled aggregate gather at the parcel level with many zones (issue 14: 10⁶ parcels < 8 GiB).

    python benchmarks/gather_memory.py --zones 1000000 --tiles 16 --draws 200

Writes synthetic tile sums of one level with the real writer (:func:`greensink.zone_sums.write_tile_sums`): the
zones split into ``--tiles`` runs of rows, each overlapping its neighbours by 1 % (zones cut by a tile edge), with
every sum a tile file holds (pixel sums, 5 types, estimate, draws and five per-source parts, random values). Then,
each in its own child process (peak RSS from ``resource.getrusage(RUSAGE_SELF).ru_maxrss``), what rule aggregate
of a tiled run does with them before the table: the sums added up, the draws' interval quantiles and the
per-source variance shares, as

* ``all``: the gather before zone blocks (every sum of every tile file added up at once, :func:`read_tile_sums`
  and :func:`add_sums`, then :func:`variance_shares` of the parts);
* ``blocks``: the gather in zone blocks (``greensink.aggregate.tiles``: one level's members without the parts,
  then the parts ``--block`` zones at a time).

Both must give the same quantiles and shares bit for bit (checked from the children's outputs).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

SOURCES = ("curve", "residual", "ndvi", "edges", "fill")


def write_tiles(d: Path, zones: int, tiles: int, draws: int, seed: int = 0) -> list[Path]:
    from greensink.zone_sums import ZoneSums, write_tile_sums

    rng = np.random.default_rng(seed)
    step, pad = zones / tiles, max(1, zones // 100 // tiles)
    paths = []
    for k in range(tiles):
        rows = np.arange(max(0, int(k * step) - pad), min(zones, int((k + 1) * step) + pad), dtype=np.int64)
        z = rows.size
        values = {name: rng.random(z) for name in ("cover_px", "observed_px", "vegetation_sum", "vegetation_covered",
                                                   "canopy_sum", "canopy_covered", "ndvi_sum", "ndvi_covered",
                                                   "fvc_sum", "fvc_covered", "estimate_t")}
        values.update({name: rng.random((z, 5)) for name in ("type_px", "unseen_px", "density_px")})
        values["draws_t"] = rng.standard_normal((z, draws))
        for s in SOURCES:
            values[f"part_{s}_t"] = rng.standard_normal((z, draws))
        paths.append(write_tile_sums(d / f"aggregate_{k:03d}.npz", {"parcel": ZoneSums(zones, rows, values)},
                                     {"tile": f"t{k:03d}"}))
        del values
    return paths


def child(mode: str, paths: list[str], zones: int, block: int, out: str) -> None:
    from greensink.aggregate import level_loader, shares_loader
    from greensink.aggregate.sums import draw_sums_of
    from greensink.uncertainty import variance_shares
    from greensink.zone_sums import add_sums, read_tile_sums

    t0 = time.perf_counter()
    levels, n = ["parcel"], [zones]
    if mode == "all":
        total: dict[str, np.ndarray] = {}
        for p in paths:
            add_sums(total, read_tile_sums(p, levels, n)["parcel"])
        est, draws, parts = draw_sums_of(total, zones)
        shares = variance_shares(parts)
        del parts
    else:
        tiles = [SimpleNamespace(id=f"t{k:03d}") for k in range(len(paths))]  # the ids write_tiles gave
        total = level_loader(tiles, paths, levels, n, "parcel", {})()
        est, draws = draw_sums_of(total, zones)[:2]
        shares = shares_loader(tiles, paths, levels, n, "parcel", {}, block)()
    lo, hi = np.quantile(draws, [0.05, 0.95], axis=1)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    np.savez(out, lo=lo, hi=hi, est=est, **{f"share_{k}": v for k, v in shares.items()})
    print(json.dumps({"mode": mode, "peak_mib": round(peak_mib), "wall_s": round(time.perf_counter() - t0, 1)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zones", type=int, default=1_000_000)
    ap.add_argument("--tiles", type=int, default=16)
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--block", type=int, default=100_000)
    ap.add_argument("--modes", default="blocks,all")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        mode, paths, zones, out = a.child
        child(mode, json.loads(paths), int(zones), a.block, out)
        return
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        d = Path(tmp)
        t0 = time.perf_counter()
        paths = [str(p) for p in write_tiles(d, a.zones, a.tiles, a.draws)]
        size = sum(Path(p).stat().st_size for p in paths) / 2**30
        print(f"{a.tiles} tile files, {size:.2f} GiB, written in {time.perf_counter() - t0:.0f} s", flush=True)
        results = {}
        for mode in a.modes.split(","):
            out = str(d / f"{mode}.npz")
            r = subprocess.run([sys.executable, __file__, "--block", str(a.block), "--child", mode, json.dumps(paths),
                                str(a.zones), out], capture_output=True, text=True)
            print(r.stdout.strip() or r.stderr[-2000:], flush=True)
            if r.returncode == 0:
                results[mode] = dict(np.load(out))
        if len(results) == 2:
            x, y = results.values()
            same = x.keys() == y.keys() and all(np.array_equal(x[k], y[k], equal_nan=True) for k in x)
            print(f"outputs: {'PASS (bit for bit)' if same else 'FAIL'}")


if __name__ == "__main__":
    main()
