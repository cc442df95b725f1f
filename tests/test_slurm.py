"""A real Slurm run (issue 14 item 5): the small demo city, tiled, through ``--executor slurm`` on a one-node
Slurm cluster started for the test, equals the local run of the same config.

The test starts its own cluster in a private folder: ``munged`` with a new key and its own socket, and
``slurmctld`` and ``slurmd`` from a ``slurm.conf`` written for this machine (``slurmd -C``: its CPUs and
memory; free ports; no accounting, so job states come from ``squeue``). It stops the daemons it started, by
their process ids. It skips, saying why, where Slurm or the executor plugin is not installed (``.ci/run``
installs Debian's ``slurm-wlm`` and ``munge``; ``pip install -e ".[slurm]"`` the plugin), where it is not
root (slurmd launches jobs as their user), or where the daemons do not start.

The local reference is the session's shared untiled baseline run (tests/conftest.py). The Slurm run makes
two years' carbon maps and zone tables and their change (about 35 jobs; tiles of 128 px, 2 × 2 per year).
Checked: every job ran as a Slurm job (``scontrol``) with the memory greensink.resources gives its rule, the
rasters are numerically equal (NaN where NaN) and the zone tables equal.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml

from greensink import resources
from greensink.grid import Grid
from test_tiles import tiled_config
from test_workflow import LEVELS, ROOT, YEARS

pytestmark = [pytest.mark.workflow, pytest.mark.slow, pytest.mark.large]

SIZE_PX = 128
PAIR = (YEARS[0], YEARS[1])
RASTERS = [f"results/{year}/{name}.tif" for year in PAIR for name in ("ndvi", "canopy", "carbon")]
RASTERS += [f"results/change/{PAIR[0]}_{PAIR[1]}/sink.tif"]
TABLES = [f"results/{year}/zones/{level}.csv" for year in PAIR for level in LEVELS]
TABLES += [f"results/change/{PAIR[0]}_{PAIR[1]}/zones/{level}.csv" for level in LEVELS]
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "srun")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_resources() -> dict[str, str]:
    """This machine as Slurm sees it (``slurmd -C``): CPUs, RealMemory, ..."""
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    return dict(re.findall(r"(\w+)=(\S+)", out.splitlines()[0]))


SLURM_CONF = """\
ClusterName=greensink-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge/sock
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=3600
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName=main Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


