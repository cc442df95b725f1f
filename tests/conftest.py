"""Shared test settings.

Hypothesis explores new random examples on every local run (and remembers failures in
.hypothesis/). Under CI (CI=true) it is derandomized, so a CI run is repeatable: the same
examples every time.

The workflow tests share one run of the baseline demo per session (``baseline_run``, made under a
file lock so that pytest-xdist workers build it once between them).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def shared_dir(tmp_path_factory, name: str, build) -> Path:
    """Run ``build(workdir)`` once per session in a folder shared by all pytest-xdist workers.

    The folder and its lock live in the session's base temp folder (under xdist, the parent of each
    worker's own): the first worker to take the lock builds, the others wait and then read. A failed
    build is remembered (FAILED), so the other workers fail at once with its message instead of
    building again.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's folder, common to the workers
    workdir = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done, failed = workdir / "DONE", root / f"{name}.FAILED"
        if failed.exists():
            pytest.fail(f"the shared run {name} failed in another worker:\n{failed.read_text(encoding='utf-8')}")
        if not done.exists():
            workdir.mkdir(exist_ok=True)
            try:
                build(workdir)
            except BaseException as exc:
                failed.write_text(str(exc)[-12000:], encoding="utf-8")
                raise
            done.write_text("done\n", encoding="utf-8")
    return workdir


@pytest.fixture(scope="session")
def baseline_run(tmp_path_factory) -> Path:
    """The whole workflow on the small demo city (tests/test_workflow.py's ``small_config``) with the demo's
    three planning scenarios, run once per session and shared by every test that reads the baseline products
    (test_workflow, test_stac, test_tiles, test_scenarios).

    Read it, never write into it: tests that need another config make their own run.
    """
    from test_workflow import small_config, snakemake

    def build(workdir: Path) -> None:
        small_config(workdir, scenarios=True)
        snakemake(workdir)

    return shared_dir(tmp_path_factory, "baseline_run", build)


def pytest_collection_modifyitems(config, items):
    """Every test that reads the shared baseline run is marked slow (the run takes 1-3 min on 2 cores),
    so ``-m "not slow"`` (make test-fast) never builds it."""
    for item in items:
        if "baseline_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
