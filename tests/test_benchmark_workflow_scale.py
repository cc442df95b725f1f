"""benchmarks/workflow_scale.py: its job parser, growth exponent and /proc sampler (no workflow run)."""

from __future__ import annotations

import math
import pickle
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import workflow_scale as ws  # noqa: E402

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def test_script_name_from_command_lines():
    assert ws.script_name(["/v/bin/python", "/r/.snakemake/scripts/tmpab_1x9.carbon.py"]) == (
        "carbon", "/r/.snakemake/scripts/tmpab_1x9.carbon.py")
    # the shell Snakemake starts (before it execs python) names the same script inside one argument
    shell = ["/bin/bash", "-c", "set -euo pipefail;  /v/bin/python /r/.snakemake/scripts/tmpk2.zone_coverage_tile.py"]
    assert ws.script_name(shell) == ("zone_coverage_tile", "/r/.snakemake/scripts/tmpk2.zone_coverage_tile.py")
    assert ws.script_name(["/v/bin/python", "/v/bin/snakemake", "--cores", "2"]) is None
    assert ws.script_name(["/v/bin/python", "workflow/scripts/carbon.py"]) is None  # not a job's generated script


def test_rule_and_wildcards_from_a_generated_preamble(tmp_path):
    from snakemake.iocontainers import InputFiles, Log, OutputFiles, Params, ResourceList, Wildcards
    from snakemake.script import Snakemake

    wc = Wildcards(fromdict={"year": "2024", "tile": "r001c002"})
    obj = Snakemake(InputFiles(["a.tif"]), OutputFiles(["b.tif"]), Params(), wc, 1, ResourceList(), Log(), {},
                    "carbon_tile", 0, str(tmp_path))
    # the preamble as snakemake.script writes it: the object pickled (protocol 4), the bytes' repr in the code
    script = tmp_path / "tmpq1.carbon.py"
    script.write_text(f"import pickle;\nsnakemake = pickle.loads({pickle.dumps(obj, protocol=4)!r});\nprint(1)\n")
    assert ws.rule_from_script(script) == ("carbon_tile", "year=2024,tile=r001c002")
    assert ws.rule_from_script(tmp_path / "gone.py") == (None, "")


def test_growth_exponent_and_extrapolation():
    # value = 3 * px**0.5 exactly: slope 0.5 from two or three sizes
    px = [1e6, 4e6, 9e6]
    assert ws.growth_exponent(px, [3 * p**0.5 for p in px]) == pytest.approx(0.5, abs=1e-12)
    assert ws.growth_exponent(px[:2], [250.0, 250.0]) == pytest.approx(0.0, abs=1e-12)  # bounded
    # hand-computed least squares on logs: x = ln 1, ln 2, ln 4 = 0, a, 2a; y = 0, a, 3a -> slope 1.5
    assert ws.growth_exponent([1, 2, 4], [1, 2, 8]) == pytest.approx(1.5)
    # no figure is not a figure: one size, a missing or a zero value give NaN, never 0
    assert math.isnan(ws.growth_exponent([1e6], [100.0]))
    assert math.isnan(ws.growth_exponent([1e6, 4e6], [100.0, float("nan")]))
    assert math.isnan(ws.growth_exponent([1e6, 4e6], [0.0, 10.0]))
    assert ws.extrapolate(4e6, 800.0, 1.0, 120e6) == pytest.approx(24000.0)
    assert ws.extrapolate(4e6, 800.0, 0.0, 120e6) == pytest.approx(800.0)
    assert math.isnan(ws.extrapolate(4e6, 800.0, float("nan"), 120e6))
    # the line through the two largest sizes: 250 MiB fixed + 100 MiB per Mpx -> 250 + 100 * 120 at 120 Mpx
    assert ws.extrapolate_affine([1e6, 4e6, 9e6], [400.0, 650.0, 1150.0], 120e6) == pytest.approx(12250.0)
    assert ws.extrapolate_affine([1e6, 4e6], [420.0, 410.0], 120e6) == 410.0  # bounded: never below the largest
    assert math.isnan(ws.extrapolate_affine([1e6, 4e6], [420.0, float("nan")], 120e6))


def test_expected_jobs_from_a_snakemake_log():
    log = textwrap.dedent("""\
        [Sat Dec  5 06:07:40 2026]
        rule carbon_tile:
            input: a
        [Sat Dec  5 06:07:41 2026]
        localrule all:
        rule carbon_tile:
        rule model:
            the rule carbon_tile: is not a job line
        """)
    assert ws.expected_jobs(log) == {"carbon_tile": 2, "all": 1, "model": 1}


def test_by_rule_sums_and_maxima():
    jobs = [
        {"rule": "a", "wildcards": "tile=1", "first": 0.0, "last": 2.0, "cpu_s": 1.5, "hwm_mib": 300.0,
         "tree_peak_mib": 280.0},
        {"rule": "a", "wildcards": "tile=2", "first": 1.0, "last": 6.0, "cpu_s": 2.0, "hwm_mib": 200.0,
         "tree_peak_mib": 450.0},  # a child process: the tree's sum is the job's peak
        {"rule": "b", "wildcards": "", "first": 0.0, "last": 1.0, "cpu_s": 0.5, "hwm_mib": 100.0, "tree_peak_mib": 0.0},
    ]
    r = ws.by_rule(jobs)
    assert r["a"]["jobs"] == 2 and r["a"]["cpu_s"] == pytest.approx(3.5) and r["a"]["wall_s"] == pytest.approx(7.0)
    assert r["a"]["max_wall_s"] == pytest.approx(5.0)
    assert (r["a"]["peak_mib"], r["a"]["peak_job"]) == (450.0, "tile=2")
    assert r["b"]["peak_mib"] == 100.0


def test_monitor_measures_a_job_and_its_child(tmp_path):
    """A fake job (named as Snakemake names its scripts) touches 300 MiB, then starts a child that touches
    200 MiB while the parent still holds its 300; both burn CPU. The sampler must see one job of rule
    'alloc' with a peak of at least the 500 MiB held at once (and not far above: imports are ~30 MiB here),
    its CPU time and its wall time."""
    scripts = tmp_path / ".snakemake" / "scripts"
    scripts.mkdir(parents=True)
    job = scripts / "tmpzz9.alloc.py"
    job.write_text(textwrap.dedent(f"""\
        import subprocess, sys, time
        a = bytearray(300 * 2**20)
        for i in range(0, len(a), 4096):
            a[i] = 1  # touch every page: resident
        child = "b = bytearray(200 * 2**20)\\nfor i in range(0, len(b), 4096): b[i] = 1\\nimport time; time.sleep(1.0)"
        subprocess.run([{sys.executable!r}, "-c", child], check=True)
        t = time.process_time()
        while time.process_time() - t < 0.6:
            pass
        """))
    res = ws.monitor([sys.executable, str(job)], tmp_path, tmp_path / "log.txt", 0.05)
    assert res["returncode"] == 0
    (j,) = res["jobs"]
    assert j["rule"] == "alloc" and j["script"] == "alloc"
    peak = max(j["hwm_mib"], j["tree_peak_mib"])
    assert 500 <= peak < 500 + 150
    assert 300 <= j["hwm_mib"] < 300 + 100  # the job process alone
    assert j["cpu_s"] >= 0.6  # the busy loop, plus the page touching
    assert j["last"] - j["first"] >= 1.5  # the child's 1 s sleep and the 0.6 s loop
