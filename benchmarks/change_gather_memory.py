"""Peak memory of rule change's and rule trend's gathers in a tiled run, before and after zone blocks (issue 14
items 2 and 7: 10⁶ parcels under 8 GiB).

    python benchmarks/change_gather_memory.py --zones 100000,1000000 --trend-zones 50000   # the README's figures
    python benchmarks/change_gather_memory.py --zones 20000 --trend-zones 5000 --block 5000   # a quick check

Change: writes synthetic change_tile parts files in greensink.change.tiles.compact_sums' layout (per level ``L<i>``
every zone sum of ZONE_SUMS, the (zones, draws) arrays ``sink_draws``, ``both_draws`` and one ``sink_src_<source>``
per source, for the zones a tile touches; tiles overlap by 1 % of the zones, as zones cut by tile edges; 4 levels:
1, 40, 2000 zones and the parcels) and measures in a child process each (peak RSS, ``VmHWM``):

* ``before``: the gather as it was (every tile's parts read whole and added into every level's (zones × draws)
  totals, then each level's draws summarized as change_table did: interval quantiles, U %, variance shares);
* ``after``: :func:`greensink.change.tiles.gather_level` level by level, ``--block`` zones at a time.

Both end with the same per-zone summaries (checked bit for bit from the children's outputs). ``before`` is not run
above ``--before-max-zones`` parcels (at 10⁶ parcels it needs about 24 GiB: more than a shared machine has); its
figure there is the measured bytes per zone and draw times the zones, printed as an estimate.

Trend: synthetic trend_tile parts (``est_k``, ``draws_k``, ``obs_est_k``, ``obs_draws_k`` for ``--years`` years,
``typed_ha``, ``observed_all_ha``; one level of ``--trend-zones`` zones) and the zone trend table made from them:
``before`` the level's sums added whole then :func:`greensink.trend.level_trend_table` on the level, ``after``
:func:`greensink.trend_tiles.level_blocks` and the table block by block (``--trend-block`` zones); tables equal.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import RESULT_TAG, machine_summary, run_child, vmhwm_mib  # noqa: E402

SOURCES = ["curve", "table", "residual", "ndvi", "edges"]
UPPER = (1, 40, 2000)  # city, districts, blocks above the parcels: the levels of the demo's kind
INTERVAL = 90.0


def _rows(z: int, t: int, tiles: int) -> np.ndarray:
    lo, hi = z * t // tiles, z * (t + 1) // tiles
    return np.arange(max(0, lo - z // 200), min(z, hi + z // 200), dtype=np.int64)  # 1 % shared with neighbours


def write_change_parts(d: Path, zones: int, tiles: int, draws: int, seed: int = 0) -> tuple[list[str], list[int]]:
    from greensink import io as gio
    from greensink.change.run import ZONE_SUMS

    rng = np.random.default_rng(seed)
    counts = [*UPPER, zones]
    levels = [f"l{i}" for i in range(len(counts))]
    paths = []
    for t in range(tiles):
        arrays = {}
        for i, z in enumerate(counts):
            rows = _rows(z, t, tiles)
            arrays[f"L{i}.rows"] = rows
            for name in (*ZONE_SUMS, *(f"sink_src_{s}" for s in SOURCES)):
                wide = name.endswith("_draws") or name.startswith("sink_src_")
                arrays[f"L{i}.{name}"] = rng.standard_normal((rows.size, draws) if wide else rows.size)
        for k in ("index", "lost", "stock0", "stock1"):
            arrays[f"lost.{k}"] = np.zeros(0, dtype=np.int64 if k == "index" else np.float64)
        arrays["lost.keys"] = np.zeros((len(levels), 0), dtype=np.int64)
        meta = {"format": 1, "tile": f"t{t:03d}", "size_px": 1, "years": [0, 1], "levels": levels, "n_zones": counts,
                "sources": SOURCES}
        paths.append(str(gio.write_arrays(d / f"parts_{t:03d}.npz", arrays, meta)))
        del arrays
    return paths, counts


def _change_tables(sums: list[dict], counts: list[int]) -> None:
    """change_table of every level as rule change writes them (zones as points: a real layer's polygons add their
    own size), one level after another."""
    import geopandas as gpd
    import pandas as pd
    from shapely import points

    from greensink.change.run import level_sums
    from greensink.change.tables import change_table

    for s, z in zip(sums, counts, strict=True):
        ids = np.array([f"Z{i}" for i in range(z)])
        zones = gpd.GeoDataFrame({"zone_id": ids, "parent_id": "C1", "level": "l", "name": ids},
                                 geometry=points(np.arange(z, dtype=float), 0.0), crs="EPSG:32651")
        t = [pd.DataFrame({"zone_id": ids, "area_ha": 2.0, "carbon_t": 100.0 + k, "green_area_ha": 1.0})
             for k in (0, 1)]
        ls = level_sums(s, [])
        change_table(zones, t[0], t[1], 2020, 2024, ls["sink_sums"], INTERVAL, attribution=ls["attribution"],
                     sink_space=ls["sink_space"], observed=ls["observed"], min_observed_pct=50.0,
                     green_compared=ls["green_compared"])


def change_child(mode: str, paths: list[str], counts: list[int], block: int, out: str, tables: bool) -> None:
    from greensink import io as gio
    from greensink.change.tables import summarize_draws
    from greensink.change.tiles import gather_level, gather_lost, read_lost

    levels = [f"l{i}" for i in range(len(counts))]
    tiles = [SimpleNamespace(id=f"t{t:03d}") for t in range(len(paths))]
    ident = {"format": 1, "size_px": 1, "years": [0, 1], "levels": levels, "n_zones": counts}
    t0 = time.perf_counter()
    result = {}
    if mode == "before":  # the gather before zone blocks: every tile's parts whole, every level's totals at once
        parts = [gio.read_arrays(p)[0] for p in paths]
        sums = []
        for i, z in enumerate(counts):
            total: dict[str, np.ndarray] = {}
            for part in parts:
                rows = part[f"L{i}.rows"]
                for key, value in part.items():
                    if key.startswith(f"L{i}.") and key != f"L{i}.rows":
                        name = key.split(".", 1)[1]
                        total.setdefault(name, np.zeros((z, *value.shape[1:])))[rows] += value
            sums.append(total)
        gather_lost(parts, len(levels))
        for s in sums:  # what change_table then computed from each level's draws
            result[len(result)] = (summarize_draws(s["sink"], s["sink_draws"], INTERVAL,
                                                   {k: s[f"sink_src_{k}"] for k in SOURCES}),
                                   summarize_draws(s["both"], s["both_draws"], INTERVAL, u=False))
    else:
        gather_lost([read_lost(p, {**ident, "tile": t.id}, "")[0] for t, p in zip(tiles, paths, strict=True)],
                    len(levels))
        sums_after = []
        for level in levels:
            s = gather_level(paths, tiles, levels, counts, level, ident, interval_pct=INTERVAL, sources=SOURCES,
                             zone_block=block)
            result[len(result)] = (s["sink_draws"], s["both_draws"])
            sums_after.append(s)
    if tables and mode == "after":  # and the tables' finish: change_table of every level from the summaries
        _change_tables(sums_after, counts)
    wall = time.perf_counter() - t0
    flat = {}
    for i, (sink, both) in result.items():
        flat |= {f"{i}.lo": sink.lo, f"{i}.hi": sink.hi, f"{i}.u": sink.u_pct, f"{i}.blo": both.lo, f"{i}.bhi": both.hi}
        flat |= {f"{i}.share_{k}": v for k, v in sink.shares.items()}
    np.savez(out, **flat)
    print(RESULT_TAG + json.dumps({"peak_mib": vmhwm_mib(), "wall_s": wall}))


def write_trend_parts(d: Path, zones: int, tiles: int, draws: int, years: int, seed: int = 1) -> list[str]:
    from greensink import io as gio

    rng = np.random.default_rng(seed)
    paths = []
    for t in range(tiles):
        rows = _rows(zones, t, tiles)
        arrays = {"L0.rows": rows, "L0.typed_ha": rng.uniform(1, 2, rows.size),
                  "L0.observed_all_ha": rng.uniform(0.5, 1, rows.size)}
        for k in range(years):
            trend = 5.0 * k + 100.0
            arrays[f"L0.est_{k}"] = trend + rng.standard_normal(rows.size)
            arrays[f"L0.draws_{k}"] = trend + rng.standard_normal((rows.size, draws))
            arrays[f"L0.obs_est_{k}"] = 0.8 * arrays[f"L0.est_{k}"]
            arrays[f"L0.obs_draws_{k}"] = 0.8 * arrays[f"L0.draws_{k}"]
        meta = {"format": 1, "tile": f"t{t:03d}", "levels": ["parcel"], "n_zones": [zones]}
        paths.append(str(gio.write_arrays(d / f"trend_{t:03d}.npz", arrays, meta)))
    return paths


def trend_child(mode: str, paths: list[str], zones: int, years: int, block: int, out: str) -> None:
    import geopandas as gpd
    import pandas as pd
    from shapely import points

    from greensink.trend import level_trend_table
    from greensink.trend_tiles import level_blocks

    ids = [f"P{i}" for i in range(zones)]
    layer = gpd.GeoDataFrame({"zone_id": ids, "parent_id": "C1", "level": "parcel", "name": ids},
                             geometry=points(np.arange(zones, dtype=float), 0.0), crs="EPSG:32651")
    year_list = [2020 + 2 * k for k in range(years)]
    tables = [pd.DataFrame({"zone_id": ids, "area_ha": 2.0, "carbon_t": 100.0 + k}) for k in range(years)]
    tiles = [SimpleNamespace(id=f"t{t:03d}") for t in range(len(paths))]
    expect = {"format": 1, "levels": ["parcel"], "n_zones": [zones]}
    t0 = time.perf_counter()
    if mode == "before":  # the level's sums whole, then its table
        ((_, _, s),) = level_blocks(paths, tiles, 0, expect, zone_block=zones)
        table = level_trend_table(layer, tables, s, year_list, INTERVAL, 50.0)
    else:
        table = pd.concat([level_trend_table(layer.iloc[z0:z1], tables, s, year_list, INTERVAL, 50.0)
                           for z0, z1, s in level_blocks(paths, tiles, 0, expect, zone_block=block)], ignore_index=True)
    wall = time.perf_counter() - t0
    pd.DataFrame(table.drop(columns="geometry")).to_parquet(out)
    print(RESULT_TAG + json.dumps({"peak_mib": vmhwm_mib(), "wall_s": wall}))


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zones", default="100000,1000000", help="change: parcel counts, comma-separated")
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--tiles", type=int, default=16)
    ap.add_argument("--block", type=int, default=None, help="change: zones per block (default the gather's)")
    ap.add_argument("--before-max-zones", type=int, default=200_000,
                    help="run the unblocked change gather only up to this many parcels (it needs ~24 GiB at 10⁶)")
    ap.add_argument("--trend-zones", type=int, default=50_000, help="trend: zones of the one level (0: skip)")
    ap.add_argument("--trend-before-max-zones", type=int, default=100_000,
                    help="run the unblocked trend gather only up to this many zones (2.4 GiB at 50 000)")
    ap.add_argument("--years", type=int, default=3)
    ap.add_argument("--trend-block", type=int, default=None, help="trend: zones per block (default the gather's)")
    ap.add_argument("--tables", action="store_true", help="change after: also make every level's change table")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    from greensink import resources
    from greensink.aggregate.tiles import ZONE_BLOCK
    from greensink.trend_tiles import TREND_ZONE_BLOCK

    block, trend_block = a.block or ZONE_BLOCK, a.trend_block or TREND_ZONE_BLOCK
    if a.child:
        kind, mode, out, *rest = a.child
        if kind == "change":
            change_child(mode, json.loads(rest[0]), json.loads(rest[1]), block, out, a.tables)
        else:
            trend_child(mode, json.loads(rest[0]), int(rest[1]), a.years, trend_block, out)
        return
    print(machine_summary(), flush=True)
    me = [sys.executable, __file__, "--draws", str(a.draws), "--years", str(a.years), "--block", str(block),
          "--trend-block", str(trend_block), *(["--tables"] if a.tables else []), "--child"]
    per_before = None
    for zones in (int(z) for z in a.zones.split(",") if z):
        with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
            d = Path(tmp)
            t0 = time.perf_counter()
            paths, counts = write_change_parts(d, zones, a.tiles, a.draws)
            size = sum(Path(p).stat().st_size for p in paths) / 2**30
            print(f"change: {a.tiles} parts files of {sum(counts)} zones over 4 levels ({zones} parcels), {a.draws} "
                  f"draws: {size:.2f} GiB, written in {time.perf_counter() - t0:.0f} s", flush=True)
            outs = {}
            for mode in ("before", "after"):
                if mode == "before" and zones > a.before_max_zones:
                    est = "" if per_before is None else (f": about {(resources.GATHER_BASE_MIB + per_before * sum(counts) * a.draws / 2**20) / 1024:.1f} GiB "
                                                         f"at the {per_before:.0f} bytes per zone and draw measured below it")
                    print(f"  before: not run above {a.before_max_zones} parcels{est}", flush=True)
                    continue
                out = str(d / f"{mode}.npz")
                r = run_child([*me, "change", mode, out, json.dumps(paths), json.dumps(counts)], f"change {mode}")
                outs[mode] = dict(np.load(out))
                per = (r["peak_mib"] - resources.GATHER_BASE_MIB) * 2**20 / (sum(counts) * a.draws)
                if mode == "before":
                    per_before = per
                print(f"  {mode}: peak {r['peak_mib']:.0f} MiB, {r['wall_s']:.1f} s wall"
                      + (f" (blocks of {block} zones{', and the tables' if a.tables else ''})" if mode == "after" else "")
                      + f"; {per:.1f} bytes per zone and draw above {resources.GATHER_BASE_MIB} MiB", flush=True)
            ask = resources.gather_mem_mb("change_gather", counts, a.draws)
            print(f"  resources asks {ask} MB" + (f"; summaries before == after: {'PASS (bit for bit)' if _same(*outs.values()) else 'FAIL'}"
                                                  if len(outs) == 2 else ""), flush=True)
    if a.trend_zones:
        with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
            d = Path(tmp)
            paths = write_trend_parts(d, a.trend_zones, a.tiles, a.draws, a.years)
            size = sum(Path(p).stat().st_size for p in paths) / 2**30
            print(f"trend: {a.tiles} parts files of {a.trend_zones} zones, {a.years} years, {a.draws} draws: "
                  f"{size:.2f} GiB", flush=True)
            tables = {}
            for mode in ("before", "after"):
                if mode == "before" and a.trend_zones > a.trend_before_max_zones:
                    print(f"  before: not run above {a.trend_before_max_zones} zones", flush=True)
                    continue
                out = str(d / f"{mode}.parquet")
                r = run_child([*me, "trend", mode, out, json.dumps(paths), str(a.trend_zones)], f"trend {mode}")
                tables[mode] = out
                print(f"  {mode}: peak {r['peak_mib']:.0f} MiB, {r['wall_s']:.1f} s wall"
                      + (f" (blocks of {trend_block} zones)" if mode == "after" else ""), flush=True)
            import pandas as pd

            same = ""
            if len(tables) == 2:
                x, y = (pd.read_parquet(p) for p in tables.values())
                same = f"; tables before == after: {'PASS (bit for bit)' if x.equals(y) else 'FAIL'}"
            ask = resources.gather_mem_mb("trend_gather", [a.trend_zones], a.draws, years=a.years)
            print(f"  resources asks {ask} MB{same}", flush=True)


if __name__ == "__main__":
    main()
