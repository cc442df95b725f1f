"""The project's promises about set-up: the README's two commands exist and CI runs the test one;
the conda environment lists every dependency of the pip install; the required layout exists."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].strip().lower()


def test_conda_env_lists_every_pip_dependency():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((ROOT / "envs" / "greensink.yaml").read_text())
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)}
    missing = sorted({_name(d) for d in deps} - conda)
    assert not missing, f"envs/greensink.yaml lacks {missing}; add them so --use-conda matches the pip install"
    assert "pygments" in conda  # snakemake --report needs it (snakemake[reports] on PyPI)


def test_readme_commands_are_the_makefile_targets_and_ci_runs_the_tests():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"^make (\w+)", readme, flags=re.M)
    assert commands[:2] == ["demo", "test"], commands
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo", "test"):
        assert re.search(rf"^{target}:", makefile, flags=re.M), target
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_required_top_level_layout():
    for name in ("Snakefile", "pyproject.toml", "workflow", "envs", "config", "tests", "reports", "src/greensink"):
        assert (ROOT / name).exists(), name
    stages = ["ingest", "composite", "vegetation", "types", "model", "carbon", "aggregate", "change", "report"]
    for stage in stages:
        assert (ROOT / "workflow" / "rules" / f"{stage}.smk").is_file(), stage
        package = ROOT / "src" / "greensink"
        assert (package / f"{stage}.py").is_file() or (package / stage / "__init__.py").is_file(), stage  # module or subpackage


def test_every_rule_script_has_a_docstring_with_inputs_and_outputs():
    for script in sorted((ROOT / "workflow" / "scripts").glob("*.py")):
        text = script.read_text(encoding="utf-8")
        assert text.startswith('"""Rule '), script.name
        assert "Inputs:" in text and "Outputs:" in text, script.name


def test_rule_files_are_snakefmt_clean_and_make_lint_checks_them():
    lint = re.search(r"^lint:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), flags=re.M)
    assert lint and "snakefmt --check Snakefile workflow/rules/" in lint.group(1), "make lint does not run snakefmt"
    snakefmt = shutil.which("snakefmt", path=str(Path(sys.executable).parent)) or shutil.which("snakefmt")
    if snakefmt is None:
        pytest.skip("snakefmt is not installed (it comes with the test extra: pip install -e '.[test]')")
    proc = subprocess.run([snakefmt, "--check", "Snakefile", "workflow/rules/"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, (f"snakefmt would reformat the rule files (run `snakefmt Snakefile workflow/rules/`):"
                                  f"\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
