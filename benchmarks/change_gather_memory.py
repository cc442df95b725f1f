"""Peak memory of rule change's gather in a tiled run against the zone count and the draws (issue 14 item 7).

Writes synthetic change_tile parts files (greensink.change.tiles.compact_sums' layout: per level every zone sum of
ZONE_SUMS, the (zones, draws) arrays sink_draws and both_draws and one sink_src_<source> per source, the zones a
tile touches; tiles overlap by 1 % of the zones, as zones cut by tile edges) and measures, in a child process,
reading every tile's parts and adding them (greensink.change.tiles.gather_sums: what rule change holds before it
finishes the tables). Prints the peak RSS (ru_maxrss), the bytes per zone and draw summed over the levels, and the
figure greensink.resources asks for.

    python benchmarks/change_gather_memory.py --zones 25000,100000 --draws 200 --tiles 16
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

import numpy as np

SOURCES = ["curve", "table", "residual", "ndvi", "edges"]
UPPER = (1, 40, 2000)  # city, districts, blocks above the parcels: the levels of the demo's kind


def write_parts(d: Path, zones: int, tiles: int, draws: int, seed: int = 0) -> tuple[list[Path], list[int]]:
    from greensink import io as gio
    from greensink.change.run import ZONE_SUMS

    rng = np.random.default_rng(seed)
    counts = [*UPPER, zones]
    levels = [f"l{i}" for i in range(len(counts))]
    paths = []
    for t in range(tiles):
        arrays = {}
        for level, z in zip(levels, counts, strict=True):
            lo, hi = z * t // tiles, z * (t + 1) // tiles
            rows = np.arange(max(0, lo - z // 200), min(z, hi + z // 200))  # 1 % shared with the neighbours
            arrays[f"{level}.rows"] = rows.astype(np.int64)
            for name in (*ZONE_SUMS, *(f"sink_src_{s}" for s in SOURCES)):
                wide = name.endswith("_draws") or name.startswith("sink_src_")
                arrays[f"{level}.{name}"] = rng.random((rows.size, draws) if wide else rows.size)
        for k in ("index", "lost", "stock0", "stock1"):
            arrays[f"lost.{k}"] = np.zeros(0, dtype=np.int64 if k == "index" else np.float64)
        arrays["lost.keys"] = np.zeros((len(levels), 0), dtype=np.int64)
        paths.append(gio.write_arrays(d / f"parts_{t}.npz", arrays, {"tile": t, "levels": levels}))
    return paths, counts


def child(paths: list[str], counts: list[int], out: str) -> None:
    from greensink import io as gio
    from greensink.change.tiles import gather_lost, gather_sums

    levels = [f"l{i}" for i in range(len(counts))]
    t0 = time.perf_counter()
    parts = [gio.read_arrays(p)[0] for p in paths]
    sums = gather_sums(parts, levels, counts)
    gather_lost(parts, len(levels))
    wall = time.perf_counter() - t0
    Path(out).write_text(json.dumps({"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                                     "wall_s": wall, "levels": len(sums)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zones", default="25000,100000", help="parcel counts, comma-separated")
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--tiles", type=int, default=16)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(json.loads(a.child[0]), json.loads(a.child[1]), a.child[2])
        return
    from greensink import resources

    for zones in (int(z) for z in a.zones.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            paths, counts = write_parts(Path(tmp), zones, a.tiles, a.draws)
            out = Path(tmp) / "result.json"
            subprocess.run([sys.executable, __file__, "--child", json.dumps([str(p) for p in paths]),
                            json.dumps(counts), str(out)], check=True)
            r = json.loads(out.read_text())
        per = (r["peak_mib"] - resources.GATHER_BASE_MIB) * 2**20 / (sum(counts) * a.draws)
        ask = resources.gather_mem_mb("change_gather", counts, a.draws)
        print(f"change gather, {sum(counts)} zones over {len(counts)} levels ({zones} parcels), {a.draws} draws, "
              f"{a.tiles} tiles: peak {r['peak_mib']:.0f} MiB, {r['wall_s']:.1f} s wall; "
              f"{per:.0f} bytes per zone and draw above {resources.GATHER_BASE_MIB} MiB; resources asks {ask} MB")


if __name__ == "__main__":
    main()
