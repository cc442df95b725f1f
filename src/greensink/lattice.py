"""The analysis grid's lattice: where its pixel corners lie, by ``grid.align``.

``imagery`` (the default) follows the imagery's own pixels, so the first scene is read without
resampling (local and demo scenes through :mod:`greensink.ingest`, STAC items through
:mod:`greensink.stac`); ``resolution`` puts the corners at multiples of the resolution; a point
``[x, y]`` puts the lattice through that point. :func:`imagery_lattice` gives the record ``align``
of ``grid.json``, from which :meth:`greensink.grid.Grid.from_bounds` builds the grid.
"""

from __future__ import annotations

from collections.abc import Mapping

import rasterio
from affine import Affine

from greensink.config import demo_paths
from greensink.grid import Grid, lattice_offset
from greensink.ingest import Scene, file_alignment, in_season, load_scenes
from greensink.portable import run_relative
from greensink.stac import first_item_lattice
from greensink.units import format_m


def grid_align(cfg: Mapping) -> str | list[float]:
    """``grid.align`` of a config: imagery (the default), resolution, or a point [x, y] of the lattice."""
    return (cfg.get("grid") or {}).get("align", "imagery")


def first_scene(cfg: Mapping) -> Scene | None:
    """The first scene (by date, id) of the local or demo imagery in a reporting year's season, else the first listed."""
    im = cfg["imagery"]
    table = demo_paths(cfg)["scenes"] if im["source"] == "demo" else im.get("scenes")
    scenes = load_scenes(im, table or None)
    used = [s for s in scenes if any(in_season([s], y, cfg["season"]) for y in cfg["years"])]
    return (used or scenes or [None])[0]


def imagery_lattice(cfg: Mapping, bounds: tuple[float, float, float, float]) -> dict:
    """Where the analysis grid's pixel corners lie, by ``grid.align``: the record ``align`` of grid.json,
    ``{"align", "origin": [ox, oy], "source", "note"}`` with (ox, oy) the lattice offset in metres (see
    :func:`greensink.grid.lattice_offset`) for :meth:`greensink.grid.Grid.from_bounds`.

    ``imagery``: the first scene's lattice when its red band is in the analysis CRS at the analysis
    resolution (local and demo: its red file's transform; STAC: the first item's red asset,
    ``proj:transform`` and ``proj:epsg``/``proj:code``, else the file's header), so that scene is
    read without resampling; otherwise multiples of the resolution, and ``note`` says why.
    ``resolution``: multiples of the resolution. ``[x, y]``: the lattice through that point.
    ``bounds`` (the zones' extent in the analysis CRS) bound the STAC search."""
    align = grid_align(cfg)
    res, crs = float(cfg["resolution"]), str(cfg["crs"])
    if isinstance(align, list | tuple):
        origin = lattice_offset((float(align[0]), float(align[1])), res)
        return {"align": "point", "origin": list(origin), "source": f"grid.align [{format_m(align[0])}, {format_m(align[1])}]", "note": None}
    if align == "resolution":
        return {"align": "resolution", "origin": [0.0, 0.0], "source": "multiples of resolution (grid.align: resolution)", "note": None}
    if cfg["imagery"]["source"] == "stac":
        found = first_item_lattice(cfg, bounds)
    else:
        scene = first_scene(cfg)
        found = None
        if scene is not None:
            from greensink.io import reading

            with reading(scene.red, f"red band of scene {scene.scene_id}"), rasterio.open(scene.red) as src:
                # the file relative to the run folder where it lies inside it: grid.json stays portable
                found = (src.crs, src.transform, f"scene {scene.scene_id} ({run_relative(scene.red)})")
    if found is None:
        why = "no scene found to take it from"
    else:
        file_crs, transform, source = found
        probe = Grid(crs, Affine(res, 0.0, 0.0, 0.0, -res, 0.0), 1, 1)
        how = file_alignment(file_crs, transform, probe)
        if how is None or how["shift_m"] is not None:  # same CRS and pixel size: its lattice, whatever its offset
            origin = lattice_offset((transform.c, transform.f), res)
            return {"align": "imagery", "origin": list(origin), "source": source, "note": None}
        why = f"{source}: {how['why']}, so it has no lattice in the analysis CRS at {res:g} m"
    return {"align": "imagery", "origin": [0.0, 0.0], "source": "multiples of resolution",
            "note": f"grid.align imagery: {why}; the grid's pixel corners are at multiples of the resolution."}
