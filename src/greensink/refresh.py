"""Refresh: what lets a run recompute only what changed when a year is added.

Snakemake reruns a job when one of its input files is newer than its outputs, or when its params
changed. A plots file that holds every year's plots (plots.path without "{year}") is rewritten when
the plots of a new year are appended, which would make the model of every earlier year, and all that
follows from it, look out of date. Rule model therefore takes the plots file as an ``ancient`` input
(its modification time is ignored) and carries as a param the digest of the rows of its own year
(:func:`plot_rows_digest`): appending another year's rows leaves that digest, and so the earlier
years' models, untouched, while editing, adding or removing a row of that year changes it and reruns
that year's model. plots.path may also hold "{year}" (one file per year, :func:`plots_path`), so a
new year's plots are a new file.

Splitting the plots file per year at staging time would not do: the splitting job would rerun on
every append and rewrite each year's part, and Snakemake would rerun everything that reads them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import pandas as pd

from greensink import io as gio

__all__ = ["plot_rows_digest", "plots_by_year", "plots_path", "year_plot_rows"]


def plots_by_year(plots: Mapping | None) -> bool:
    """True when plots.path holds "{year}": one plots file per reporting year."""
    return bool(plots) and "{year}" in str(plots.get("path", ""))


def plots_path(plots: Mapping, year: int | str | None = None) -> str:
    """The plots file of ``year``: plots.path with "{year}" replaced by the year (as given without it).
    ``year`` None is allowed only while the path has no "{year}"."""
    path = str(plots["path"])
    if "{year}" in path:
        if year is None:
            raise ValueError(f"plots.path {path!r} holds {{year}}: name the year whose file is wanted.")
        return path.replace("{year}", str(int(year)))
    return path


def year_plot_rows(table: pd.DataFrame, year: int | str, year_column: str = "year") -> pd.DataFrame:
    """The rows of a plots table measured in ``year`` (column ``year_column``, read as numbers; rows
    whose year is not a number stay out, as the model leaves them out). A table without that column has
    no dated rows: all of its rows are returned (the model's check reports the missing column)."""
    if year_column not in table.columns:
        return table
    years = pd.to_numeric(table[year_column], errors="coerce")
    return table[years == int(year)]


def _canonical(table: pd.DataFrame) -> bytes:
    """The rows of ``table`` as bytes independent of row and column order (geometry as WKB hex)."""
    frame = pd.DataFrame(table).copy()
    if isinstance(table, gpd.GeoDataFrame):
        frame[table.geometry.name] = table.geometry.to_wkb(hex=True)
    frame = frame.astype(str)
    frame = frame[sorted(frame.columns)]
    frame = frame.sort_values(list(frame.columns), kind="mergesort").reset_index(drop=True)
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def plot_rows_digest(plots: Mapping | None, year: int | str) -> str | None:
    """SHA-256 of the plots of ``year`` (the rows of its plots file dated that year, any row and column
    order): rule model's param, so that its model reruns when, and only when, that year's plots change.
    None without plots. A file that cannot be read gives the digest of its bytes (the preflight check
    names the problem)."""
    if not plots:
        return None
    path = Path(plots_path(plots, year))
    if not path.exists():
        return None
    try:
        table = gio.read_vector(path)
    except Exception:  # noqa: BLE001 - reported by the preflight check; the digest only has to change with the file
        return "file:" + gio.sha256(path)
    rows = year_plot_rows(table, year, plots.get("year_column", "year"))
    return hashlib.sha256(_canonical(rows)).hexdigest()
