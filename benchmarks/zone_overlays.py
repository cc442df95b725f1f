#!/usr/bin/env python
"""Benchmark: the zone overlays of the park-service indicator, the old brute force against the new
subdivided overlay, in one run, for growing numbers of zones.

    python benchmarks/zone_overlays.py                    # 1,000 / 10,000 / 50,000 zones
    python benchmarks/zone_overlays.py --zones 2000 5000  # other sizes
    python benchmarks/zone_overlays.py --quick            # 400 zones, a few seconds
    python benchmarks/zone_overlays.py --zones 1000000 --sample 300   # 10^6 zones, old method on 300 of them

For each size a synthetic city is generated from a fixed seed, shaped like the demo city: parcels
of about 150 m on a jittered lattice (so the city grows with the zones: 4.7 km across for 1,000
zones, 33.5 km for 50,000), round-ish parks of 2–30 ha at the demo's density (14 per 25 km²),
residential land inside about half of the parcels and population polygons of 5 × 5 parcels.
The service area (:func:`greensink.indicators.service_area`, one polygon that grows with the
city) is computed once, untimed, and both methods start from it:

* **old**: the implementation before issue 14 (copied here as the reference): every zone
  intersected with the whole residential union and the whole service area; the population
  overlay of every zone ∩ the whole service area;
* **new**: :func:`greensink.indicators.residential_coverage_pct` and
  :func:`~greensink.indicators.population_coverage_pct` (pieces of bounded size met through an
  STRtree), as the aggregate rule calls them.

It also times the other overlays the aggregate rule makes for a zone layer, against the old
STRtree-only overlay: :func:`greensink.aggregate.overlay_areas_m2` of the zones against the
green-space layer (here the parks, one feature each) and against a *dissolved* layer (all parks as
one MultiPolygon feature, as a user's green-space file may come), and the people per zone
(:func:`greensink.overlay.population_in_zones`). The service area is timed on its own (new method
only) and added to the per-level total. A last line per size (``park service, rule:``) times the rule's
park-service part as it is since issue 14 item 3: :func:`greensink.indicators.service_overlay` once per
run, then per level the people per zone once and the columns from that overlay, against the per-level
code (service area, both coverages, people per zone), and checks the columns bit for bit. Each line prints both wall times, their ratio, the CPU times of the process
(steadier than wall time on a shared machine) and the largest difference of
the results (percentage points, or m² relative to the zone's area); the script exits with status 1
if a difference exceeds 1e-9. The last line is ``zone overlays old/new time ratio at N zones: X``
for the largest size.

With ``--sample N`` the old method, whose time grows as zones × city (737 s of CPU at 50,000
zones), runs only on N zones drawn at random (fixed seed) from each size larger than N: the new
results of those zones (taken from the run over all zones) are compared with it, and the old
time over all zones is extrapolated as its time on the sample × zones / N (the city, hence the
old per-zone cost, is the same for the sample as for all zones). Each size prints its peak memory
(VmHWM of the process, reset when the size starts where Linux allows it (``/proc/self/clear_refs``):
the generated city, the service area and the overlays). The summary gives the new method's CPU time
per zone at each size and its ratio to the smallest size's (1.0 when the time is linear in the zones).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # measure this checkout
import geopandas as gpd  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import shapely  # noqa: E402
from _bench import machine_summary, reset_vmhwm, vmhwm_mib  # noqa: E402  (benchmarks/_bench.py)

from greensink.aggregate import overlay_areas_m2  # noqa: E402
from greensink.indicators import (  # noqa: E402
    DEFAULT_SERVICE_RULES,
    park_service_columns,
    population_coverage_pct,
    residential_coverage_pct,
    service_area,
    service_overlay,
)
from greensink.overlay import population_in_zones  # noqa: E402

PARCEL_M = 150.0
TOLERANCE = 1e-9


# ----------------------------------------------------------------------------- the old implementation


def old_overlay_areas_m2(zone_geoms, geoms):
    """overlay_areas_m2 before issue 14: whole geometries through an STRtree, no subdivision."""
    if len(geoms) == 0:
        return sp.csr_matrix((len(zone_geoms), 0))
    tree = shapely.STRtree(geoms)
    zi, gi = tree.query(zone_geoms, predicate="intersects")
    area = shapely.area(shapely.intersection(zone_geoms[zi], geoms[gi])) if len(zi) else np.zeros(0)
    return sp.csr_matrix((area, (zi, gi)), shape=(len(zone_geoms), len(geoms)))


def old_population_in_zones(zone_geoms, population, column):
    polys = population.geometry.values
    people = population[column].to_numpy(dtype=float)
    share = old_overlay_areas_m2(zone_geoms, polys)
    poly_area = shapely.area(polys)
    weights = share @ sp.diags(np.where(poly_area > 0, 1.0 / np.where(poly_area > 0, poly_area, 1), 0.0))
    return np.asarray(weights @ people).ravel()


def old_residential_coverage_pct(zone_geoms, residential_geoms, served):
    residential = shapely.union_all(np.asarray(residential_geoms, dtype=object))
    res_in_zone = shapely.intersection(zone_geoms, residential)
    total = shapely.area(res_in_zone)
    covered = shapely.area(shapely.intersection(res_in_zone, served))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, 100.0 * covered / np.where(total > 0, total, 1.0), np.nan)


def old_population_coverage_pct(zone_geoms, population, column, served):
    people = old_population_in_zones(zone_geoms, population, column)
    covered = old_population_in_zones(shapely.intersection(zone_geoms, served), population, column)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(people > 0, 100.0 * covered / np.where(people > 0, people, 1.0), np.nan)


# ----------------------------------------------------------------------------- data


def make_city(n_zones: int, seed: int = 14):
    """(zones, parks, residential, population GeoDataFrame) of a city with about ``n_zones`` parcels."""
    rng = np.random.default_rng([seed, n_zones])
    n = max(5, round(math.sqrt(n_zones)))
    nodes = np.stack(np.meshgrid(np.arange(n + 1) * PARCEL_M, np.arange(n + 1) * PARCEL_M), axis=-1).astype(float)
    nodes[1:-1, 1:-1] += rng.uniform(-0.2, 0.2, (n - 1, n - 1, 2)) * PARCEL_M
    quads = np.stack([nodes[:-1, :-1], nodes[:-1, 1:], nodes[1:, 1:], nodes[1:, :-1], nodes[:-1, :-1]], axis=2)
    zones = shapely.polygons(quads.reshape(n * n, 5, 2))
    extent = n * PARCEL_M
    a = extent**2 / 25e6
    n_parks = max(3, round(14 * a))
    areas = np.exp(rng.uniform(math.log(2e4), math.log(3e5), n_parks))
    centres = rng.uniform(0.03 * extent, 0.97 * extent, (n_parks, 2))
    theta = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    parks = []
    for (cx, cy), area in zip(centres, areas, strict=True):
        r = 1 + sum(rng.uniform(0, 0.3) / k * np.cos(k * theta + rng.uniform(0, 2 * np.pi)) for k in range(2, 6))
        blob = shapely.Polygon(np.column_stack([r * np.cos(theta), r * np.sin(theta)]))
        s = math.sqrt(area / blob.area)
        parks.append(shapely.affinity.affine_transform(blob, [s, 0, 0, s, cx, cy]))
    picked = rng.random(len(zones)) < 0.5
    residential = shapely.buffer(zones[picked], -rng.uniform(5, 25, picked.sum()), join_style="mitre")
    residential = residential[~shapely.is_empty(residential)]
    nb = max(1, n // 5)
    bnodes = nodes[:: 5, :: 5][: nb + 1, : nb + 1]
    bquads = np.stack([bnodes[:-1, :-1], bnodes[:-1, 1:], bnodes[1:, 1:], bnodes[1:, :-1], bnodes[:-1, :-1]], axis=2)
    blocks = shapely.polygons(bquads.reshape(-1, 5, 2))
    population = gpd.GeoDataFrame({"people": rng.integers(0, 12_000, len(blocks)).astype(float)}, geometry=blocks,
                                  crs="EPSG:32651")
    return zones, parks, residential, population


# ----------------------------------------------------------------------------- timing


def timed(fn, *args):
    """(wall s, CPU s of this process, result)."""
    t, c = time.perf_counter(), time.process_time()
    out = fn(*args)
    return time.perf_counter() - t, time.process_time() - c, out


def max_pct_diff(a, b) -> float:
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return math.inf
    d = np.abs(np.nan_to_num(a) - np.nan_to_num(b))
    return float(d.max()) if len(d) else 0.0


def sample_rows(args: tuple, picked: np.ndarray) -> tuple:
    """The old method's arguments restricted to the zones ``picked`` (zones are the first argument)."""
    return (args[0][picked], *args[1:])


