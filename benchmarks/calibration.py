"""Do greensink's 90 % intervals hold the truth nine times in ten? Coverage per level (issue 11).

Runs many realisations of a small demo city through the real workflow (Snakemake, this
checkout's Snakefile, one temporary project folder per realisation, as tests/test_workflow.py
runs it). Realisation k uses demo seed ``--seed + k`` (another city, other plots and their
measurement errors, other clouds) and analysis seed ``--seed + k`` (other bootstrap draws). The
demo's truth is made on 2 m cells (greensink.demo), so it does not share the pipeline's
per-pixel model. For each level (city, district, block, parcel) it counts

* stock: zone-years with carbon_t_lo <= truth <= carbon_t_hi (results/{year}/zones/{level}.csv
  against resources/demo/truth/zones_{year}_{level}.csv);
* sink: zones with sink_t_yr_lo <= true sink <= sink_t_yr_hi (results/change/{y0}_{y1}/zones/
  {level}.csv against the truth's stock difference per year);

pooled over realisations (and years), and the intervals' mean width: stock as % of the estimate,
sink as % of the zone's stock and as the median ratio to the true sink's size. The mean stock width
is pulled up by zones with next to no carbon (a parcel without green space), so the median is printed
beside it. A zone whose
estimate is NaN (never observed) counts as a miss. It also prints the pooled bias of the
estimates (sum over zones of estimate / sum of truth - 1). A realisation whose workflow fails is
reported (FAILED, with its folder kept) and left out of the pooled figures. ``--max-minutes`` starts
no realisation after that much wall time and summarises those done (the output says so).

Usage::

    python benchmarks/calibration.py                                  # 50 realisations of a 2 km demo
    python benchmarks/calibration.py --realisations 60 --jobs 1 --max-minutes 35   # what docs/method.md §6 quotes
    python benchmarks/calibration.py --realisations 2 --extent-m 1000 --blocks 2 2 --parcels-per-block 2 2

Each level's line ends with ``coverage <level> stock X sink Y`` (fractions, 2 decimals). The JSON
summary (``--out``, default benchmarks/results/calibration.json) holds the same figures unrounded,
the counts, each realisation's city bias and timing, and the settings.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _bench import machine_summary  # noqa: E402

LEVELS = ("city", "district", "block", "parcel")
NOMINAL = 0.90


def write_config(workdir: Path, args: argparse.Namespace, seed: int) -> Path:
    """The demo config with a small city, this realisation's seeds and the checkout's tables."""
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
    cfg["seed"] = seed
    cfg["years"] = list(args.years)
    cfg["demo"].update(
        {
            "seed": seed,
            "extent_m": args.extent_m,
            "blocks": list(args.blocks),
            "parcels_per_block": list(args.parcels_per_block),
            "scenes_per_year": args.scenes_per_year,
        }
    )
    cfg["model"]["n_bootstrap"] = args.n_bootstrap
    cfg["carbon"]["interval_pct"] = 100 * NOMINAL
    cfg["coefficients"] = str(ROOT / "config" / "coefficients.csv")
    cfg["targets"] = str(ROOT / "config" / "targets.yaml")
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def targets(years: list[int]) -> list[str]:
    """The zone tables a realisation needs (the report is not built)."""
    out = [f"results/{y}/zones/{lvl}.csv" for y in years for lvl in LEVELS]
    out += [f"results/change/{y0}_{y1}/zones/{lvl}.csv" for y0, y1 in zip(years[:-1], years[1:], strict=True) for lvl in LEVELS]
    return out


def run_realisation(k: int, args: argparse.Namespace, years: list[int], base: Path, deadline: float) -> dict:
    """Run realisation ``k`` through Snakemake; return its per-zone records (none if past ``deadline``)."""
    seed = args.seed + k
    if time.perf_counter() > deadline:
        return {"k": k, "seed": seed, "skipped": True}
    workdir = base / f"r{k:03d}_seed{seed}"
    workdir.mkdir(parents=True, exist_ok=True)
    write_config(workdir, args, seed)
    cmd = [sys.executable, "-m", "snakemake", *targets(years), "--snakefile", str(ROOT / "Snakefile"),
           "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"), "--cores", str(args.cores)]
    # this checkout's package first, as the other benchmarks do (they put src/ first on sys.path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:  # reported and counted, not pooled; the log stays in the folder
        tail = [ln for ln in proc.stderr.splitlines() if "Error" in ln or "error" in ln][-3:]
        return {"k": k, "seed": seed, "seconds": round(seconds, 1), "rows": [], "failed": " | ".join(tail) or "failed",
                "workdir": str(workdir)}
    rows = zone_rows(workdir, years)
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return {"k": k, "seed": seed, "seconds": round(seconds, 1), "rows": rows}


def zone_rows(workdir: Path, years: list[int]) -> list[dict]:
    """One record per zone-year (stock) and per zone-pair of years (sink): estimate, bounds, truth."""
    rows = []
    truth = {}
    for year in years:
        for level in LEVELS:
            t = pd.read_csv(workdir / f"resources/demo/truth/zones_{year}_{level}.csv", dtype={"zone_id": str})
            truth[year, level] = t.set_index("zone_id")["carbon_t"]
            est = pd.read_csv(workdir / f"results/{year}/zones/{level}.csv", dtype={"zone_id": str})
            est = est.set_index("zone_id").reindex(truth[year, level].index)
            for zid, tv in truth[year, level].items():
                e = est.loc[zid]
                rows.append({"kind": "stock", "level": level, "zone_id": zid, "year": year, "truth": float(tv),
                             "est": float(e["carbon_t"]), "lo": float(e["carbon_t_lo"]), "hi": float(e["carbon_t_hi"])})
    for y0, y1 in zip(years[:-1], years[1:], strict=True):
        for level in LEVELS:
            ch = pd.read_csv(workdir / f"results/change/{y0}_{y1}/zones/{level}.csv", dtype={"zone_id": str})
            ch = ch.set_index("zone_id").reindex(truth[y0, level].index)
            for zid in truth[y0, level].index:
                t0, t1 = truth[y0, level][zid], truth[y1, level][zid]
                c = ch.loc[zid]
                rows.append({"kind": "sink", "level": level, "zone_id": zid, "year": y1,
                             "truth": float((t1 - t0) / (y1 - y0)), "stock": float((t0 + t1) / 2),
                             "est": float(c["sink_t_yr"]), "lo": float(c["sink_t_yr_lo"]),
                             "hi": float(c["sink_t_yr_hi"])})
    return rows


def summarise(rows: pd.DataFrame) -> dict:
    """Coverage, widths and bias per level from the pooled zone records."""
    out = {}
    for level in LEVELS:
        s = rows[(rows["kind"] == "stock") & (rows["level"] == level)]
        k = rows[(rows["kind"] == "sink") & (rows["level"] == level)]
        s_hit = (s["lo"] <= s["truth"]) & (s["truth"] <= s["hi"])  # NaN compares False: a miss
        k_hit = (k["lo"] <= k["truth"]) & (k["truth"] <= k["hi"])
        s_pos = s[s["est"] > 0]
        k_pos = k[(k["stock"] > 0) & (k["truth"].abs() > 0)]
        out[level] = {
            "stock_coverage": float(s_hit.mean()),
            "sink_coverage": float(k_hit.mean()),
            "n_stock": int(len(s)),
            "n_sink": int(len(k)),
            "n_nan": int(s["est"].isna().sum()),
            "stock_width_pct_of_estimate": float(100 * ((s_pos["hi"] - s_pos["lo"]) / s_pos["est"]).mean()),
            "stock_width_pct_of_estimate_median": float(100 * ((s_pos["hi"] - s_pos["lo"]) / s_pos["est"]).median()),
            "sink_width_pct_of_stock": float(100 * ((k_pos["hi"] - k_pos["lo"]) / k_pos["stock"]).mean()),
            "sink_width_over_abs_true_sink_median": float(((k_pos["hi"] - k_pos["lo"]) / k_pos["truth"].abs()).median()),
            "stock_bias_pct": float(100 * (s["est"].sum() / s["truth"].sum() - 1)),
            "stock_abs_error_pct_median": float(100 * ((s_pos["est"] / s_pos["truth"] - 1).abs()).median()),
            "sink_bias_t_yr_per_zone": float((k["est"] - k["truth"]).mean()),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--realisations", type=int, default=50, help="demo realisations (default 50)")
    ap.add_argument("--jobs", type=int, default=1, help="realisations run at once (default 1)")
    ap.add_argument("--cores", type=int, default=1, help="snakemake --cores per realisation (default 1)")
    ap.add_argument("--seed", type=int, default=1000, help="seed of realisation 0; realisation k uses seed + k")
    ap.add_argument("--extent-m", type=float, default=2000.0, help="side of the demo city, m (default 2000)")
    ap.add_argument("--blocks", type=int, nargs=2, default=(4, 2), help="blocks across and down (default 4 2)")
    ap.add_argument("--parcels-per-block", type=int, nargs=2, default=(3, 3), help="default 3 3")
    ap.add_argument("--scenes-per-year", type=int, default=4, help="in-season scenes per year (default 4)")
    ap.add_argument("--n-bootstrap", type=int, default=100, help="model.n_bootstrap (default 100)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "calibration.json")
    ap.add_argument("--workdir", type=Path, default=None, help="keep realisations' folders here (with --keep)")
    ap.add_argument("--keep", action="store_true", help="keep each realisation's project folder")
    ap.add_argument("--years", type=int, nargs="+", default=[2023, 2024],
                    help="reporting years of each realisation (default 2023 2024: the two years the shipped "
                         "calibration.json was measured on; the demo config itself lists three)")
    ap.add_argument("--max-minutes", type=float, default=None,
                    help="start no realisation after this many minutes of wall time; summarise those done")
    args = ap.parse_args(argv)
    if args.realisations < 1 or args.jobs < 1:
        ap.error("--realisations and --jobs must be >= 1")
    years = sorted(args.years)
    base = args.workdir or Path(tempfile.mkdtemp(prefix="greensink-calibration-"))
    base.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    load0 = os.getloadavg()[0]
    print(f"calibration: {args.realisations} realisations of a {args.extent_m:g} m demo "
          f"({args.blocks[0]}x{args.blocks[1]} blocks of {args.parcels_per_block[0]}x{args.parcels_per_block[1]} parcels, "
          f"{args.scenes_per_year} scenes/year, n_bootstrap {args.n_bootstrap}), seeds {args.seed}..{args.seed + args.realisations - 1}, "
          f"--jobs {args.jobs} --cores {args.cores}, nominal {NOMINAL:.0%} intervals")
    print(f"machine: {machine_summary()}; load average {load0:.1f} at start; {started:%Y-%m-%d %H:%M} UTC")
    t0 = time.perf_counter()
    results, failed = [], []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        deadline = t0 + 60 * args.max_minutes if args.max_minutes else float("inf")
        for res in pool.map(lambda k: run_realisation(k, args, years, base, deadline), range(args.realisations)):
            if res.get("skipped"):
                continue
            if res.get("failed"):
                print(f"  realisation {res['k']:3d} seed {res['seed']}: FAILED ({res['failed']}); see {res['workdir']}",
                      flush=True)
                failed.append(res)
                continue
            city = [r for r in res["rows"] if r["kind"] == "stock" and r["level"] == "city"]
            bias = np.mean([r["est"] / r["truth"] - 1 for r in city])
            print(f"  realisation {res['k']:3d} seed {res['seed']}: {res['seconds']:.0f} s, city stock "
                  f"{100 * bias:+.1f} % of truth", flush=True)
            results.append(res)
    wall = time.perf_counter() - t0
    if not results:
        print(f"all {len(failed)} realisations failed")
        return 1
    rows = pd.DataFrame([{**r, "realisation": res["k"]} for res in results for r in res["rows"]])
    summary = summarise(rows)
    secs = [r["seconds"] for r in results]
    stopped = f", stopped by --max-minutes {args.max_minutes:g}" if len(results) + len(failed) < args.realisations else ""
    print(f"{len(results)} realisations ({len(failed)} failed{stopped}) in {wall / 60:.1f} min (median {np.median(secs):.0f} s each); "
          f"load average {os.getloadavg()[0]:.1f} at end")
    for level in LEVELS:
        s = summary[level]
        print(f"{level:8s} {s['n_stock']:5d} zone-years, {s['n_sink']:5d} zone sinks, NaN {s['n_nan']}; "
              f"stock bias {s['stock_bias_pct']:+.1f} %, median |error| {s['stock_abs_error_pct_median']:.1f} %; "
              f"width stock {s['stock_width_pct_of_estimate']:.1f} % of estimate (median {s['stock_width_pct_of_estimate_median']:.1f} %), sink {s['sink_width_pct_of_stock']:.2f} % "
              f"of stock ({s['sink_width_over_abs_true_sink_median']:.2f} x |true sink|, median); "
              f"coverage {level} stock {s['stock_coverage']:.2f} sink {s['sink_coverage']:.2f}")
    payload = {
        "benchmark": "calibration",
        "date_utc": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine_summary(),
        "load_average_start": round(load0, 2),
        "wall_minutes": round(wall / 60, 2),
        "settings": {
            "realisations": args.realisations, "realisations_done": len(results),
            "max_minutes": args.max_minutes, "jobs": args.jobs, "cores": args.cores, "seed": args.seed,
            "extent_m": args.extent_m, "blocks": list(args.blocks), "parcels_per_block": list(args.parcels_per_block),
            "scenes_per_year": args.scenes_per_year, "n_bootstrap": args.n_bootstrap, "years": years,
            "nominal": NOMINAL,
        },
        "levels": summary,
        "failed": [{"k": r["k"], "seed": r["seed"], "error": r["failed"]} for r in failed],
        "realisations": [
            {"k": r["k"], "seed": r["seed"], "seconds": r["seconds"],
             "city_stock_bias_pct": [round(100 * (x["est"] / x["truth"] - 1), 4) for x in r["rows"]
                                     if x["kind"] == "stock" and x["level"] == "city"]}
            for r in results
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"summary written to {args.out}")
    if not args.keep and args.workdir is None:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
