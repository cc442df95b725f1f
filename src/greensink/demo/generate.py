"""The whole demo city: :func:`generate_demo` makes every part in order, writes the files and the
manifest (demo.json)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import geopandas as gpd

from greensink import __version__
from greensink import io as gio
from greensink.demo.layout import Landscape, choose_disturbance, make_greenspace, make_zones
from greensink.demo.params import (
    CURVES,
    DISTURBED_NDVI,
    FRACTION_BANDS,
    LEVELS,
    ORIGIN,
    PLOT_RADIUS_M,
    TRUTH_CELL_M,
    TYPES,
    cell_factor,
    check_params,
)
from greensink.demo.plots import make_plots, make_population
from greensink.demo.scenes import make_scenes, scene_record, scl_grid, write_scenes
from greensink.demo.truth import make_fine_truth, make_fractions, write_truth
from greensink.errors import ConfigError
from greensink.grid import Grid
from greensink.units import m2_to_ha

log = logging.getLogger(__name__)


def generate_demo(
    out_dir: str | Path,
    *,
    years: Sequence[int] = (2023, 2024),
    crs: str = "EPSG:32651",
    resolution_m: float = 10.0,
    season: tuple[str, str] = ("04-01", "10-31"),
    seed: int = 20231,
    extent_m: float = 5000.0,
    blocks: tuple[int, int] = (8, 5),
    parcels_per_block: tuple[int, int] = (5, 5),
    scenes_per_year: int = 5,
    compress: str = "zstd",
    truth_cell_m: float = TRUTH_CELL_M,
    plot_radius_m: float = PLOT_RADIUS_M,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Generate the demo city under ``out_dir``; return the manifest (also written as demo.json).

    Files (paths relative to ``out_dir``): zones/{city,district,block,parcel}.gpkg,
    greenspace.gpkg, water.gpkg, population.gpkg, plots.gpkg (each with a CSV twin),
    imagery/S2_DEMO_{YYYYMMDD}_{B04,B08,SCL}.tif and imagery/scenes.csv,
    truth/{curves.json, fractions.tif, ndvi_{year}.tif, carbon_{year}.tif,
    zones_{year}_{level}.csv}, demo.json. The manifest holds no absolute path and no
    timing, so it is byte-identical for the same parameters wherever it is written."""
    years = [int(y) for y in years]
    season = (str(season[0]), str(season[1]))
    blocks, parcels_per_block = tuple(blocks), tuple(parcels_per_block)
    check_params(years, season, resolution_m, extent_m, blocks, parcels_per_block, scenes_per_year, compress)
    cell_factor(resolution_m, truth_cell_m)
    if not plot_radius_m >= 0:
        raise ConfigError(f"demo: plot_radius_m must be a number >= 0 metres. Got {plot_radius_m!r}.")
    out = Path(out_dir)
    t_start = time.perf_counter()

    def step(msg: str) -> None:
        log.info("demo: %s", msg)
        if progress is not None:
            progress(msg)

    zones = make_zones(
        extent_m=extent_m, blocks=blocks, parcels_per_block=parcels_per_block, crs=crs, seed=seed
    )
    for level in LEVELS:
        gio.write_table(out / "zones" / f"{level}.gpkg", zones[level], layer=level)
    counts = {level: len(zones[level]) for level in LEVELS}
    step("zones: " + ", ".join(f"{n} {lvl}" for lvl, n in counts.items()))
    grid = Grid.from_bounds(tuple(zones["city"].total_bounds), resolution_m, crs)

    land = make_greenspace(zones, resolution_m=resolution_m, seed=seed)
    disturbed_id = choose_disturbance(land.greenspace, seed)
    gio.write_table(out / "greenspace.gpkg", land.greenspace, layer="greenspace")
    gio.write_table(out / "water.gpkg", land.water, layer="water")
    area_ha = _areas_ha(zones["city"], land)
    step(
        f"green space: {len(land.greenspace)} polygons, {area_ha['green']:.1f} ha = "
        f"{100 * area_ha['green'] / area_ha['city']:.1f} % of {area_ha['city']:.1f} ha; "
        + ", ".join(f"{t} {area_ha[t]:.1f} ha" for t in TYPES)
    )

    fractions, _ = make_fractions(land, grid, disturbed_id)
    fine = make_fine_truth(land, grid, disturbed_id, years, seed, truth_cell_m)
    truth_t = write_truth(out / "truth", grid, zones, fractions, fine, compress)
    step(
        f"truth: {fine.label.shape[0]} x {fine.label.shape[1]} cells of {truth_cell_m:g} m "
        f"({grid.height} x {grid.width} px at {resolution_m:g} m); "
        f"vegetated {100 * fine.vegetated.mean():.1f} % of the city, tree canopy {100 * fine.canopy.mean():.1f} %; "
        "city carbon " + ", ".join(f"{y} {c:.1f} t C" for y, c in truth_t.items())
    )

    scenes = make_scenes(
        grid,
        fine.ndvi,
        fractions[FRACTION_BANDS.index("water")],
        season=season,
        scenes_per_year=scenes_per_year,
        seed=seed,
    )
    write_scenes(out / "imagery", grid, scenes, compress)
    step(
        f"imagery: {len(scenes)} scenes ({sum(s.in_season for s in scenes)} in season), "
        f"cloud {min(s.cloud_pct for s in scenes):.0f}-{max(s.cloud_pct for s in scenes):.0f} %"
    )

    plots, plot_info = make_plots(grid, fine, land.greenspace, seed=seed, radius_m=plot_radius_m)
    del fine
    gio.write_table(out / "plots.gpkg", plots, layer="plots")
    plot_counts = {
        t: {str(y): int(((plots["type"] == t) & (plots["year"] == y)).sum()) for y in years} for t in TYPES
    }
    step(
        f"plots: {plots['plot_id'].nunique()} plots x {len(years)} years; "
        + ", ".join(f"{t} {plot_counts[t][str(years[0])]}" for t in TYPES)
    )

    population = make_population(zones["block"], seed)
    gio.write_table(out / "population.gpkg", population, layer="population")
    step(f"population: {int(population['population'].sum())} persons in {len(population)} blocks")

    dist_row = land.greenspace[land.greenspace["green_id"] == disturbed_id].iloc[0]
    manifest = {
        "generator": "greensink.demo",
        "version": __version__,
        "parameters": {
            "years": years,
            "crs": crs,
            "resolution_m": float(resolution_m),
            "season": list(season),
            "seed": int(seed),
            "extent_m": float(extent_m),
            "blocks": list(blocks),
            "parcels_per_block": list(parcels_per_block),
            "scenes_per_year": int(scenes_per_year),
            "compress": compress,
            "truth_cell_m": float(truth_cell_m),
            "plot_radius_m": float(plot_radius_m),
            "origin": list(ORIGIN),
        },
        "grid": grid.to_dict(),
        "scl_grid": scl_grid(grid).to_dict(),
        "scenes": [
            {
                **scene_record(s, "imagery/"),
                "year": s.year,
                "in_season": s.in_season,
                "ndvi_factor": s.ndvi_factor,
            }
            for s in scenes
        ],
        "counts": {
            **counts,
            "greenspace": {t: int((land.greenspace["type"] == t).sum()) for t in TYPES},
            "water": len(land.water),
            "scenes": len(scenes),
            "plots": int(plots["plot_id"].nunique()),
        },
        "area_ha": {k: round(v, 6) for k, v in area_ha.items()},
        "green_space_ratio_pct": round(100 * area_ha["green"] / area_ha["city"], 4),
        "plots": {"count": plot_counts, **plot_info},
        "truth_carbon_t": truth_t,
        "disturbance": {
            "green_id": disturbed_id,
            "name": str(dist_row["name"]),
            "type": "XG",
            "area_ha": round(m2_to_ha(float(dist_row.geometry.area)), 6),
            "from_year": years[1] if len(years) > 1 else None,
            "ndvi": DISTURBED_NDVI,
        },
        "curves": CURVES,
        "truth": {
            "fractions": "truth/fractions.tif",
            "curves": "truth/curves.json",
            "ndvi": {str(y): f"truth/ndvi_{y}.tif" for y in years},
            "carbon": {str(y): f"truth/carbon_{y}.tif" for y in years},
            "zones": {str(y): {lvl: f"truth/zones_{y}_{lvl}.csv" for lvl in LEVELS} for y in years},
        },
    }
    gio.write_json(out / "demo.json", manifest)
    step(f"done: {out} in {time.perf_counter() - t_start:.1f} s")
    return gio.read_json(out / "demo.json")


