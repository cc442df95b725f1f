"""Field plots: read from any vector layer, checked, located on the grid, predictors sampled.

A plot is a point (or a polygon, whose centroid is used) with an id, a green-space type, a
measurement year and a measured vegetation carbon density in t C/ha. Remeasured plots keep
their id across years, which pairs the bootstrap draws of the years (see greensink.model).
Problems are collected and reported together, each naming the file, row, value and fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from rasterio.transform import rowcol

from greensink.coverage import coverage_matrix, zonal_mean
from greensink.errors import InputDataError
from greensink.grid import Grid


def prepare_plots(gdf: gpd.GeoDataFrame, cfg: Mapping, types: Sequence[str], grid: Grid, where: str) -> pd.DataFrame:
    """Columns plot_id, type, year, carbon_t_ha (as read; model.fit_models checks the numbers),
    x_m, y_m, row, col. Raises InputDataError listing every problem found."""
    cols = {k: cfg[k] for k in ("id_column", "carbon_column", "type_column", "year_column")}
    missing = [f"{k}={v!r}" for k, v in cols.items() if v not in gdf.columns]
    if missing:
        raise InputDataError(f"{where}: column(s) not found: {', '.join(missing)} (columns: {list(gdf.columns)}). Fix plots.* in the config.")
    if gdf.crs is None:
        raise InputDataError(f"{where}: the layer has no CRS. Assign one in GIS software and save again.")
    gdf = gdf.to_crs(grid.crs)
    pts = gdf.geometry.centroid if not (gdf.geom_type == "Point").all() else gdf.geometry
    out = pd.DataFrame({
        "plot_id": gdf[cols["id_column"]].astype("string").to_numpy(dtype=object),
        "type": gdf[cols["type_column"]].astype("string").to_numpy(dtype=object),
        "year": pd.to_numeric(gdf[cols["year_column"]], errors="coerce").to_numpy(),
        "carbon_t_ha": gdf[cols["carbon_column"]].to_numpy(dtype=object),
        "x_m": pts.x.to_numpy(),
        "y_m": pts.y.to_numpy(),
    })
    problems = []
    for i, r in enumerate(out.itertuples(index=False), start=1):
        label = f"{where} row {i} (plot {r.plot_id!r})"
        if pd.isna(r.type) or r.type not in types:
            problems.append(f"{label}: {cols['type_column']} must be one of {list(types)}. Got {r.type!r}. Recode the plot or add the type to greenspace.types.")
        if not np.isfinite(r.year):
            problems.append(f"{label}: {cols['year_column']} must be a year. Got {gdf[cols['year_column']].iloc[i - 1]!r}.")
    rows, cols_ = rowcol(grid.transform, out["x_m"].to_numpy(), out["y_m"].to_numpy())
    out["row"], out["col"] = np.asarray(rows), np.asarray(cols_)
    outside = (out["row"] < 0) | (out["row"] >= grid.height) | (out["col"] < 0) | (out["col"] >= grid.width)
    for i in np.flatnonzero(outside.to_numpy())[:20]:
        problems.append(
            f"{where} row {i + 1} (plot {out['plot_id'].iloc[i]!r}): location ({out['x_m'].iloc[i]:.1f}, {out['y_m'].iloc[i]:.1f}) "
            f"is outside the analysis area {tuple(round(b) for b in grid.bounds)} ({grid.crs}). Remove the plot or check its CRS."
        )
    if problems:
        raise InputDataError(f"{len(problems)} problem(s) with the plots:\n" + "\n".join(f"  - {p}" for p in problems))
    out["year"] = out["year"].astype(int)
    return out


def outside_years(plots: pd.DataFrame, years: Sequence[int], where: str, year_column: str) -> dict | None:
    """The plots dated outside the reporting ``years``, which no year's model uses; None when there are none.

    ``plots`` as returned by :func:`prepare_plots`. Returns {"n", "n_plots", "years" ({year: count}, as
    strings for JSON), "reporting_years", "file", "column", "plot_ids" (the first 20), "message"}; the
    message names the file, column, years and counts and the fix."""
    out = plots[~plots["year"].isin([int(y) for y in years])]
    if out.empty:
        return None
    counts = out["year"].value_counts().sort_index()
    listed = ", ".join(f"{int(y)} ({int(n)} plot{'s' if n > 1 else ''})" for y, n in counts.items())
    message = (f"{where}: {len(out)} of {len(plots)} plots are dated outside the reporting years {sorted(int(y) for y in years)} "
               f"(column {year_column!r}: {listed}) and are used by no year's model. Add those years to `years`, "
               "or correct the plots' years if they were measured in a reporting year.")
    return {"n": int(len(out)), "n_plots": int(len(plots)), "years": {str(int(y)): int(n) for y, n in counts.items()},
            "reporting_years": sorted(int(y) for y in years), "file": str(where), "column": str(year_column),
            "plot_ids": [str(v) for v in out["plot_id"].head(20)], "message": message}


def sample(raster: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Values of a (rows, cols) raster at the given pixel indices."""
    return raster[np.asarray(rows, dtype=int), np.asarray(cols, dtype=int)]


