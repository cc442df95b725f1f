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
