"""Shared helpers of the benchmark scripts: machine description and child-process results.

Each measurement runs in a child process of its own script, which prints one line
``RESULT_TAG + json`` with its figures; :func:`run_child` runs it and parses that line.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

RESULT_TAG = "RESULT "


def run_child(cmd: list[str], label: str) -> dict:
    """Run ``cmd``; return the JSON it printed after RESULT_TAG, or exit with its output on failure."""
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"child '{label}' failed with exit status {proc.returncode}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_TAG)]
    return json.loads(lines[-1][len(RESULT_TAG):])


def machine_summary() -> str:
    """Cores, CPU model, memory and kernel of this machine, in one line."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem_gib = float("nan")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores} cores ({cpu}), {mem_gib:.0f} GiB RAM, {platform.system()} {platform.release()}"


def vmhwm_mib() -> float:
    """Peak resident set size of this process so far (``VmHWM`` of /proc/self/status), MiB.

    Unlike ``ru_maxrss``, which Linux carries across ``execve`` (a child of a big parent reports
    the parent's peak), ``VmHWM`` belongs to this process image alone. Falls back to ``ru_maxrss``
    where /proc is not available."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reset_vmhwm() -> bool:
    """Reset this process's peak resident set size (``VmHWM``) to its current size, so that
    :func:`vmhwm_mib` then reports the peak since this call (writes 5 to ``/proc/self/clear_refs``,
    Linux ≥ 4.0). Returns False where that is not possible (the peak then stays the process's)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def run_plan(cmd: list[str], plan: list[tuple[str, str | None]]) -> dict[str, list[dict]]:
    """Run ``cmd --child <stage> [--tile-id <tile>]`` for each (stage, tile) of ``plan`` in turn (:func:`run_child`);
    the results by stage, in the plan's order."""
    results: dict[str, list[dict]] = {}
    for stage, tile in plan:
        extra = ["--tile-id", tile] if tile else []
        results.setdefault(stage, []).append(run_child([*cmd, "--child", stage, *extra], f"{stage} {tile or ''}"))
    return results


def print_rules(results: dict[str, list[dict]]) -> None:
    """One line per rule of ``results`` (:func:`run_plan`): its jobs, the largest peak memory over them (MiB) and the
    median wall and CPU seconds."""
    import statistics

    print(f"{'rule':<24} {'jobs':>4} {'peak MiB':>9} {'wall s':>8} {'CPU s':>7}")
    for stage, runs in results.items():
        peak = max(r["peak_mib"] for r in runs)
        wall = statistics.median(r["wall_s"] for r in runs)
        cpu = statistics.median(r["cpu_s"] for r in runs)
        print(f"{stage:<24} {len(runs):>4} {peak:>9.0f} {wall:>8.2f} {cpu:>7.2f}")
