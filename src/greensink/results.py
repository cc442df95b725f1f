"""A run's products for notebooks: rasters as one xarray Dataset, zone tables as GeoDataFrames.

>>> import greensink
>>> run = greensink.open_results("projects/my")          # a project folder, or its results/ folder
>>> run.rasters["carbon_t_ha"].sel(year=2024).plot()      # xarray, with its CRS through rioxarray
>>> district = run.zones("district")                      # every year, one row per zone and year
>>> district.pivot(index="year", columns="zone_id", values="carbon_t")

Rasters are opened lazily (dask chunks), so a large run opens at once and reads only what is used.
Nothing here writes; :meth:`Results.close` (or ``with open_results(...) as run``) closes the files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
import xarray as xr

from greensink.errors import InputDataError
from greensink.io import read_vector

# single-band products of every year, named by their unit (docs/outputs.md)
SINGLE_BAND = {"ndvi": "ndvi", "fvc": "fvc_frac", "canopy": "canopy_frac"}
CARBON_BANDS = ("carbon_t_ha", "carbon_t_ha_lo", "carbon_t_ha_hi")  # carbon.tif: estimate, lower, upper


@dataclass
class Results:
    """The products of one greensink run: ``rasters`` (variables ndvi, fvc_frac, canopy_frac, carbon_t_ha and
    its bounds on dims year, y, x, with the run's CRS) and the zone and sink tables by level."""

    folder: Path
    years: list[int]
    levels: list[str]
    rasters: xr.Dataset
    _open: list = field(default_factory=list, repr=False)

    def zones(self, level: str, year: int | None = None) -> gpd.GeoDataFrame:
        """The zone table of ``level`` for ``year``, or of every year stacked with a ``year`` column."""
        self._check_level(level)
        years = self.years if year is None else [year]
        tables = []
        for y in years:
            path = self.folder / str(y) / "zones" / f"{level}.gpkg"
            if not path.exists():
                raise InputDataError(f"{path}: no zone table of {level} for {y}. Run the workflow for that year.")
            table = read_vector(path)
            table.insert(0, "year", y)
            tables.append(table)
        return gpd.GeoDataFrame(pd.concat(tables, ignore_index=True), crs=tables[0].crs)

    def sink(self, level: str) -> gpd.GeoDataFrame:
        """The sink tables of ``level`` for every pair of years, stacked with ``y0`` and ``y1`` columns."""
        self._check_level(level)
        tables = []
        for folder in sorted((self.folder / "change").glob("[0-9][0-9][0-9][0-9]_[0-9][0-9][0-9][0-9]")):
            path = folder / "zones" / f"{level}.gpkg"
            if path.exists():
                table = read_vector(path)
                y0, y1 = map(int, folder.name.split("_"))
                table.insert(0, "y1", y1)
                table.insert(0, "y0", y0)
                tables.append(table)
        if not tables:
            raise InputDataError(f"{self.folder / 'change'}: no sink table of {level}. A run with two or more years makes them.")
        return gpd.GeoDataFrame(pd.concat(tables, ignore_index=True), crs=tables[0].crs)

    def _check_level(self, level: str) -> None:
        if level not in self.levels:
            raise InputDataError(f"{self.folder}: no zone level {level!r}. The run has levels {self.levels}.")

    def close(self) -> None:
        for da in self._open:
            da.close()
        self.rasters.close()

    def __enter__(self) -> Results:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _results_folder(path: str | Path) -> Path:
    path = Path(path)
    for candidate in (path / "results", path):
        if (candidate / "zones" / "grid.json").exists():
            return candidate
    raise InputDataError(f"{path}: not a greensink run (no results/zones/grid.json here or in results/). Give a "
                         "project folder (e.g. projects/my) or its results/ folder, after the workflow has run.")


def _levels(folder: Path) -> list[str]:
    """The zone levels, coarsest first, as the run's config listed them (provenance.json)."""
    import json

    record = folder / "provenance.json"
    if record.exists():
        zones = json.loads(record.read_text(encoding="utf-8")).get("config", {}).get("zones") or []
        if zones:
            return [z["level"] for z in zones]
    return sorted(p.stem for p in (folder / "zones").glob("*.gpkg"))


def open_results(path: str | Path, chunks: int | None = 1024) -> Results:
    """Open the products of a run: ``path`` is a project folder or its ``results/`` folder. Rasters are
    read lazily in ``chunks`` × ``chunks`` pixel blocks (None: read eagerly)."""
    import rioxarray

    folder = _results_folder(path)
    years = sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and re.fullmatch(r"\d{4}", p.name))
    levels = _levels(folder)
    opened: list = []
    per_year = []
    for year in years:
        variables = {}
        for name, var in SINGLE_BAND.items():
            path_tif = folder / str(year) / f"{name}.tif"
            if path_tif.exists():
                da = rioxarray.open_rasterio(path_tif, chunks=chunks, masked=True)
                opened.append(da)
                variables[var] = da.sel(band=1, drop=True)
        carbon = folder / str(year) / "carbon.tif"
        if carbon.exists():
            da = rioxarray.open_rasterio(carbon, chunks=chunks, masked=True)
            opened.append(da)
            for band, var in enumerate(CARBON_BANDS, start=1):
                variables[var] = da.sel(band=band, drop=True)
        for da in variables.values():
            da.attrs.pop("long_name", None)  # a band name that survives .sel breaks .rio.to_raster (STACK.md)
        per_year.append(xr.Dataset(variables).expand_dims(year=[year]))
    rasters = xr.concat(per_year, dim="year") if per_year else xr.Dataset()
    if per_year:
        rasters = rasters.rio.write_crs(per_year[0][next(iter(per_year[0].data_vars))].rio.crs)
    return Results(folder=folder, years=years, levels=levels, rasters=rasters, _open=opened)