def footprint_matrix(plots: pd.DataFrame, radius_m: float, grid: Grid) -> sp.csr_matrix:
    """(n_plots, pixels) exact coverage of a circle of ``radius_m`` around each plot point (x_m, y_m)
    on the grid: row i holds the fraction of each pixel the circle covers. The circle is a 64-gon
    (area within 0.2 % of the circle's)."""
    if not radius_m > 0:
        raise InputDataError(f"plots.radius_m must be > 0 for a footprint. Got {radius_m!r}. Use 0 to read the plot's pixel.")
    circles = shapely.buffer(shapely.points(plots["x_m"].to_numpy(float), plots["y_m"].to_numpy(float)),
                             float(radius_m), quad_segs=16)
    return coverage_matrix(list(circles), grid.transform, grid.shape)


def sample_footprints(matrix: sp.csr_matrix, raster: np.ndarray) -> np.ndarray:
    """Area-weighted mean of a (rows, cols) raster over each plot's footprint (NaN pixels left out;
    NaN where the footprint has no valid pixel)."""
    return zonal_mean(matrix, raster)


def own_type_share_footprints(plots: pd.DataFrame, matrix: sp.csr_matrix, fractions: np.ndarray,
                              types: Sequence[str]) -> np.ndarray:
    """Share (0–1) of each plot's footprint covered by the plot's own green-space type."""
    out = np.empty(len(plots))
    for k, t in enumerate(types):
        rows = np.flatnonzero((plots["type"] == t).to_numpy())
        if rows.size:
            out[rows] = zonal_mean(matrix[rows], fractions[k])
    return out


def own_type_share(plots: pd.DataFrame, fractions: np.ndarray, types: Sequence[str]) -> np.ndarray:
    """Share (0–1) of each plot's pixel covered by the plot's own green-space type."""
    index = {t: k for k, t in enumerate(types)}
    k = np.array([index[t] for t in plots["type"]], dtype=int)
    return fractions[k, plots["row"].to_numpy(int), plots["col"].to_numpy(int)].astype(float)


def screen_mixed(plots: pd.DataFrame, share: np.ndarray, min_share: float,
                 where: str = "pixel") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split plots into those used for fitting and those left out because less than ``min_share`` of
    their pixel (or footprint: ``where``) is their own type (the predictors then mostly describe other land). Both keep a
    ``type_share`` column, and the left-out ones a ``screened`` reason, so nothing is dropped silently."""
    out = plots.assign(type_share=share)
    mixed = out["type_share"] < min_share
    left_out = out[mixed].assign(screened=[f"only {s:.0%} of the plot's {where} is type {t} (< {min_share:.0%})"
                                           for s, t in zip(out.loc[mixed, "type_share"], out.loc[mixed, "type"], strict=True)])
    return out[~mixed], left_out
