"""Tests of greensink.units: the conversions by hand, on numbers and arrays."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

from greensink.units import CO2_PER_C, M2_PER_HA, c_to_co2e, format_m, ha_to_m2, kg_to_t, m2_to_ha


def test_area_conversions_by_hand():
    assert M2_PER_HA == 10_000.0  # 100 m × 100 m
    assert m2_to_ha(10_000) == 1.0 and m2_to_ha(100.0) == 0.01  # a 10 m pixel is 0.01 ha
    assert ha_to_m2(2.5) == 25_000.0
    np.testing.assert_array_equal(m2_to_ha(np.array([0.0, 5_000.0, np.nan])), [0.0, 0.5, np.nan])
    assert ha_to_m2(m2_to_ha(1234.5)) == 1234.5


def test_carbon_to_co2e_is_the_molar_mass_ratio():
    assert c_to_co2e(12.0) == 44.0  # 12 t C -> 44 t CO2
    assert CO2_PER_C == 44.0 / 12.0
    np.testing.assert_allclose(c_to_co2e(np.array([3.0, -6.0])), [11.0, -22.0])


def test_metres_are_written_without_exponents():
    assert format_m(690015.0) == "690015" and format_m(3520815.5) == "3520815.5"
    assert format_m(12.5) == "12.5" and format_m(-2.5) == "-2.5" and format_m(1e-7) == "0"


def test_kg_to_t_by_hand():
    assert kg_to_t(1500.0) == 1.5  # 1 t = 1000 kg
    assert kg_to_t(np.array([0.0, 250.0])).tolist() == [0.0, 0.25]


# --- no inline unit factor outside greensink.units ---------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "greensink"
SCANNED = (SRC, ROOT / "workflow" / "scripts")  # the package and the rule scripts
# factors that convert units: m² <-> ha (1e4, 1e-4), C <-> CO2 (44, 12), kg <-> t and m <-> km (1000, 1e-3)
UNIT_FACTORS = {10_000, 1e-4, 44, 12, 1000, 1e-3}
UNIT_NAMES = {"M2_PER_HA", "CO2_PER_C", "KG_PER_T"}
# (file relative to the repository, factor): how many times at most it may appear, and why it is not (yet) a call of greensink.units
# (a maximum: the files of other engineers may drop theirs without breaking this test)
ALLOWED = {
    ("src/greensink/carbon/solver.py", 1e-4): (2, "a solver tolerance (ratio of two noise scales), not a unit"),
    ("src/greensink/uncertainty/closed_form.py", 1e-4): (1, "a solver tolerance (ratio of two noise scales), not a unit"),
    ("src/greensink/report/webmap.py", 1000): (1, "SVG frame units per map width, not a unit conversion"),
    ("src/greensink/report/maps.py", 1000): (1, "m -> km on a scale bar label (report/ is another engineer's: to move to units)"),
    ("src/greensink/scenario/burn.py", 10_000): (1, "m² -> ha (scenario/ is another engineer's: to move to units)"),
}


def inline_factors() -> dict[tuple[str, float], list[int]]:
    """(file relative to the repository, factor) -> lines where a unit factor multiplies or divides a value,
    or a unit constant of greensink.units is defined again, in the package (but units.py) and the rule scripts."""
    found: dict[tuple[str, float], list[int]] = {}
    for path in sorted(p for root in SCANNED for p in root.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if path == SRC / "units.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div, ast.FloorDiv)):
                for side in (node.left, node.right):
                    value = side.value if isinstance(side, ast.Constant) else None
                    if isinstance(value, int | float) and not isinstance(value, bool) and value in UNIT_FACTORS:
                        found.setdefault((rel, float(value)), []).append(node.lineno)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Name) and t.id in UNIT_NAMES:
                        found.setdefault((rel, t.id), []).append(node.lineno)
    return found


def test_the_scan_finds_a_factor_in_arithmetic_and_not_in_text():
    tree = ast.parse('x = area / 1e4\ny = "DN = 10000 ρ"\nz = {"scale": 1e-4}\n')
    ops = [n for n in ast.walk(tree) if isinstance(n, ast.BinOp)]
    assert len(ops) == 1 and ops[0].right.value == 10_000  # the division counts; the text and the dict value do not
    assert 44 / 12 == CO2_PER_C and 10_000.0 == M2_PER_HA


def test_no_inline_unit_factor_outside_units():
    found = inline_factors()
    new = [f"{rel}:{lines} ({factor:g})" if not isinstance(factor, str) else f"{rel}:{lines} {factor}"
           for (rel, factor), lines in sorted(found.items(), key=str)
           if len(lines) > ALLOWED.get((rel, factor), (0, ""))[0]]
    assert not new, ("unit factors written inline (use greensink.units: m2_to_ha, ha_to_m2, kg_to_t, c_to_co2e, "
                     "CO2_PER_C; or allow-list here what is not a unit conversion):\n  " + "\n  ".join(new))
