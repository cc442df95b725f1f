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

A scenes table (imagery.scenes, source local) is handled the same way. Rule ingest takes it as
``ancient`` with the digest of the rows dated in that year's season (:func:`scene_rows_digest`) as a
param, and the band files those rows name as ordinary inputs (:func:`scene_band_files`, so a
rewritten band file reruns its year's ingest by time). The grid (checkpoint prepare_zones, grid.align
imagery) reads the table only for the scene that fixes the lattice: it takes the table as ``ancient``
with the digest of that scene's row (:func:`lattice_scene_digest`) and that scene's red file as an
ordinary input. Appending a new year's rows therefore reruns neither the grid nor any earlier year.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import pandas as pd

from greensink import io as gio

__all__ = ["lattice_scene_digest", "lattice_scene_red", "plot_rows_digest", "plots_by_year", "plots_path", "scene_band_files",
           "scene_rows_digest", "scenes_table", "year_plot_rows", "year_scene_rows"]


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


# ----------------------------------------------------------------------------- scenes table


def scenes_table(cfg: Mapping) -> str | None:
    """The user's scenes table (imagery.scenes with source local), else None (the demo's table is rewritten
    with its band files by rule build_demo and stays an ordinary input)."""
    im = cfg["imagery"]
    return str(im["scenes"]) if im.get("source") == "local" and im.get("scenes") else None


def _row_date(text: object) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(text)[:10])
    except ValueError:
        return None


def year_scene_rows(table: pd.DataFrame, year: int | str, season: Mapping[str, str]) -> pd.DataFrame:
    """The rows of a scenes table (read as text) whose ``datetime`` falls in the season of ``year`` (as
    :func:`greensink.ingest.in_season` selects scenes; rows without a readable date stay out, the table
    check reports them)."""
    from greensink.ingest import season_window

    start, end = season_window(int(year), season)
    dates = table["datetime"].map(_row_date) if "datetime" in table.columns else pd.Series(None, index=table.index)
    return table[dates.map(lambda d: d is not None and start <= d <= end)]


def _read_table(path: Path) -> pd.DataFrame:
    from greensink.io import read_csv_as_text

    return read_csv_as_text(path)


def scene_rows_digest(cfg: Mapping, year: int | str) -> str | None:
    """SHA-256 of the scenes table's rows dated in the season of ``year`` (any row and column order): rule
    ingest's param, so that a year's ingest reruns when, and only when, its own rows change. None without a
    scenes table or when it does not exist; the digest of the file's bytes when it cannot be read (the
    table check names the problem)."""
    table = scenes_table(cfg)
    if not table or not Path(table).exists():
        return None
    try:
        rows = year_scene_rows(_read_table(Path(table)), year, cfg["season"])
    except Exception:  # noqa: BLE001 - reported by the table check; the digest only has to change with the file
        return "file:" + gio.sha256(Path(table))
    return hashlib.sha256(_canonical(rows)).hexdigest()


def scene_band_files(cfg: Mapping, year: int | str) -> list[str]:
    """The band files (red, NIR, quality) of the scenes table's scenes in the season of ``year``, as the
    table check resolves them (relative to the table's folder); empty without a scenes table or when the
    table has a problem (the ingest job then reports it)."""
    table = scenes_table(cfg)
    if not table:
        return []
    from greensink.ingest import in_season, read_scenes_table, resolve_profiles

    try:
        scenes = read_scenes_table(table, resolve_profiles(cfg["imagery"].get("profiles")))
    except Exception:  # noqa: BLE001 - the ingest job reads the table again and reports the problem
        return []
    return sorted({p for s in in_season(scenes, int(year), cfg["season"]) for _, p, _ in s.band_files()})


def lattice_scene_digest(cfg: Mapping) -> str | None:
    """SHA-256 of the scenes table's row of the scene that fixes the grid's lattice (grid.align imagery, the
    first scene in a reporting year's season, :mod:`greensink.lattice`): checkpoint prepare_zones's param.
    None when the lattice is not read from a scenes table's scene (other grid.align, no table, or the first
    scene found by imagery.files); the digest of the file's bytes when the table cannot be read."""
    from greensink.lattice import first_scene, grid_align

    table = scenes_table(cfg)
    if grid_align(cfg) != "imagery" or not table or not Path(table).exists():
        return None
    try:
        scene = first_scene(cfg)
        rows = _read_table(Path(table))
    except Exception:  # noqa: BLE001 - reported by prepare_zones; the digest only has to change with the file
        return "file:" + gio.sha256(Path(table))
    rows = rows[rows["scene_id"] == scene.scene_id] if scene is not None and "scene_id" in rows.columns else rows.iloc[:0]
    return hashlib.sha256(_canonical(rows)).hexdigest() if len(rows) else None


def lattice_scene_red(cfg: Mapping) -> list[str]:
    """The red file of the scenes table's scene that fixes the lattice (see :func:`lattice_scene_digest`), as
    an input of prepare_zones beside the ancient table; empty otherwise."""
    digest = lattice_scene_digest(cfg)
    if digest is None or digest.startswith("file:"):
        return []
    from greensink.lattice import first_scene

    scene = first_scene(cfg)
    return [scene.red] if scene is not None else []
