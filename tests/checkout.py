"""A copy of this working tree to run the README's commands in, as a user's checkout (its .venv linked in)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sh(cwd: Path, *cmd: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run ``cmd`` in ``cwd`` as a user would; raise with its output on failure. In a copy made by
    :func:`copy_checkout`, PYTHONPATH points at the copy's package: the linked .venv's editable install
    points at the original checkout, and the copy's own .venv would point at the copy."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if (cwd / "src" / "greensink").is_dir():
        env["PYTHONPATH"] = str(cwd / "src")
    proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


def copy_checkout(dest: Path) -> Path:
    """Copy every file git tracks or would track (not ignored) into ``dest``, symlinks as symlinks (config/, reports/ and
    workflow/schemas/ link into the package data); link the project's .venv."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split("\n")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name, follow_symlinks=False)
    (dest / ".venv").symlink_to(ROOT / ".venv")
    return dest


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
