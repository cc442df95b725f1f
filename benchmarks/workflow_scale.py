#!/usr/bin/env python
"""Benchmark: the whole tiled workflow on the demo city at several sizes, peak memory and time per job (issue 14 item 7).

    python benchmarks/workflow_scale.py                                  # 10 and 20 km at 10 m, tiles of 1024 px
    python benchmarks/workflow_scale.py --sizes-km 3 --tile 128          # a quick check (~3-5 min on 2 cores)
    python benchmarks/workflow_scale.py --sizes-km 10 20 30 --workdir /tmp/wscale
    python benchmarks/workflow_scale.py --from-json /tmp/wscale/10km.json /tmp/wscale/20km.json   # tables again

For each size S (``--sizes-km``) the script writes a config (``<workdir>/<S>km.yaml``): the demo config
(config/config.yaml: its zones, plots, models, zoning and three scenarios) with ``demo.extent_m`` = S km,
``demo.blocks`` scaled with the side so that parcels keep the demo's size (125 × 200 m: 25 parcels a block,
36,000 parcels at 30 km), ``years`` (``--years``, two by default: one change pair and the trend) and
``tiles.size_px`` (``--tile``). Then, in the project folder ``<workdir>/<S>km``, it runs

1. ``snakemake --cores N --directory <dir> --configfile <cfg> build_demo``: the demo generator, measured but
   reported apart (it is not a job a user runs: it holds the whole city in memory);
2. ``snakemake --cores N --directory <dir> --configfile <cfg>``: the whole default target (every rule: ingest,
   composite, vegetation, types, plots, model, carbon, coverage, fill, aggregate, targets, change, trend,
   transitions, zoning, scenarios, report, QGIS project).

While Snakemake runs, the script samples its process tree every ``--interval`` s (0.2) through /proc. Every rule
here is a ``script:`` rule, run as ``python .snakemake/scripts/tmpXXXX.<script>.py``: each such process is one
job; its rule and wildcards are read from the Snakemake object pickled in that file (kept with
``--skip-script-cleanup``), the file name (the script's, not always the rule's) being the fallback. Per job:

* **peak memory**: the larger of the job process's own peak resident set (``VmHWM``, last value read before it
  exits: exact for the process, spikes between samples included) and the largest sampled sum of the resident
  sets of the job process and its descendants;
* **CPU time**: user + system time of the job process and its reaped children (``/proc/<pid>/stat`` utime,
  stime, cutime, cstime) plus its live descendants', last value read: short by at most one interval of the
  job's threads at its end;
* **wall time**: first to last sample in which the job process was seen (± one interval).

The Snakemake processes themselves (the scheduler, and any per-job Snakemake process between it and the job's
Python) are reported on a separate line: they are not jobs.

Printed per size: one line per rule (jobs, total CPU s, summed wall s, largest job's wall s, largest peak MiB),
the total wall time, the load average during the run, and every job above ``--budget-mib`` (2048). Across
sizes: per rule, the growth exponent of the largest peak and of the total CPU time against the pixel count
(least squares of log value on log pixels: ≈ 1 grows with the area, ≈ 0 bounded by the tile), and an
**extrapolation** of each rule's largest peak to a Sentinel-2 tile (10980² px, ``--extrapolate-px``).
Each size's measurements are written to ``<workdir>/<S>km.json`` (``--from-json`` prints the tables again).
Exit status 1 if a workflow run fails or a job exceeds the budget. Figures in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from _bench import machine_summary  # noqa: E402  (benchmarks/_bench.py)

S2_TILE_PX = 10980 * 10980
DEMO_PARCEL_M = (125.0, 200.0)  # the demo config's parcels: 5000 m / (8 × 5) across, 5000 m / (5 × 5) down
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE_MIB = (os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096) / 2**20
SCRIPT_RE = re.compile(r"(\S*\.snakemake/scripts/tmp[^/.\s]*\.([A-Za-z0-9_\-]+)\.py)(?:\s|$)")
PICKLE_RE = re.compile(r"snakemake = pickle\.loads\((b'(?:[^'\\]|\\.)*'|b\"(?:[^\"\\]|\\.)*\")\)")
RULE_LINE_RE = re.compile(r"^\s*(?:local)?rule (\w+):\s*$")


# ----------------------------------------------------------------------------------------------- pure helpers
def script_name(cmdline: list[str]) -> tuple[str, str] | None:
    """The script name and path of a Snakemake script job from its command line (``python .../tmpab12.carbon.py``
    -> ``carbon``; also ``bash -c "set -euo pipefail; python .../tmpab12.carbon.py"``, the shell that runs it), or
    None when the process is not one."""
    for arg in cmdline[1:]:
        m = SCRIPT_RE.search(arg)
        if m:
            return m.group(2), m.group(1)
    return None


def rule_from_script(path: Path) -> tuple[str | None, str]:
    """Rule name and wildcards (``k=v,...``) of the Snakemake object pickled in a generated job script, or
    (None, "") when the file is gone or cannot be read (snakemake not importable, other format)."""
    try:
        text = path.read_text(errors="replace")
        m = PICKLE_RE.search(text)
        if not m:
            return None, ""
        import pickle

        obj = pickle.loads(ast.literal_eval(m.group(1)))
        wildcards = ",".join(f"{k}={v}" for k, v in dict(obj.wildcards.items()).items())
        return str(obj.rule), wildcards
    except Exception:  # noqa: BLE001 - any failure: fall back to the file name
        return None, ""


def growth_exponent(pixels: list[float], values: list[float]) -> float:
    """Least-squares slope of log(value) on log(pixels): 1 when the value grows with the area, 0 when it does
    not. NaN with fewer than two distinct sizes or a value that is not positive (no figure, not 0)."""
    pts = [(math.log(p), math.log(v)) for p, v in zip(pixels, values, strict=True)
           if p > 0 and v is not None and math.isfinite(v) and v > 0]
    if len({x for x, _ in pts}) < 2 or len(pts) < len(pixels):
        return float("nan")
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx


def extrapolate(pixels: float, value: float, exponent: float, to_pixels: float) -> float:
    """``value`` measured at ``pixels`` carried to ``to_pixels`` along value ∝ pixels^exponent (NaN if unknown)."""
    if not (math.isfinite(exponent) and math.isfinite(value)):
        return float("nan")
    return value * (to_pixels / pixels) ** exponent


def extrapolate_affine(pixels: list[float], values: list[float], to_pixels: float) -> float:
    """The line through the two largest sizes' values (a fixed part, e.g. the interpreter and libraries, plus a part
    per pixel) carried to ``to_pixels``; never below the largest value measured (NaN if unknown)."""
    (p1, v1), (p2, v2) = sorted(zip(pixels, values, strict=True))[-2:]
    if not all(math.isfinite(x) for x in (v1, v2)) or p2 == p1:
        return float("nan")
    return max(v2, v2 + (v2 - v1) / (p2 - p1) * (to_pixels - p2))


def expected_jobs(snakemake_log: str) -> dict[str, int]:
    """Jobs per rule that Snakemake reports starting (``rule X:`` / ``localrule X:`` lines of its log)."""
    counts: dict[str, int] = {}
    for line in snakemake_log.splitlines():
        m = RULE_LINE_RE.match(line)
        if m:
            counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts


def fmt(x: float, nd: int = 0) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{nd}f}"


# ----------------------------------------------------------------------------------------------- /proc sampling
def _read(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return None


def _stat(pid: int) -> tuple[float, float, int] | None:
    """(own CPU s, reaped children's CPU s, start time in ticks) of a process."""
    s = _read(f"/proc/{pid}/stat")
    if s is None:
        return None
    f = s[s.rfind(")") + 2:].split()  # fields from 3 (state) on
    ut, st, cut, cst, start = int(f[11]), int(f[12]), int(f[13]), int(f[14]), int(f[19])
    return (ut + st) / CLK_TCK, (cut + cst) / CLK_TCK, start


def _mem(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, MiB (0 when gone)."""
    s = _read(f"/proc/{pid}/status") or ""
    rss = hwm = 0.0
    for line in s.splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024
    return rss, hwm


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for tid in os.listdir(f"/proc/{pid}/task") if os.path.isdir(f"/proc/{pid}/task") else []:
        s = _read(f"/proc/{pid}/task/{tid}/children")
        if s:
            out.extend(int(c) for c in s.split())
    return out


def _cmdline(pid: int) -> list[str]:
    s = _read(f"/proc/{pid}/cmdline")
    return [a for a in s.split("\0") if a] if s else []


@dataclass
class Job:
    pid: int
    start_ticks: int
    script: str
    script_path: str
    rule: str = ""
    wildcards: str = ""
    first: float = 0.0
    last: float = 0.0
    cpu_s: float = 0.0
    hwm_mib: float = 0.0
    tree_peak_mib: float = 0.0

    @property
    def peak_mib(self) -> float:
        return max(self.hwm_mib, self.tree_peak_mib)

    @property
    def wall_s(self) -> float:
        return self.last - self.first


@dataclass
class Other:
    """The Snakemake processes (not jobs): largest resident set and CPU time of each, summed over them."""
    peak_mib: float = 0.0
    cpu_s: dict = field(default_factory=dict)


def monitor(cmd: list[str], cwd: Path, log_path: Path, interval: float, deadline: float | None = None) -> dict:
    """Run ``cmd`` and sample its process tree until it ends, or until ``deadline`` (``time.time()``), when it is
    stopped (SIGTERM: Snakemake stops its jobs) and only the jobs seen so far are reported (``stopped``: true).
    Returns the jobs, the Snakemake processes' figures, the return code, wall time and load averages."""
    jobs: dict[tuple[int, int], Job] = {}
    other = Other()
    loads: list[float] = []
    stopped = False
    t0 = time.monotonic()
    next_load = t0
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        while True:
            now = time.monotonic()
            if now >= next_load:
                loads.append(os.getloadavg()[0])
                next_load = now + 5.0
            tree: dict[int, int] = {}  # pid -> parent pid, the whole tree under snakemake
            stack = [proc.pid]
            while stack:
                p = stack.pop()
                for c in _children(p):
                    tree[c] = p
                    stack.append(c)
            job_of: dict[int, Job] = {}
            order = [proc.pid, *tree]  # parents before children (discovery order)
            for pid in order:
                st = _stat(pid)
                if st is None:
                    continue
                parent_job = job_of.get(tree.get(pid, -1))
                if parent_job is None:
                    cmdl = _cmdline(pid)
                    found = script_name(cmdl)
                    if found is not None:
                        name, spath = found
                        key = (pid, st[2])
                        job = jobs.get(key)
                        if job is None:
                            try:  # the script path is relative to the job's working directory
                                spath = os.path.join(os.readlink(f"/proc/{pid}/cwd"), spath)
                            except OSError:
                                pass
                            job = jobs[key] = Job(pid, st[2], name, spath, first=now)
                        job.last = now
                        job.cpu_s = st[0] + st[1]
                        rss, hwm = _mem(pid)
                        job.hwm_mib = max(job.hwm_mib, hwm)
                        job._rss = rss  # type: ignore[attr-defined]
                        job_of[pid] = job
                    else:  # a Snakemake (or shell) process: not a job
                        rss, _ = _mem(pid)
                        other.peak_mib = max(other.peak_mib, rss)
                        other.cpu_s[f"{pid}:{st[2]}"] = st[0]
                else:  # a descendant of a job
                    job_of[pid] = parent_job
                    rss, _ = _mem(pid)
                    parent_job._rss += rss  # type: ignore[attr-defined]
                    parent_job.cpu_s += st[0] + st[1]
            for job in {id(j): j for j in job_of.values()}.values():
                job.tree_peak_mib = max(job.tree_peak_mib, job._rss)  # type: ignore[attr-defined]
            if proc.poll() is not None:
                break
            if deadline is not None and time.time() > deadline and not stopped:
                stopped = True
                proc.terminate()
            time.sleep(interval)
        rc = proc.returncode
    wall = time.monotonic() - t0
    for job in jobs.values():
        rule, wc = rule_from_script(Path(job.script_path))
        job.rule, job.wildcards = rule or job.script, wc
    return {"jobs": [asdict(j) for j in jobs.values()], "snakemake_peak_mib": other.peak_mib,
            "snakemake_cpu_s": sum(other.cpu_s.values()), "returncode": rc, "stopped": stopped, "wall_s": wall,
            "load": [min(loads), sum(loads) / len(loads), max(loads)] if loads else [],
            "expected_jobs": expected_jobs(log_path.read_text(errors="replace"))}


# ----------------------------------------------------------------------------------------------- runs
def write_config(path: Path, km: float, years: list[int], tile: int | None, truth_cell_m: float | None) -> dict:
    import yaml

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    extent = km * 1000.0
    ppb = cfg["demo"].get("parcels_per_block", [5, 5])
    blocks = [max(2, round(extent / (DEMO_PARCEL_M[0] * ppb[0]))), max(2, round(extent / (DEMO_PARCEL_M[1] * ppb[1])))]
    cfg["years"] = list(years)
    cfg["demo"].update(extent_m=extent, blocks=blocks)
    if truth_cell_m is not None:
        cfg["demo"]["truth_cell_m"] = truth_cell_m
    cfg["tiles"] = {"size_px": tile}
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False))
    return {"extent_m": extent, "blocks": blocks, "parcels_per_block": ppb,
            "parcels": blocks[0] * blocks[1] * ppb[0] * ppb[1], "resolution": cfg["resolution"],
            "pixels": int(round(extent / cfg["resolution"])) ** 2, "years": list(years), "tile_px": tile,
            "truth_cell_m": cfg["demo"].get("truth_cell_m", 2)}


