"""Preflight: every input of a config checked before any job runs, all problems reported at once.

``greensink validate`` and the first step of every workflow run (the Snakefile, in the main process)
call :func:`check_inputs` on the config as the workflow sees it (:func:`greensink.workflow.load_project`).
It reads headers and attribute tables, not pixels (except a land-cover raster's classes), and checks:
files exist and globs match; scene dates parse and every year has scenes in its season; every file
has a CRS; scenes, population and plots overlap the zones; zone id, name and parent columns exist;
each zone level lies within the one listed before it (:func:`_containment`: wrong order and straddlers);
plots have the configured columns, numeric carbon and known types; green-space types are configured;
the class table covers the land-cover raster. Each problem names the file, the field, what was found
and the fix. Inputs the demo rule writes (source demo) do not exist yet and are not checked.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from greensink.config import demo_output, greenspace_by_year, greenspace_of_year, input_paths
from greensink.errors import GreensinkError, InputDataError
from greensink.io import special_file

log = logging.getLogger(__name__)

Bounds = tuple[float, float, float, float]


class Findings:
    """Problems (the run cannot go on) and warnings (it can, but the user should know)."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.warnings: list[str] = []


def check_inputs(cfg: Mapping) -> list[str]:
    """Check every input of ``cfg`` (a validated config with absolute input paths); return the warnings,
    or raise InputDataError listing every problem, each naming file, field, value and fix."""
    found = Findings()
    missing = _missing_files(cfg, found)
    area = _zones(cfg, missing, found)
    footprints = _imagery(cfg, missing, area, found)
    _greenspace(cfg, missing, found)
    _plots(cfg, missing, area, footprints, found)
    _population(cfg, missing, area, found)
    _tables(cfg, missing, found)
    _zoning(cfg, missing, area, found)
    _scenarios(cfg, area, found)
    if found.problems:
        raise InputDataError(f"{len(found.problems)} problem(s) with the inputs, found before any job ran:\n"
                             + "\n".join(f"  - {p}" for p in found.problems))
    return found.warnings


def _missing_files(cfg: Mapping, found: Findings) -> set[str]:
    """Keys whose file (or glob) is not there; each is reported once here and skipped by later checks."""
    missing: set[str] = set()
    for key, value in input_paths(cfg):
        if key.startswith("imagery.files") or key == "imagery.stac.catalog" or demo_output(cfg, value):
            continue  # globs: reported with the scene listing; catalogs may be URLs
        if (key in ("vegetation.chm.path", "plots.path") or key.startswith("greenspace.")) and "{year}" in str(value):
            paths = [str(value).replace("{year}", str(y)) for y in sorted(cfg["years"])]
        else:
            paths = [str(value)]
        absent = [p for p in paths if not Path(p).exists()]
        special = [(p, kind) for p in paths if (kind := special_file(p))]
        if special:
            missing.add(key)
            for p, kind in special:
                found.problems.append(f"{key}: {p} is {kind}, not a file; reading it could block forever. Give the path "
                                      "of a regular file.")
        if absent:
            missing.add(key)
            for p in absent:
                found.problems.append(f"{key}: file {p} does not exist. Fix the path in the config (relative paths start in "
                                      "the folder the run starts in), or create the file.")
    return missing


def _vector_info(path: str, layer: str | None, key: str, found: Findings) -> dict | None:
    import pyogrio

    try:
        return pyogrio.read_info(path, layer=layer)
    except Exception as exc:  # pyogrio raises DataSourceError / DataLayerError with GDAL's text
        layers = ""
        try:
            layers = f" (layers: {[str(n) for n in pyogrio.list_layers(path)[:, 0]]})"
        except Exception:  # noqa: BLE001 - only for a better message
            pass
        found.problems.append(f"{key}: {path} cannot be read as a vector layer{' ' + repr(layer) if layer else ''}: {exc}{layers}. "
                              "Give a vector file GDAL reads (GeoPackage, Shapefile, GeoJSON, ...) and an existing layer.")
        return None


