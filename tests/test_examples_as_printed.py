"""The Canberra example's command, exactly as the README and the example print it, on the real data.

A copy of the checkout sits beside a link to ../shared, as a user's clone does, and the printed command
runs there. It must write carbon, zone tables and the report into the example's own project folder, say
that the carbon is tier 1 (no green-space types, no plots), and show suburbs the scene never saw as
unknown (NaN), not as 0 t. Skipped, saying why, when ../shared/data is absent.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio

from checkout import copy_checkout, sh

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
pytestmark = [pytest.mark.realdata, pytest.mark.workflow, pytest.mark.slow]


def printed_command(text: str, prefix: str = ".venv/bin/greensink run config/examples/canberra.yaml") -> str:
    found = sorted({m.strip() for m in re.findall(rf"^[#\s]*({re.escape(prefix)}[^\n]*)$", text, flags=re.M)})
    assert len(found) == 1, found
    return found[0]


def test_readme_and_example_print_the_same_command():
    readme = printed_command((ROOT / "README.md").read_text(encoding="utf-8"))
    example = printed_command((ROOT / "config" / "examples" / "canberra.yaml").read_text(encoding="utf-8"))
    assert readme == example


@pytest.fixture(scope="module")
def canberra_project(tmp_path_factory) -> Path:
    if not (SHARED / "data" / "canberra").is_dir():
        pytest.skip(f"real data not found at {SHARED / 'data'} (absent in a fresh clone): the Canberra example was not run")
    base = tmp_path_factory.mktemp("clone")
    (base / "shared").symlink_to(SHARED)
    root = copy_checkout(base / "main")
    command = printed_command((ROOT / "README.md").read_text(encoding="utf-8"))
    sh(root, *shlex.split(command))
    return root / "projects" / "canberra"


@pytest.mark.large  # 3-6 min: the ACT grid is 8 M pixels
def test_canberra_writes_carbon_zone_tables_and_report(canberra_project):
    results = canberra_project / "results"
    with rasterio.open(results / "1992" / "carbon.tif") as src:
        carbon = src.read(1)
        assert src.count == 3 and src.res == (25.0, 25.0)
    assert np.isfinite(carbon).any()
    seen = np.isfinite(carbon)
    assert (carbon[seen] >= 0).all()
    suburbs = pd.read_csv(results / "1992" / "zones" / "suburb.csv", dtype={"zone_id": str})
    districts = pd.read_csv(results / "1992" / "zones" / "district.csv", dtype={"zone_id": str})
    assert len(suburbs) > 100 and len(districts) == 5  # ACT: 5 electorates, suburbs of the 2021 ASGS
    assert set(suburbs["carbon_tier"].dropna().astype(str)) == {"T1"}  # no types, no plots: the default table
    # the scene covers central Canberra only: suburbs it never saw are unknown, not 0 t
    unseen = suburbs["carbon_observed_pct"].fillna(0) == 0
    assert unseen.any() and (~unseen).any()
    assert suburbs.loc[unseen, "carbon_t"].isna().all()
    assert (suburbs.loc[~unseen & (suburbs["carbon_observed_pct"] >= 99.9), "carbon_t"] > 0).all()
    report = (results / "report.html").read_text(encoding="utf-8")
    assert "tier 1" in report.lower() or "tier&nbsp;1" in report.lower()