def _areas_ha(city: gpd.GeoDataFrame, land: Landscape) -> dict[str, float]:
    """Polygon areas in ha: per type, all green space, water and the city."""
    green = land.greenspace
    area = {t: m2_to_ha(float(green.geometry[green["type"] == t].area.sum())) for t in TYPES}
    area["green"] = sum(area.values())
    area["water"] = m2_to_ha(float(land.water.geometry.area.sum()))
    area["city"] = m2_to_ha(float(city.geometry.area.sum()))
    return area


def run_build_demo(*, demo: Mapping, years: Sequence[int], crs: str, resolution_m: float, season: Mapping[str, str],
                   compress: str = "zstd") -> dict:
    """Rule build_demo: the demo city under ``demo["out_dir"]`` (:func:`generate_demo`) from the config's demo
    section ``demo`` (seed, extent_m, blocks, parcels_per_block, scenes_per_year, truth_cell_m, plot_radius_m)
    and the run's ``years``, ``crs``, ``resolution_m``, ``season`` ({"start": "MM-DD", "end": "MM-DD"}) and
    output ``compress``; returns the manifest (also written as demo.json)."""
    manifest = generate_demo(
        demo["out_dir"], years=years, crs=crs, resolution_m=resolution_m, season=(season["start"], season["end"]),
        seed=demo["seed"], extent_m=demo["extent_m"], blocks=tuple(demo["blocks"]),
        parcels_per_block=tuple(demo["parcels_per_block"]), scenes_per_year=demo["scenes_per_year"], compress=compress,
        truth_cell_m=demo["truth_cell_m"], plot_radius_m=demo["plot_radius_m"], progress=log.info,
    )
    log.info("demo city written to %s: %s", demo["out_dir"], manifest.get("counts"))
    return manifest