def git_head() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
        return rev + (" (+ uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):  # a copy made with git archive: its commit in .git_commit
        mark = REPO / ".git_commit"
        return mark.read_text().strip() if mark.exists() else "unknown"


def run_size(km: float, a: argparse.Namespace) -> dict:
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    tag = f"{km:g}km"
    cfg_path, run_dir = work / f"{tag}.yaml", work / tag
    info = write_config(cfg_path, km, a.years, a.tile, a.truth_cell_m)
    if run_dir.exists():  # a fresh run: only the demo city is kept when asked
        for child in run_dir.iterdir():
            if a.reuse_demo and child.name in ("resources", ".snakemake", ".greensink-project.json"):
                continue
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    base = [snakemake, "--cores", str(a.cores), "--directory", str(run_dir), "--configfile", str(cfg_path),
            "--skip-script-cleanup", "--nolock"]
    print(f"\n== {tag}: {info['pixels'] / 1e6:.2f} Mpx ({int(info['pixels'] ** 0.5)}² at {info['resolution']} m), "
          f"{info['parcels']:,} parcels, years {info['years']}, tiles {a.tile} px; commit {git_head()}", flush=True)
    out = {"size": tag, **info, "commit": git_head(), "machine": machine_summary(), "cores": a.cores,
           "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
    deadline = None
    if a.deadline_utc:  # HH:MM today (UTC)
        hh, mm = (int(x) for x in a.deadline_utc.split(":"))
        now = time.gmtime()
        deadline = time.time() + ((hh - now.tm_hour) * 60 + mm - now.tm_min) * 60 - now.tm_sec
    out["demo"] = monitor([*base, "build_demo"], REPO, run_dir / "snakemake_demo.log", a.interval, deadline)
    if out["demo"]["returncode"] != 0:
        print(f"demo generation failed: see {run_dir / 'snakemake_demo.log'}", flush=True)
        (work / f"{tag}.json").write_text(json.dumps(out, indent=1))
        return out
    out["workflow"] = monitor(base, REPO, run_dir / "snakemake_workflow.log", a.interval, deadline)
    out["ended_utc"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    if out["workflow"]["returncode"] != 0:
        print(f"workflow failed: see {run_dir / 'snakemake_workflow.log'}", flush=True)
    (work / f"{tag}.json").write_text(json.dumps(out, indent=1))
    return out


# ----------------------------------------------------------------------------------------------- report
def by_rule(jobs: list[dict]) -> dict[str, dict]:
    rules: dict[str, dict] = {}
    for j in jobs:
        r = rules.setdefault(j["rule"], {"jobs": 0, "cpu_s": 0.0, "wall_s": 0.0, "max_wall_s": 0.0, "peak_mib": 0.0,
                                         "peak_job": ""})
        peak = max(j["hwm_mib"], j["tree_peak_mib"])
        wall = j["last"] - j["first"]
        r["jobs"] += 1
        r["cpu_s"] += j["cpu_s"]
        r["wall_s"] += wall
        r["max_wall_s"] = max(r["max_wall_s"], wall)
        if peak >= r["peak_mib"]:
            r["peak_mib"], r["peak_job"] = peak, j["wildcards"]
    return rules


def report_size(res: dict, budget: float) -> list[str]:
    """Print one size's tables; return the jobs over the budget."""
    over: list[str] = []
    print(f"\n== {res['size']}: {res['pixels'] / 1e6:.2f} Mpx, {res['parcels']:,} parcels, tiles {res['tile_px']} px, "
          f"years {res['years']}, commit {res['commit']}, started {res['started_utc']} UTC")
    print(f"machine: {res['machine']}")
    for phase in ("demo", "workflow"):
        run = res.get(phase)
        if not run:
            continue
        rules = by_rule(run["jobs"])
        load = run["load"]
        status = "STOPPED at the deadline: jobs seen so far only" if run.get("stopped") else \
            f"exit status {run['returncode']}"
        print(f"\n{phase} ({'demo generation, not a user job' if phase == 'demo' else 'whole default target'}): "
              f"wall {run['wall_s']:.0f} s, {status}, load average (1 min) during the run "
              f"{fmt(load[0], 1) if load else '—'}–{fmt(load[2], 1) if load else '—'} (mean {fmt(load[1], 1) if load else '—'})")
        print(f"  {'rule':<24} {'jobs':>5} {'CPU s':>8} {'wall s':>8} {'max job wall s':>15} {'max peak MiB':>13}  largest job")
        for name, r in sorted(rules.items(), key=lambda kv: -kv[1]["peak_mib"]):
            flag = "  > budget" if r["peak_mib"] > budget else ""
            print(f"  {name:<24} {r['jobs']:>5} {r['cpu_s']:>8.1f} {r['wall_s']:>8.1f} {r['max_wall_s']:>15.1f} "
                  f"{r['peak_mib']:>13.0f}  {r['peak_job']}{flag}")
        tot_cpu = sum(r["cpu_s"] for r in rules.values())
        print(f"  {'(all jobs)':<24} {sum(r['jobs'] for r in rules.values()):>5} {tot_cpu:>8.1f}")
        print(f"  snakemake processes (scheduler, not jobs): peak {run['snakemake_peak_mib']:.0f} MiB, "
              f"CPU {run['snakemake_cpu_s']:.1f} s")
        seen = {k: v["jobs"] for k, v in rules.items()}
        missed = {k: (n, seen.get(k, 0)) for k, n in run["expected_jobs"].items() if k != "all" and seen.get(k, 0) != n}
        if missed:
            print("  jobs Snakemake started but not sampled as such (rule: started / sampled): "
                  + ", ".join(f"{k}: {n}/{s}" for k, (n, s) in missed.items()))
        for j in run["jobs"]:
            peak = max(j["hwm_mib"], j["tree_peak_mib"])
            if peak > budget and phase == "workflow":
                over.append(f"{res['size']} {j['rule']} {j['wildcards']}: {peak:.0f} MiB")
    return over


def report_growth(results: list[dict], extrapolate_px: float) -> None:
    # a run stopped at its deadline counts with the jobs it finished (a rule's peak then is a lower bound)
    ok = [r for r in results if r.get("workflow") and (r["workflow"]["returncode"] == 0 or r["workflow"].get("stopped"))]
    if len(ok) < 2:
        print("\n(growth exponents need two finished sizes)")
        return
    ok.sort(key=lambda r: r["pixels"])
    px = [r["pixels"] for r in ok]
    tables = [by_rule(r["workflow"]["jobs"]) for r in ok]
    demo_tables = [by_rule(r["demo"]["jobs"]) for r in ok]
    names = sorted(set().union(*tables), key=lambda n: -tables[-1].get(n, {}).get("peak_mib", 0))
    sizes = " / ".join(r["size"] + (" (stopped)" if r["workflow"].get("stopped") else "") for r in ok)
    print(f"\n== growth with the pixel count ({sizes}: {' / '.join(f'{p / 1e6:.2f}' for p in px)} Mpx); "
          f"exponent ≈ 1: grows with the area, ≈ 0: bounded by the tile")
    print(f"   EXTRAPOLATION to {extrapolate_px / 1e6:.1f} Mpx (a Sentinel-2 tile), not a measurement: 'pow' along each "
          "rule's fitted exponent, 'lin' the line through the two largest sizes (fixed part + MiB per pixel)")
    print(f"  {'rule':<24} {'max peak MiB per size':>28} {'exp':>5} {'CPU s per size':>24} {'exp':>5} "
          f"{'peak MiB pow':>13} {'peak MiB lin':>13} {'CPU s pow':>10}")
    for label, tabs in (("", tables), ("(demo) ", demo_tables)):
        for n in (names if label == "" else sorted(set().union(*tabs))):
            peaks = [t.get(n, {}).get("peak_mib", float("nan")) for t in tabs]
            cpus = [t.get(n, {}).get("cpu_s", float("nan")) for t in tabs]
            ep, ec = growth_exponent(px, peaks), growth_exponent(px, cpus)
            xp = extrapolate(px[-1], peaks[-1], ep, extrapolate_px)
            xc = extrapolate(px[-1], cpus[-1], ec, extrapolate_px)
            xl = extrapolate_affine(px, peaks, extrapolate_px)
            flag = "  > 2 GiB at an S2 tile (extrapolated)" if max(xp, xl) > 2048 else ""
            print(f"  {label + n:<24} {' / '.join(fmt(p) for p in peaks):>28} {fmt(ep, 2):>5} "
                  f"{' / '.join(fmt(c, 1) for c in cpus):>24} {fmt(ec, 2):>5} {fmt(xp):>13} {fmt(xl):>13} {fmt(xc):>10}{flag}")
    walls = [r["workflow"]["wall_s"] for r in ok]
    cpus = [sum(j["cpu_s"] for j in r["workflow"]["jobs"]) for r in ok]
    ew, ec = growth_exponent(px, walls), growth_exponent(px, cpus)
    print(f"  whole workflow: wall {' / '.join(fmt(w) for w in walls)} s (exponent {fmt(ew, 2)}), CPU of all jobs "
          f"{' / '.join(fmt(c) for c in cpus)} s (exponent {fmt(ec, 2)}); extrapolated CPU at "
          f"{extrapolate_px / 1e6:.0f} Mpx: {fmt(extrapolate(px[-1], cpus[-1], ec, extrapolate_px))} s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes-km", type=float, nargs="+", default=[10, 20], help="sides of the demo city, km")
    p.add_argument("--tile", type=int, default=1024, help="tiles.size_px (default 1024)")
    p.add_argument("--years", type=int, nargs="+", default=[2023, 2024], help="reporting years (default 2023 2024)")
    p.add_argument("--truth-cell-m", type=float, default=None, help="demo.truth_cell_m (default: the demo's, 2 m)")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--interval", type=float, default=0.2, help="sampling interval, s")
    p.add_argument("--budget-mib", type=float, default=2048, help="per-job peak memory bound (issue 14: 2 GiB)")
    p.add_argument("--extrapolate-px", type=float, default=S2_TILE_PX)
    p.add_argument("--workdir", default="/tmp/greensink-workflow-scale")
    p.add_argument("--deadline-utc", help="HH:MM (UTC): stop the run then and report the jobs finished so far")
    p.add_argument("--reuse-demo", action="store_true", help="keep a size's generated demo city from a former run")
    p.add_argument("--from-json", nargs="+", help="print the tables of former runs' <size>.json files; run nothing")
    a = p.parse_args(argv)
    if a.from_json:
        results = [json.loads(Path(f).read_text()) for f in a.from_json]
    else:
        results = [run_size(km, a) for km in a.sizes_km]
    over: list[str] = []
    for res in results:
        over += report_size(res, a.budget_mib)
    report_growth(results, a.extrapolate_px)
    failed = [r["size"] for r in results if not r.get("workflow") or r["workflow"]["returncode"] != 0]
    if over:
        print(f"\njobs over {a.budget_mib:.0f} MiB: " + "; ".join(over))
    else:
        print(f"\nevery workflow job under {a.budget_mib:.0f} MiB")
    if failed:
        print("failed runs: " + ", ".join(failed))
    return 1 if over or failed else 0


if __name__ == "__main__":
    sys.exit(main())