def _bounds_in(bounds: Sequence[float], crs: Any, target: str) -> Bounds | None:
    from pyproj import CRS, Transformer

    if bounds is None or not np.all(np.isfinite(bounds)):
        return None
    src = CRS.from_user_input(crs)
    if src == CRS.from_user_input(target):
        return tuple(float(b) for b in bounds)  # type: ignore[return-value]
    t = Transformer.from_crs(src, target, always_xy=True)
    return tuple(float(b) for b in t.transform_bounds(*bounds, densify_pts=21))  # type: ignore[return-value]


def _union(a: Bounds | None, b: Bounds | None) -> Bounds | None:
    if a is None or b is None:
        return a or b
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _overlap(a: Bounds | None, b: Bounds | None) -> bool:
    return a is None or b is None or (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])


def _fmt(b: Bounds) -> str:
    return "(" + ", ".join(f"{v:.0f}" for v in b) + ")"


def _zones(cfg: Mapping, missing: set[str], found: Findings) -> Bounds | None:
    """Check each zone layer's CRS and columns; return the zones' extent in the analysis CRS."""
    area: Bounds | None = None
    counts: list[tuple[str, int]] = []
    readable: list[tuple[int, Mapping]] = []  # levels whose geometries the containment check can read
    for i, z in enumerate(cfg["zones"]):
        key = f"zones[{i}]"
        if f"{key}.path" in missing or demo_output(cfg, z["path"]):
            continue
        info = _vector_info(z["path"], z.get("layer"), f"{key}.path", found)
        if info is None:
            continue
        where = f"{key} (level {z['level']}, {z['path']}{', layer ' + z['layer'] if z.get('layer') else ''})"
        fields = [str(f) for f in info["fields"]]
        for col in ("id", "name", "parent"):
            if z.get(col) and z[col] not in fields:
                found.problems.append(f"{where}: {key}.{col} names column {z[col]!r}, which the layer does not have "
                                      f"(columns: {fields}). Set {key}.{col} to one of them.")
        if not info.get("features"):
            found.problems.append(f"{where}: the layer has no features. Give a layer with the zones' polygons.")
        else:
            counts.append((z["level"], int(info["features"])))
        if not info.get("crs"):
            found.problems.append(f"{where}: the layer has no CRS. Assign one in GIS software (e.g. QGIS: Layer > Assign "
                                  "Projection) and save again.")
            continue
        try:
            area = _union(area, _bounds_in(info.get("total_bounds"), info["crs"], cfg["crs"]))
        except Exception as exc:  # noqa: BLE001 - a CRS pyproj cannot transform
            found.problems.append(f"{where}: its CRS {info['crs']} cannot be transformed to {cfg['crs']} ({exc}).")
            continue
        if info.get("features") and z["id"] in fields:
            readable.append((i, z))
    if _containment(cfg, readable, found):
        counts = []  # the order was judged by containment; the zone counts would say it again
    for (coarse, n_coarse), (fine, n_fine) in zip(counts, counts[1:], strict=False):
        if n_fine < n_coarse:
            found.problems.append(
                f"zones: level {fine!r} ({n_fine} zones) is listed after {coarse!r} ({n_coarse} zones), but a finer level "
                "has at least as many zones as the one above it. List the levels coarsest first (city, district, block, "
                "parcel).")
    _season_note(cfg, area, found)
    return area


