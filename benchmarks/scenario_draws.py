"""Rule scenario_zones with and without the baseline year's zone draws record (issue 14 item 3, issue 17 item 2).

On a finished run folder (the demo's, with its scenarios), calls greensink.scenario.run.run_scenario_zones for
every plan, alternately drawing the baseline again (before: no record) and reading rule aggregate's record
results/{year}/zones/{level}.draws.npz (after), in one process; prints the CPU and wall time of each call and
the largest difference between the two outputs' difference columns (t C, and as a share of the zone's stock).

Usage: .venv/bin/python benchmarks/scenario_draws.py RUN_FOLDER [--config CONFIG] [--repeats 2]
(CONFIG: the run's config file; default RUN_FOLDER/config.yaml, else the demo config greensink ships.)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from greensink import io, package_data
from greensink.config import read_yaml, resolve_paths, validate
from greensink.scenario.files import BASELINE_KEYS
from greensink.scenario.run import run_scenario_zones

BASE_FILES = {"ndvi": "ndvi.tif", "fvc": "fvc.tif", "canopy": "canopy.tif", "height": "height.tif",
              "vegetation": "vegetation.tif", "classes": "vegetation_class.tif"}
SCEN_RASTERS = ("ndvi", "fvc", "canopy", "height", "vegetation", "tree_shrub", "fractions", "changes")


def runner_args(run: Path, cfg: dict, sc: dict) -> tuple[list, dict, int, list[str]]:
    """The positional and keyword arguments rule scenario_zones passes for plan ``sc`` of the run in ``run``."""
    res = run / "results"
    levels = [z["level"] for z in cfg["zones"]]
    year = int(sc.get("baseline_year") or cfg["years"][-1])
    baseline = {k: res / f"{year}/{v}" for k, v in BASE_FILES.items()}
    types_dir = res / "types" / str(year) if (res / "types" / str(year)).is_dir() else res / "types"
    baseline.update(fractions=types_dir / "fractions.tif", greenspace=types_dir / "greenspace.gpkg")
    assert set(baseline) == set(BASELINE_KEYS)
    name = sc["name"]
    layers = {k: res / f"scenarios/{name}/{k}.tif" for k in SCEN_RASTERS}
    layers["greenspace"] = res / f"scenarios/{name}/greenspace.gpkg"
    targets = Path(cfg["targets"]) if Path(cfg["targets"]).is_absolute() else run / cfg["targets"]
    gs = cfg.get("greenspace")
    args = [[res / f"zones/{lv}.gpkg" for lv in levels], [res / f"zones/{lv}_coverage.npz" for lv in levels],
            res / "zones/grid.json", baseline, res / f"{year}/ndvi_se.tif", res / f"{year}/model/models.json",
            [res / f"{year}/zones/{lv}.gpkg" for lv in levels], layers, res / f"scenarios/{name}/models.json", targets]
    kw = dict(scenario=sc, years=[year], levels=levels, types=list(gs["types"]) if gs else ["VEG"], greenspace=gs,
              park_service=cfg["indicators"]["park_service"], interval_pct=cfg["carbon"]["interval_pct"],
              min_observed_pct=cfg["carbon"]["min_observed_pct"], uncertainty=cfg.get("uncertainty", {}),
              seed=cfg["seed"])
    return args, kw, year, levels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    path = a.config or (a.run / "config.yaml")
    if not path.exists():
        path = package_data.file_path(package_data.DEMO_CONFIG)
    given = read_yaml(path)
    cfg = resolve_paths(validate(given), a.run, given)
    totals = {"before": [0.0, 0.0], "after": [0.0, 0.0]}
    worst_t, worst_rel = 0.0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(a.repeats):
            order = ("before", "after") if rep % 2 == 0 else ("after", "before")
            for sc in cfg["scenarios"]:
                args, kw, year, levels = runner_args(a.run, cfg, sc)
                outs = {}
                for label in order:
                    d = Path(tmp) / label
                    draws = [a.run / f"results/{year}/zones/{lv}.draws.npz" for lv in levels] if label == "after" else None
                    c0, w0 = time.process_time(), time.perf_counter()
                    outs[label] = run_scenario_zones(*args, [d / f"{lv}.gpkg" for lv in levels], d / "totals.csv",
                                                     **kw, baseline_draws=draws)
                    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
                    totals[label][0] += cpu
                    totals[label][1] += wall
                    print(f"repeat {rep + 1} {sc['name']:>14} {label:>6}: CPU {cpu:6.2f} s, wall {wall:6.2f} s", flush=True)
                for lv in levels:
                    new, old = outs["after"][0][lv], outs["before"][0][lv]
                    stock = float(np.nanmax(np.abs(io.read_vector(a.run / f"results/{year}/zones/{lv}.gpkg")["carbon_t"])))
                    for col in [c for c in old.columns if c.startswith("difference_t")]:
                        x, y = new[col].to_numpy(float), old[col].to_numpy(float)
                        if not np.array_equal(np.isnan(x), np.isnan(y)):
                            sys.exit(f"{sc['name']} {lv} {col}: NaN in one output only")
                        d = float(np.nanmax(np.abs(x - y), initial=0.0))
                        worst_t, worst_rel = max(worst_t, d), max(worst_rel, d / stock)
    for label, (cpu, wall) in totals.items():
        print(f"{label:>6} total: CPU {cpu:.2f} s, wall {wall:.2f} s")
    print(f"CPU before/after: {totals['before'][0] / totals['after'][0]:.2f}x; largest difference between the outputs "
          f"{worst_t:.3g} t C ({worst_rel:.3g} of the level's largest zone stock)")


if __name__ == "__main__":
    main()