def run(n_zones: int, seed: int, sample: int | None = None) -> tuple[float, float, float, int, float, float, float, bool]:
    reset = reset_vmhwm()
    t_gen = time.perf_counter()
    zones, parks, residential, population = make_city(n_zones, seed)
    t_sa, c_sa, served = timed(service_area, parks)
    t_gen = time.perf_counter() - t_gen
    extent_km = math.sqrt(len(zones)) * PARCEL_M / 1e3
    print(f"\n{len(zones)} zones, city {extent_km:.1f} km across, {len(parks)} parks, {len(residential)} residential "
          f"polygons, {len(population)} population polygons; service area {shapely.get_num_coordinates(served)} "
          f"vertices ({t_sa:.2f} s, CPU {c_sa:.2f} s; both methods start from it); generated in {t_gen:.1f} s, peak "
          f"memory {'since this size started' if reset else 'so far'} {vmhwm_mib():.0f} MiB", flush=True)
    picked = None
    if sample is not None and sample < len(zones):
        picked = np.sort(np.random.default_rng([seed, 99]).choice(len(zones), sample, replace=False))
        print(f"  old method on {sample} zones drawn at random; its time over all {len(zones)} zones is extrapolated "
              f"(× {len(zones) / sample:.0f})", flush=True)
    total_old = total_new = cpu_old = cpu_new = 0.0
    worst = 0.0
    rows = [
        ("residential coverage", old_residential_coverage_pct, residential_coverage_pct, (zones, residential, served), "pct"),
        ("population coverage", old_population_coverage_pct, population_coverage_pct,
         (zones, population, "people", served), "pct"),
        ("overlay with a dissolved layer", old_overlay_areas_m2, overlay_areas_m2,
         (zones, np.array([shapely.union_all(parks)], dtype=object)), "area"),
        ("green-space layer (features)", old_overlay_areas_m2, overlay_areas_m2,
         (zones, np.asarray(parks, dtype=object)), "area"),
        ("people per zone", old_population_in_zones, population_in_zones, (zones, population, "people"), "people"),
    ]
    cpu_of, full = {}, {}
    for label, old, new, args, kind in rows:
        t_new, c_new, v_new = timed(new, *args)
        cpu_of[label], full[label] = c_new, v_new
        if picked is None:
            t_old, c_old, v_old = timed(old, *args)
        else:
            t_old, c_old, v_old = timed(old, *sample_rows(args, picked))
            t_old, c_old = t_old * len(zones) / len(picked), c_old * len(zones) / len(picked)
            v_new = v_new[picked]
        if kind == "pct":
            diff = max_pct_diff(v_new, v_old)
            unit = "percentage points"
        elif kind == "people":
            diff = float(np.max(np.abs(v_new - v_old) / np.maximum(np.abs(v_old), 1.0), initial=0.0))
            unit = "of the zone's people"
        else:
            zone_area = shapely.area(zones if picked is None else zones[picked])
            d = np.asarray(np.abs(v_new - v_old).max(axis=1).todense()).ravel() / zone_area
            diff = float(d.max())
            unit = "of the zone's area"
        worst = max(worst, diff)
        total_old, total_new, cpu_old, cpu_new = total_old + t_old, total_new + t_new, cpu_old + c_old, cpu_new + c_new
        print(f"  {label:32s} old {t_old:8.2f} s   new {t_new:7.2f} s   old/new {t_old / t_new:7.1f}   "
              f"(CPU {c_old:.2f} / {c_new:.2f} s = {c_old / c_new:.1f})   max difference {diff:.1e} {unit}", flush=True)
    print(f"  {'all overlays':32s} old {total_old:8.2f} s   new {total_new:7.2f} s   old/new {total_old / total_new:7.1f}   "
          f"(CPU {cpu_old:.2f} / {cpu_new:.2f} s = {cpu_old / cpu_new:.1f})   new: {1e6 * cpu_new / len(zones):.0f} µs CPU "
          f"per zone", flush=True)
    print(f"  {'with the service area (rule)':32s} new {total_new + t_sa:7.2f} s (CPU {cpu_new + c_sa:.2f} s): "
          f"{1e6 * (cpu_new + c_sa) / len(zones):.0f} µs CPU per zone; peak memory "
          f"(VmHWM, {'this size' if reset else 'process so far'}) {vmhwm_mib():.0f} MiB", flush=True)
    rule_per_run(zones, parks, residential, population, c_sa, cpu_of, full)
    return total_old, total_new, worst, len(zones), cpu_old, cpu_new, c_sa, reset