def _level_geometries(cfg: Mapping, z: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """A zone layer's ids and polygons in the analysis CRS (invalid ones repaired), empty ones left out."""
    import pyogrio
    import shapely

    gdf = pyogrio.read_dataframe(z["path"], layer=z.get("layer"), columns=[z["id"]]).to_crs(cfg["crs"])
    geoms = gdf.geometry.to_numpy()
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    geoms, ids = geoms[keep], gdf[z["id"]].astype(str).to_numpy()[keep]
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        geoms[bad] = shapely.make_valid(geoms[bad])
    return ids, geoms


def _containment(cfg: Mapping, readable: Sequence[tuple[int, Mapping]], found: Findings, limit: int = 5) -> bool:
    """A coarser level must contain its children: for each pair of adjacent levels (as listed, both readable),
    every zone of the finer should lie (≥ 99 % of its area) within one zone of the coarser. Levels listed in
    the wrong order (most finer zones not within a coarser one, but most coarser zones within a finer one)
    are a problem naming the order that works; children that straddle parents are a warning naming the first
    few with the share outside. Returns True when the order was judged here (the caller's count check is then
    not needed)."""
    from greensink.zones import STRADDLE_SHARE, containment

    if len(readable) < 2 or [i for i, _ in readable] != list(range(len(cfg["zones"]))):
        return False
    try:
        layers = [(i, z, *_level_geometries(cfg, z)) for i, z in readable]
    except Exception as exc:  # noqa: BLE001 - the zones rule reads them again and names the problem
        found.warnings.append(f"zones: the levels' containment could not be checked ({exc}).")
        return False
    wrong = False
    for (i, za, _, ga), (j, zb, ids_b, gb) in zip(layers, layers[1:], strict=False):
        a, b = za["level"], zb["level"]
        _, share = containment(gb, ga)
        inside = share >= STRADDLE_SHARE
        if len(gb) and inside.mean() < 0.5:
            _, back = containment(ga, gb)
            n_back = int((back >= STRADDLE_SHARE).sum())
            if len(ga) and n_back / len(ga) >= 0.5:
                wrong = True
                sizes = {z["level"]: len(g) for _, z, _, g in layers}
                order = _order_that_works(layers)
                found.problems.append(
                    f"zones: the levels are listed in the wrong order: {b!r} (zones[{j}], {sizes[b]} zones) is listed "
                    f"after {a!r} (zones[{i}], {sizes[a]} zones), but {n_back} of {len(ga)} {a!r} zones lie within a "
                    f"{b!r} zone and only {int(inside.sum())} of {len(gb)} {b!r} zones within a {a!r} zone. A coarser "
                    f"level must contain its children (parent ids would be inverted). List the levels coarsest first: "
                    f"{', '.join(order)}.")
                continue
        out = np.flatnonzero(~inside)
        if out.size:
            worst = out[np.argsort(share[out], kind="stable")][:limit]
            named = ", ".join(f"{ids_b[k]} ({100.0 * (1.0 - share[k]):.1f} % outside)" for k in worst)
            more = f" and {out.size - limit} more" if out.size > limit else ""
            found.warnings.append(
                f"zones: {out.size} of {len(gb)} {b!r} zones (zones[{j}], {zb['path']}) do not lie within one {a!r} "
                f"zone (less than {100 * STRADDLE_SHARE:g} % of their area inside the {a!r} zone holding most of them): "
                f"{named}{more}. Each is counted in the {a!r} zone holding most of it, so that zone's sums include land "
                f"outside it. Snap the {b!r} boundaries to the {a!r} ones, or check that the levels belong together.")
    return wrong


def _order_that_works(layers: Sequence[tuple]) -> list[str]:
    """The levels coarsest first, judged by containment: a level that holds (most zones of) more of the other
    levels within its zones is coarser; ties by fewer zones, then as listed. Run only when the order is wrong."""
    from greensink.zones import STRADDLE_SHARE, containment

    def holds(outer, inner) -> bool:
        return len(inner[3]) > 0 and (containment(inner[3], outer[3])[1] >= STRADDLE_SHARE).mean() >= 0.5

    score = [sum(holds(x, y) for y in layers if y is not x) for x in layers]
    ranked = sorted(range(len(layers)), key=lambda k: (-score[k], len(layers[k][3]), layers[k][0]))
    return [layers[k][1]["level"] for k in ranked]


def _season_note(cfg: Mapping, area: Bounds | None, found: Findings) -> None:
    """A season that wraps the new year is said in words, with the dates it covers; north of the tropics
    it is probably a swapped start and end (a winter composite), so the warning says how to fix that."""
    from greensink.ingest import season_window

    start, end = cfg["season"]["start"], cfg["season"]["end"]
    if start <= end:
        return
    year = sorted(cfg["years"])[0]
    first, last = season_window(year, cfg["season"])
    text = (f"season: start {start} is after end {end}, so the season wraps the new year and {year} covers {first} to "
            f"{last} (southern hemisphere).")
    lat = None
    if area is not None:
        lat = _bounds_in(area, cfg["crs"], "EPSG:4326")
    if lat is not None and lat[1] > 23.5:
        text += (f" The zones lie at {lat[1]:.0f}–{lat[3]:.0f}° N, where this is winter: if you meant the growing season, "
                 f"swap them (start: {end!r}, end: {start!r}).")
    found.warnings.append(text)


def _raster_header(path: str, key: str, found: Findings) -> dict | None:
    import rasterio

    from greensink.io import reading

    try:
        with reading(path, "raster", "Give a GeoTIFF or another raster GDAL reads; if it was cut short, download or "
                     "export it again."), rasterio.open(path) as src:
            return {"crs": src.crs, "bounds": tuple(src.bounds), "count": src.count, "nodata": src.nodata,
                    "dtype": src.dtypes[0], "shape": (src.height, src.width)}
    except GreensinkError as exc:
        found.problems.append(f"{key}: {exc}")
        return None


def _imagery(cfg: Mapping, missing: set[str], area: Bounds | None, found: Findings) -> Bounds | None:
    """Scenes listed and dated; per year, scenes in season that overlap the zones. Returns the scenes' extent."""
    from greensink.ingest import in_season, load_scenes

    im = cfg["imagery"]
    if im["source"] == "demo":
        return None
    if im["source"] == "stac":
        catalog = str(im["stac"]["catalog"])
        if "://" not in catalog and not Path(catalog).exists():
            found.problems.append(f"imagery.stac.catalog: {catalog} does not exist. Give the path of a static catalog's "
                                  "catalog.json (or collection.json), or a STAC API URL.")
        return None  # searched in the ingest job, with retries
    if "imagery.scenes" in missing:
        return None
    try:
        scenes = load_scenes(im, im.get("scenes"))
    except GreensinkError as exc:
        found.problems.append(str(exc))
        return None
    extent: Bounds | None = None
    headers: dict[str, Bounds | None] = {}
    for scene in scenes:
        path = scene.band_files()[0][1]
        if path not in headers:
            head = _raster_header(path, f"imagery scene {scene.scene_id}", found)
            if head is None:
                headers[path] = None
                continue
            if head["crs"] is None:
                found.problems.append(f"imagery scene {scene.scene_id}: {path} has no CRS. Assign one (gdal_edit.py -a_srs "
                                      "EPSG:XXXX) or give files with georeferencing.")
                headers[path] = None
                continue
            headers[path] = _bounds_in(head["bounds"], head["crs"], cfg["crs"])
        extent = _union(extent, headers[path])
    for year in sorted(cfg["years"]):
        season = in_season(scenes, year, cfg["season"])
        if not season:
            dates = sorted({s.datetime[:10] for s in scenes})
            shown = ", ".join(dates[:8]) + (" ..." if len(dates) > 8 else "")
            found.problems.append(
                f"years: {year} has no scene in its season ({cfg['season']['start']} to {cfg['season']['end']}); the scenes "
                f"found are dated {shown or 'nothing'}. Remove {year} from years, widen season, or add scenes of {year}.")
            continue
        over = [s for s in season if _overlap(headers.get(s.band_files()[0][1]), area) and headers.get(s.band_files()[0][1])]
        if area is not None and not over:
            found.problems.append(
                f"imagery: none of the {len(season)} scene(s) of {year} overlaps the zones (zones {_fmt(area)} in {cfg['crs']}). "
                "Check the scenes' and the zones' CRS, or give scenes of this area.")
    return extent


def _greenspace(cfg: Mapping, missing: set[str], found: Findings) -> None:
    """The green-space layer, or each year's when its paths hold {year} (greensink.config.greenspace_by_year)."""
    if not cfg.get("greenspace"):
        return
    for year in sorted(cfg["years"]) if greenspace_by_year(cfg) else [None]:
        _greenspace_layer(greenspace_of_year(cfg, year), cfg, missing, found)


def _greenspace_layer(gs: Mapping, cfg: Mapping, missing: set[str], found: Findings) -> None:
    types = list(gs.get("types") or [])

    def there(key: str) -> bool:  # the file of this layer (a year's, with {year}) is there and was not reported
        return f"greenspace.{key}" not in missing or Path(gs[key]).is_file()

    if gs.get("path") and there("path") and not demo_output(cfg, gs["path"]):
        _greenspace_polygons(gs, types, found)
    if gs.get("raster") and there("raster"):
        head = _raster_header(gs["raster"], "greenspace.raster", found)
        if head is not None and head["crs"] is None:
            found.problems.append(f"greenspace.raster: {gs['raster']} has no CRS. Assign one and save again.")
        if head is not None and gs.get("class_table") and there("class_table"):
            _class_table(gs, types, head, found)


def _greenspace_polygons(gs: Mapping, types: list[str], found: Findings) -> None:
    import pyogrio

    path = gs["path"]
    info = _vector_info(path, None, "greenspace.path", found)
    if info is None:
        return
    col = gs.get("type_column", "type")
    if col not in [str(f) for f in info["fields"]]:
        found.problems.append(f"greenspace.type_column: {path} has no column {col!r} (columns: {list(info['fields'])}). "
                              "Set greenspace.type_column to the column holding the type codes.")
        return
    if not info.get("crs"):
        found.problems.append(f"greenspace.path: {path} has no CRS. Assign one in GIS software and save again.")
    codes = pyogrio.read_dataframe(path, columns=[col], read_geometry=False)[col].astype("string")
    unknown = sorted(set(codes[~codes.isin(types)].fillna("<empty>")))
    if unknown:
        found.problems.append(f"greenspace.path: {path} column {col!r} holds type code(s) {unknown[:10]} that are not in "
                              f"greenspace.types {types}. Recode the polygons or add the codes to greenspace.types.")


def _class_table(gs: Mapping, types: list[str], head: dict, found: Findings) -> None:
    import rasterio

    from greensink.io import read_csv
    from greensink.types import read_class_table

    try:
        mapping = read_class_table(read_csv(gs["class_table"]), types, gs["class_table"])
    except GreensinkError as exc:
        found.problems.append(str(exc))
        return
    from greensink.io import reading

    present: set[int] = set()
    with reading(gs["raster"], "land-cover raster"), rasterio.open(gs["raster"]) as src:
        for _, window in src.block_windows(1):
            block = src.read(1, window=window)
            if head["nodata"] is not None:
                block = block[block != head["nodata"]]
            present.update(int(v) for v in np.unique(block))
    unmapped = sorted(present - set(mapping))
    if unmapped:
        found.problems.append(f"greenspace.class_table: {gs['class_table']} does not list class(es) {unmapped[:20]} found in "
                              f"{gs['raster']}. Add a row for each (class, type), with type a code of greenspace.types or 'ignore'.")


def _read_table(path: str, key: str, found: Findings):
    from greensink.io import read_vector

    try:
        return read_vector(path)  # names the file: unreadable, or without geometry (a CSV of x/y columns)
    except GreensinkError as exc:
        found.problems.append(f"{key}: {exc}")
        return None


def _plots(cfg: Mapping, missing: set[str], area: Bounds | None, imagery: Bounds | None, found: Findings) -> None:
    import pandas as pd

    plots = cfg.get("plots")
    if not plots or "plots.path" in missing or demo_output(cfg, plots["path"]):
        return
    if "{year}" in str(plots["path"]):  # one plots file per year (greensink.refresh.plots_path): checked together
        parts = [_read_table(str(plots["path"]).replace("{year}", str(y)), "plots.path", found) for y in sorted(cfg["years"])]
        gdf = None if any(p is None for p in parts) else pd.concat(parts, ignore_index=True)
    else:
        gdf = _read_table(plots["path"], "plots.path", found)
    if gdf is None:
        return
    where = f"plots ({plots['path']})"
    cols = {k: plots.get(k, d) for k, d in (("id_column", "plot_id"), ("carbon_column", "carbon_t_ha"),
                                              ("type_column", "type"), ("year_column", "year"))}
    trees = plots.get("trees")
    if trees:  # carbon comes from the tree inventory (rule plot_carbon): no carbon column needed, an area is
        cols.pop("carbon_column")
        if plots.get("area_column"):
            cols["area_column"] = plots["area_column"]
        elif not plots.get("radius_m"):
            found.problems.append(f"{where}: plots.trees needs each plot's ground area for t C/ha. Set plots.area_column "
                                  "(a column of areas in m²) or plots.radius_m (circular plots, e.g. 11.28 for 400 m²).")
    absent = [f"plots.{k} = {v!r}" for k, v in cols.items() if v not in gdf.columns]
    if absent:
        found.problems.append(f"{where}: column(s) not found: {', '.join(absent)} (columns: {[c for c in gdf.columns if c != 'geometry']}). "
                              "Set these keys to the plots' column names.")
        return
    if gdf.crs is None:
        found.problems.append(f"{where}: the layer has no CRS. Assign one in GIS software and save again.")
        return
    bad = [] if trees else np.flatnonzero(~(pd.to_numeric(gdf[cols["carbon_column"]], errors="coerce") >= 0).to_numpy())
    for i in bad[:5]:
        found.problems.append(f"{where} row {i + 1}: {cols['carbon_column']} must be a number >= 0 (t C/ha). Got "
                              f"{gdf[cols['carbon_column']].iloc[i]!r}. Remove the row or fill it.")
    if len(bad) > 5:
        found.problems.append(f"{where}: {len(bad) - 5} more rows with a {cols['carbon_column']} that is not a number >= 0.")
    types = list((cfg.get("greenspace") or {}).get("types") or [])
    if types:
        codes = gdf[cols["type_column"]].astype("string")
        unknown = sorted(set(codes[~codes.isin(types)].fillna("<empty>")))
        if unknown:
            found.problems.append(f"{where}: column {cols['type_column']!r} holds type code(s) {unknown[:10]} that are not in "
                                  f"greenspace.types {types}. Recode the plots or add the types.")
    years = pd.to_numeric(gdf[cols["year_column"]], errors="coerce")
    other = sorted({int(y) for y in years.dropna()} - {int(y) for y in cfg["years"]})
    if other:
        n = int((~years.isin(cfg["years"]) & years.notna()).sum())
        found.warnings.append(f"{where}: {n} plot(s) dated {other} (column {cols['year_column']!r}) are outside years "
                              f"{sorted(cfg['years'])} and will not be used. Add those years, or ignore this if intended.")
    geom = gdf.geometry
    placed = (~(geom.isna() | geom.is_empty)).to_numpy()
    pts = gdf.to_crs(cfg["crs"]).geometry.representative_point()
    x, y = pts.x.to_numpy(), pts.y.to_numpy()
    placed = placed & np.isfinite(x) & np.isfinite(y)  # to_numpy() of a Series may be read-only (pandas copy-on-write)
    if not placed.all():
        ids = [str(v) for v in gdf[cols["id_column"]].to_numpy()[~placed][:5]]
        found.problems.append(f"{where}: {int((~placed).sum())} plot(s) have no coordinates (empty geometry or NaN x/y), "
                              f"e.g. {ids}. Give each plot its location, or remove those rows.")
    for name, box in (("the imagery", imagery), ("the zones", area)):
        if box is None:
            continue
        out = np.flatnonzero(placed & ~((x >= box[0]) & (x <= box[2]) & (y >= box[1]) & (y <= box[3])))
        if len(out):
            ids = [str(v) for v in gdf[cols["id_column"]].iloc[out[:5]]]
            found.problems.append(f"{where}: {len(out)} plot(s) lie outside {name} {_fmt(box)} ({cfg['crs']}), e.g. {ids}. "
                                  "Check the plots' CRS, or remove plots that are outside the study area.")


def _population(cfg: Mapping, missing: set[str], area: Bounds | None, found: Findings) -> None:
    pop = cfg.get("population")
    if not pop or "population.path" in missing or demo_output(cfg, pop["path"]):
        return
    info = _vector_info(pop["path"], None, "population.path", found)
    if info is None:
        return
    where = f"population ({pop['path']})"
    if pop["column"] not in [str(f) for f in info["fields"]]:
        found.problems.append(f"{where}: population.column {pop['column']!r} is not a column (columns: {list(info['fields'])}). "
                              "Set population.column to the column holding the number of people.")
    if not info.get("crs"):
        found.problems.append(f"{where}: the layer has no CRS. Assign one in GIS software and save again.")
        return
    box = _bounds_in(info.get("total_bounds"), info["crs"], cfg["crs"])
    if area is not None and box is not None and not _overlap(box, area):
        found.problems.append(f"{where}: the population polygons {_fmt(box)} do not overlap the zones {_fmt(area)} "
                              f"({cfg['crs']}). Check the layer's CRS, or set population: null.")


def _tables(cfg: Mapping, missing: set[str], found: Findings) -> None:
    from greensink.io import read_csv
    from greensink.model.table import validate_coefficients
    from greensink.targets import read_targets

    if cfg.get("coefficients") and "coefficients" not in missing and Path(cfg["coefficients"]).is_file():
        try:  # the table rule model reads: parsed and checked here, not after the imagery jobs
            validate_coefficients(read_csv(cfg["coefficients"]))
        except GreensinkError as exc:
            text = str(exc)
            found.problems.append(text if str(cfg["coefficients"]) in text else f"coefficients ({cfg['coefficients']}): {text}")
    if cfg.get("targets") and "targets" not in missing:
        try:
            read_targets(cfg["targets"])
        except GreensinkError as exc:
            found.problems.append(f"targets: {exc}")
    chm = (cfg.get("vegetation") or {}).get("chm")
    if chm and "vegetation.chm.path" not in missing:
        for year in sorted(cfg["years"]) if "{year}" in str(chm["path"]) else [None]:
            path = str(chm["path"]).replace("{year}", str(year))
            head = _raster_header(path, "vegetation.chm.path", found)
            if head is not None and head["crs"] is None:
                found.problems.append(f"vegetation.chm.path: {path} has no CRS. Assign one and save again.")


def _zoning(cfg: Mapping, missing: set[str], area: Bounds | None, found: Findings) -> None:
    """The zoning section's user layers (open land, construction, cropland, red line) and user-raster factors:
    readable, with a CRS, overlapping the zones."""
    from greensink.config import zoning_paths

    for key, path in zoning_paths(cfg):
        if key in missing or demo_output(cfg, path):
            continue
        if key.endswith(".path") and not key.startswith("zoning.importance."):
            layer = (cfg["zoning"].get(key.split(".")[1]) or {}).get("layer")
            info = _vector_info(path, layer, key, found)
            if info is None:
                continue
            crs, bounds = info.get("crs"), info.get("total_bounds")
        else:
            head = _raster_header(path, key, found)
            if head is None:
                continue
            crs, bounds = head["crs"], head["bounds"]
        if not crs:
            found.problems.append(f"{key}: {path} has no CRS. Assign one in GIS software (QGIS: Layer > Assign Projection, "
                                  "or gdal_edit.py -a_srs EPSG:XXXX for a raster) and save again.")
            continue
        try:
            box = _bounds_in(bounds, crs, cfg["crs"])
        except Exception as exc:  # noqa: BLE001 - a CRS pyproj cannot transform
            found.problems.append(f"{key}: {path} has CRS {crs}, which cannot be transformed to {cfg['crs']} ({exc}).")
            continue
        if area is not None and box is not None and not _overlap(box, area):
            found.problems.append(f"{key}: {path} {_fmt(box)} does not overlap the zones {_fmt(area)} ({cfg['crs']}). "
                                  "Check the layer's CRS, or give a layer of this area (or set the key to null).")


def _scenarios(cfg: Mapping, area: Bounds | None, found: Findings) -> None:
    """The scenarios' change layers (greensink.scenario): readable, with a CRS, holding polygons that overlap the
    zones. A missing file is named by the file check; a demo layer is made by rule demo_scenario_layers."""
    from greensink.scenario import layer_problems

    found.problems += layer_problems(cfg, area, skip=lambda path: demo_output(cfg, path))
