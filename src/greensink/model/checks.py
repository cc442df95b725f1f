"""Argument and input checks shared by the model's modules: counts, numbers, seeds, type codes,
plot locations, plot carbon and plot ids.

Each check raises :class:`~greensink.errors.ModelError` (a wrong argument) or
:class:`~greensink.errors.InputDataError` (wrong data) with a message saying what was expected,
what was received and how to fix it, and returns the value in its checked form. Nothing here knows
about forms or predictors (those checks are in :mod:`greensink.model.forms`)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from greensink.errors import InputDataError, ModelError

MAX_LISTED = 10
"""Problems listed in one error message before "and N more"."""


def check_choice(name: str, value: Any, allowed: tuple[str, ...], fix: str) -> str:
    """``value`` as text when it is one of ``allowed``; else ModelError naming ``name`` and ``fix``."""
    if value not in allowed:
        raise ModelError(f"{name} must be one of {', '.join(allowed)}. Got {value!r} instead. {fix}")
    return str(value)


def check_type_code(code: Any) -> str:
    """A green-space type code: a non-empty string."""
    if not isinstance(code, str) or not code:
        raise ModelError(f"type code must be a non-empty string such as 'G1'. Got {code!r} instead.")
    return code


def check_seed(seed: Any) -> int:
    """A random seed: an integer >= 0 (not a bool)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ModelError(f"seed must be an integer >= 0. Got {seed!r} instead. Set e.g. seed: 0.")
    return int(seed)


def check_count(value: Any, name: str, minimum: int, fix: str) -> int:
    """An integer >= ``minimum`` (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ModelError(f"{name} must be an integer >= {minimum}. Got {value!r} instead. {fix}")
    return int(value)


def check_n_folds(n_folds: Any) -> int:
    """A number of CV folds: an integer >= 2."""
    return check_count(n_folds, "n_folds", 2, "Use e.g. 5 folds.")


def check_number(value: Any, name: str, fix: str) -> float:
    """A finite number >= 0 (anything ``float`` accepts)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not (math.isfinite(v) and v >= 0):
        raise ModelError(f"{name} must be a finite number >= 0. Got {value!r} instead. {fix}")
    return v


def as_xy_m(xy_m: Any, *, error: type[Exception] = ModelError) -> np.ndarray:
    """Plot locations as a finite (n, 2) float array of x, y in metres; else ``error``."""
    xy = np.asarray(xy_m, dtype=float)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise error(f"xy_m must be an (n, 2) array of plot x, y in metres. Got shape {xy.shape} instead.")
    if not np.all(np.isfinite(xy)):
        raise error(
            f"xy_m must be finite plot coordinates in metres. Got {int((~np.isfinite(xy)).any(axis=1).sum())} "
            "plots with NaN or infinite coordinates instead. Give every plot a location."
        )
    return xy


def check_carbon(y: np.ndarray, plot_ids: Sequence[Any], where: str) -> None:
    """InputDataError listing every plot whose carbon is not a finite number >= 0."""
    bad = np.flatnonzero(~np.isfinite(y) | (y < 0))
    if bad.size:
        ids = list(plot_ids)
        listed = [(ids[i] if i < len(ids) else i, y[i]) for i in bad]
        raise InputDataError(carbon_message(where, listed))


def carbon_message(where: str, listed: list[tuple[Any, Any]]) -> str:
    """The message of :func:`check_carbon` for (plot_id, value) pairs."""
    shown = ", ".join(f"{v!r} at plot_id {py_scalar(pid)!r}" for pid, v in listed[:MAX_LISTED])
    more = f" and {len(listed) - MAX_LISTED} more" if len(listed) > MAX_LISTED else ""
    return (
        f"{where}: carbon_t_ha must be a finite number >= 0 (t C/ha). Got {shown}{more} instead. "
        "Correct these plots or remove them from the plot table."
    )


def check_unique_ids(ids: np.ndarray, where: str) -> None:
    """InputDataError naming every plot_id that occurs more than once."""
    dup = [(k, c) for k, c in Counter(py_scalar(v) for v in ids).items() if c > 1]
    if dup:
        shown = ", ".join(f"{k!r} ({c} times)" for k, c in dup[:MAX_LISTED])
        raise InputDataError(
            f"{where}: plot_id must be unique. Got {shown} instead. Give every plot its own id "
            "(filter the plot table to one year first)."
        )


def sort_order(ids: np.ndarray) -> np.ndarray:
    """Indices that sort plot ids (by value, or by their text when the ids mix types)."""
    keys = [py_scalar(v) for v in ids]
    try:
        return np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.intp)
    except TypeError:  # mixed id types: order by their text
        return np.array(sorted(range(len(keys)), key=lambda i: str(keys[i])), dtype=np.intp)


def py_scalar(value: Any) -> Any:
    """A plain Python scalar (JSON-serialisable) for a numpy scalar; anything else as it is."""
    return value.item() if isinstance(value, np.generic) else value