def rule_per_run(zones, parks, residential, population, c_sa: float, cpu_of: dict, full: dict) -> None:
    """The park-service part of rule aggregate as it is now (issue 14 item 3): the service area overlaid with
    the homes and the population once per run (``indicators.service_overlay``), then per zone level the people
    per zone once and the columns from the shared overlay (``park_service_columns(overlay=, people=)``),
    against the per-level code (service area, residential and population coverage, whose people overlay
    repeats the table's, and the table's people per zone: the lines above). The columns must be the
    per-level functions' numbers bit for bit."""
    homes = gpd.GeoDataFrame(geometry=residential, crs=population.crs)
    layer = gpd.GeoDataFrame(geometry=zones, crs=population.crs)
    _, c_once, once = timed(service_overlay, parks, DEFAULT_SERVICE_RULES, population, "people", homes)
    _, c_people, people = timed(population_in_zones, zones, population, "people")
    t0 = time.process_time()
    cols = park_service_columns(layer, parks, DEFAULT_SERVICE_RULES, population, "people", homes, overlay=once, people=people)
    c_cols = time.process_time() - t0
    same = (np.array_equal(cols["park_service_residential_pct"], full["residential coverage"], equal_nan=True)
            and np.array_equal(cols["park_service_population_pct"], full["population coverage"], equal_nan=True)
            and np.array_equal(people, full["people per zone"]))
    before = c_sa + cpu_of["residential coverage"] + cpu_of["population coverage"] + cpu_of["people per zone"]
    after = c_people + c_cols
    print(f"  park service, rule: before {before:.2f} s CPU per level (service area, residential and population "
          f"coverage, people per zone); now {c_once:.2f} s once per run (service_overlay) + {after:.2f} s per level "
          f"(people {c_people:.2f} s, columns {c_cols:.2f} s); 4 levels of this size {4 * before:.1f} -> "
          f"{c_once + 4 * after:.1f} s; columns and people {'bit-identical' if same else 'DIFFER'}", flush=True)
    if not same:
        raise SystemExit("park-service columns from the shared overlay differ from the per-level functions")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zones", type=int, nargs="+", default=[1000, 10_000, 50_000])
    ap.add_argument("--quick", action="store_true", help="400 zones only")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--sample", type=int, default=None,
                    help="run the old method on this many randomly drawn zones only (sizes above it), and "
                         "extrapolate its time to all zones")
    args = ap.parse_args(argv)
    sizes = [400] if args.quick else args.zones
    print(f"machine: {machine_summary()}; load average at start {os.getloadavg()[0]:.1f}")
    print(f"python {sys.version.split()[0]}, shapely {shapely.__version__} (GEOS {shapely.geos_version_string}), "
          f"numpy {np.__version__}")
    if args.sample is not None and args.sample < 1:
        ap.error("--sample must be >= 1")
    results = {n: run(n, args.seed, args.sample) for n in sizes}
    worst = max(r[2] for r in results.values())
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    print(f"\nagreement: {'PASS' if worst <= TOLERANCE else 'FAIL'} (max difference {worst:.1e}, tolerance {TOLERANCE:g})")
    first = results[sizes[0]]
    per_zone0, rule_zone0 = first[5] / first[3], (first[5] + first[6]) / first[3]
    for t_old, t_new, _, count, c_old, c_new, c_sa, _ in results.values():
        print(f"{count} zones: old {t_old:.2f} s, new {t_new:.2f} s, old/new {t_old / t_new:.1f} "
              f"(CPU old {c_old:.2f} s, new {c_new:.2f} s, old/new {c_old / c_new:.1f}); new CPU per zone "
              f"{1e6 * c_new / count:.0f} µs ({c_new / count / per_zone0:.2f}× the {first[3]}-zone figure), with the "
              f"service area {1e6 * (c_new + c_sa) / count:.0f} µs ({(c_new + c_sa) / count / rule_zone0:.2f}×)")
    t_old, t_new, _, count, *_ = results[sizes[-1]]
    note = f" (old extrapolated from {args.sample} zones)" if args.sample is not None and args.sample < count else ""
    print(f"peak memory (VmHWM, {'since the last size started' if results[sizes[-1]][7] else 'whole process'}): "
          f"{vmhwm_mib():.0f} MiB")
    print(f"zone overlays old/new time ratio at {count} zones: {t_old / t_new:.2f}{note}")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    raise SystemExit(main())
