"""The form-identifiability script (benchmarks/form_identifiability.py) runs in --quick mode and prints,
per demo type, the nearest rival form's misfit and the recovery rates, ending with the oracle line.
The rates themselves are figures for docs/method.md, not asserted here (5 realisations are noise); the
misfits are deterministic and checked against a direct computation."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from greensink.demo import CLASS_NDVI, carbon_curve
from greensink.model import fit_form, predict

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "form_identifiability.py"


@pytest.mark.slow
@pytest.mark.large  # a benchmark run (30 s): make test-large, run by .ci/run
def test_quick_identifiability_run_prints_misfits_and_rates():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=300,
                          check=False)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    # EG (45 + 30 ln x over NDVI 0.74 ± 2.2 × 0.06): the best power curve, computed here directly
    mean, sd = CLASS_NDVI["EG"]
    x = np.linspace(mean - 2.2 * sd, mean + 2.2 * sd, 400)
    y = carbon_curve("EG", x)
    rms = np.sqrt(np.mean((predict("power", fit_form("power", x, y, "relative"), x) / y - 1) ** 2))
    eg = next(line for line in out.splitlines() if line.strip().startswith("EG  truth"))
    assert f"power {rms:.1%}" in eg
    assert len(re.findall(r"n=40 +\w+ +oracle form \d\.\d\d +greensink CV: form \d\.\d\d", out)) == 5
    assert re.fullmatch(r"oracle form recovery at n=40: \d\.\d\d \((G1|G2|G3|XG|EG)\)", out.strip().splitlines()[-1])
