"""Portable records: paths as a run folder's JSON records write them.

Every rule runs in the run's folder (the folder holding ``results/``), so a file inside it is named by
its path relative to that folder: the folder can be moved, copied or archived and its records still
name its files, and they name no folder of the machine that made them. A file outside the run folder
(a checkout's coefficient table, imagery on a shared disk) keeps its absolute path, which still holds
after the run folder moves; its checksum identifies it anywhere. URLs and GDAL virtual file system
paths (``/vsicurl/...``) are kept as they are.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _root(root: str | Path | None) -> str:
    return os.path.abspath(os.fspath(root if root is not None else Path.cwd()))


def run_relative(path: str | Path, root: str | Path | None = None) -> str:
    """``path`` relative to ``root`` (default: the working directory, the run folder) when it lies inside it,
    ``"."`` for the folder itself; absolute (normalised) outside it; URLs and ``/vsi...`` paths unchanged."""
    text = os.fspath(path)
    if "://" in text or text.startswith("/vsi"):
        return text
    base = _root(root)
    full = os.path.normpath(os.path.join(base, text))  # a relative path is relative to the run folder
    if full == base:
        return "."
    if full.startswith(base + os.sep):
        return os.path.relpath(full, base)
    return full


def portable(value: Any, root: str | Path | None = None) -> Any:
    """A JSON-like ``value`` (dicts, lists, strings, numbers) with every mention of the run folder ``root``
    (default: the working directory) in its strings made relative: a string that is the folder becomes
    ``"."``, and ``<root>/`` inside any string (a path, or a path within a sentence) is dropped, so that
    ``/runs/a/resources/x.tif`` becomes ``resources/x.tif``. Keys are left as they are; nothing else changes."""
    base = _root(root)
    prefix = base + os.sep

    def walk(v: Any) -> Any:
        if isinstance(v, os.PathLike):
            v = os.fspath(v)
        if isinstance(v, str):
            return "." if v.rstrip(os.sep) == base else v.replace(prefix, "")
        if isinstance(v, Mapping):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [walk(x) for x in v]
        return v

    return walk(value)