class Cluster:
    """A one-node Slurm cluster in ``root``: start() and stop() the daemons it started."""

    def __init__(self, root: Path):
        self.root = root
        self.conf = root / "slurm.conf"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        self.pid_files = [root / "slurmd.pid", root / "slurmctld.pid", root / "munge" / "pid"]

    def log_tail(self) -> str:
        logs = [self.root / "munge" / "log", *sorted((self.root / "log").glob("*.log"))]
        return "\n".join(f"--- {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-8:])
                         for p in logs if p.is_file())

    def start(self) -> None:
        root = self.root
        for sub in ("munge", "state", "spool", "log", "bin"):
            (root / sub).mkdir(mode=0o755)
        key = root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        subprocess.run(["munged", "--force", f"--socket={root}/munge/sock", f"--key-file={key}",
                        f"--pid-file={root}/munge/pid", f"--log-file={root}/munge/log",
                        f"--seed-file={root}/munge/seed"], check=True, capture_output=True, timeout=30)
        node = node_resources()
        self.conf.write_text(SLURM_CONF.format(host=socket.gethostname().split(".")[0], root=root,
                                               ctld_port=free_port(), d_port=free_port(),
                                               cpus=node["CPUs"], memory=node["RealMemory"]), encoding="utf-8")
        # The jobstep plugin removes every SLURM_* variable, SLURM_CONF included, before its srun: srun reads
        # the config from its default place, which this private cluster does not use (a cluster's own config
        # is there). This srun sets it again.
        srun = root / "bin" / "srun"
        srun.write_text(f'#!/bin/sh\nSLURM_CONF={self.conf} exec {shutil.which("srun")} "$@"\n', encoding="utf-8")
        srun.chmod(0o755)
        self.env["PATH"] = f"{root / 'bin'}{os.pathsep}{self.env['PATH']}"
        for daemon in ("slurmctld", "slurmd"):
            subprocess.run([daemon, "-f", str(self.conf)], env=self.env, check=True, capture_output=True, timeout=60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], env=self.env, capture_output=True, text=True).stdout
            if state.strip() == "idle":
                return
            time.sleep(1)
        raise RuntimeError(f"the node is not idle after 60 s (sinfo: {state.strip()!r})")

    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld still knows (finished ones for MinJobAge), as ``scontrol -o show job`` fields."""
        out = subprocess.run(["scontrol", "-o", "show", "job"], env=self.env, capture_output=True, text=True).stdout
        return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in out.splitlines() if line.startswith("JobId=")]

    def stop(self) -> None:
        subprocess.run(["scancel", "--user", str(os.getuid())], env=self.env, capture_output=True, timeout=30)
        for pid_file in self.pid_files:  # slurmd, slurmctld, then munged: only the processes started here
            if not pid_file.is_file():
                continue
            pid = int(pid_file.read_text().split()[0])
            try:
                os.kill(pid, 15)
            except ProcessLookupError:
                continue
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster():
    missing = [d for d in DAEMONS if shutil.which(d) is None]
    if missing:
        pytest.skip(f"Slurm is not installed here (missing {', '.join(missing)}): "
                    "apt-get install slurm-wlm munge (.ci/run does this in CI)")
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        pytest.skip('the Snakemake Slurm executor plugin is not installed: pip install -e ".[slurm]"')
    if os.geteuid() != 0:
        pytest.skip("starting slurmd needs root (it launches each job as its user); run the tests as root or in CI")
    # a short folder: munged's socket path must fit in 108 bytes
    root = Path(tempfile.mkdtemp(prefix="gs-slurm-", dir="/tmp"))
    root.chmod(0o755)
    c = Cluster(root)
    try:
        c.start()
    except (subprocess.SubprocessError, OSError, RuntimeError, KeyError) as exc:
        c.stop()
        pytest.skip(f"Slurm could not start here: {exc}\n{c.log_tail()}")
    yield c
    c.stop()
    shutil.rmtree(root, ignore_errors=True)


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def test_tiled_demo_on_slurm_equals_the_local_run(cluster, request, tmp_path):
    # the session's baseline run is asked for only once the cluster is up: pytest sets up session fixtures before
    # module ones, so as an argument it would build the demo (minutes) before the cluster fixture could skip
    local, work = request.getfixturevalue("baseline_run"), tmp_path / "slurm"
    work.mkdir()
    tiled_config(work, SIZE_PX)
    cfg = yaml.safe_load((work / "config.yaml").read_text(encoding="utf-8"))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(work),
           "--configfile", str(work / "config.yaml"), "--profile", str(ROOT / "profiles" / "slurm"),
           "--jobs", "4", "--slurm-status-command", "squeue", "--slurm-no-account",
           "--slurm-init-seconds-before-status-checks", "2", "--latency-wait", "5", "--retries", "0",
           "--", *RASTERS, *TABLES]
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, env=cluster.env)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, (f"snakemake --executor slurm failed ({proc.returncode}) after {elapsed:.0f} s:\n"
                                  f"{proc.stdout[-3000:]}\n{proc.stderr[-8000:]}\n{cluster.log_tail()}")
    log = proc.stdout + proc.stderr

    # every job went through Slurm, with the memory greensink.resources gives its rule at the job's size
    jobs = {job["JobId"]: job for job in cluster.jobs()}
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    n_jobs = int(re.search(r"(\d+) of \1 steps \(100%\) done", log)[1])
    assert len(submitted) == n_jobs >= 30
    grid = Grid.read(work / "results/zones/grid.json")
    assert grid.shape == (202, 202)
    tiles = 0
    for job_id in submitted:
        job = jobs[job_id]
        assert job["JobState"] == "COMPLETED", job
        rule = re.match(r"rule_(\w+?)(?:_wildcards_|$)", job["Comment"])[1]
        if rule in ("build_demo", "prepare_zones"):  # before the grid exists: the demo's extent, 200 x 200 px
            mpx = (cfg["demo"]["extent_m"] / cfg["resolution"]) ** 2 / 1e6
        else:  # evaluated again once the grid exists: its 202 x 202 px, or a tile job's 128 x 128
            mpx = (SIZE_PX**2 if rule.endswith("_tile") else grid.width * grid.height) / 1e6
        costed = resources.cost_rule(rule, cfg)  # rule aggregate of a tiled run is costed as the gather it is
        expected = resources.mem_mb(costed, mpx)
        if costed in resources.GATHER_BYTES_PER_ZONE_DRAW:  # a gather asks at least for its zones x draws
            counts = resources.zone_counts([z["level"] for z in cfg["zones"]], work)
            draws = int((cfg.get("model") or {}).get("n_bootstrap", 200))
            expected = max(expected, resources.gather_mem_mb(costed, counts, draws))
        assert job["MinMemoryNode"] == f"{expected}M", (rule, job["MinMemoryNode"])
        assert job["TimeLimit"] == time.strftime("%H:%M:00", time.gmtime(60 * resources.runtime_min(costed, mpx)))
        tiles += rule == "composite_tile"
    assert tiles == len(PAIR) * len(grid.tiles(SIZE_PX)) == 8
    assert cfg["tiles"]["size_px"] == SIZE_PX and not (local / f"results/{YEARS[0]}/tiles").exists()

    for name in RASTERS:
        a, b = read(local / name), read(work / name)
        assert a.shape == b.shape and np.isfinite(a).any(), name
        np.testing.assert_array_equal(b, a, err_msg=name)  # NaN where the local run has NaN
    for name in TABLES:
        a = pd.read_csv(local / name, dtype={"zone_id": str, "parent_id": str})
        b = pd.read_csv(work / name, dtype={"zone_id": str, "parent_id": str})
        assert len(a) > 0, name
        pd.testing.assert_frame_equal(b, a, obj=name)
