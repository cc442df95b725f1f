"""STAC imagery: search a STAC API or a static catalog, turn each item into a :class:`~greensink.ingest.Scene`.

``imagery.source: stac`` with ``imagery.stac`` = {catalog, collections, max_cloud_cover_pct,
query, profile, assets, limit, retries}. For each reporting year the ingest stage searches the
items that intersect the analysis grid's bounds (transformed to EPSG:4326), are dated within
the year's season and are under the cloud-cover limit (``eo:cloud_cover``), sorted by datetime
then id. Each item becomes a Scene whose band files are the asset hrefs (absolute paths or
URLs), so the one windowed reader of :mod:`greensink.ingest` (GDAL through a rasterio
WarpedVRT, ``/vsicurl/`` for http(s)) reads them lazily, window by window, on the analysis grid.

* ``catalog``: a STAC API root URL (searched with pystac-client), or a static catalog: a local
  path (or ``file://`` URL) or an http(s) URL ending in ``.json`` (``catalog.json`` /
  ``collection.json``), walked with pystac and filtered here with the same rules.
* Harmonisation from item metadata: the asset's ``raster:bands`` ``scale``/``offset`` when given
  (the red asset's for both bands, unless the NIR asset gives its own);
  for Sentinel-2 (``offset_rule: sentinel2-baseline``) ``earthsearch:boa_offset_applied: true``
  means the DNs carry no offset any more (add-offset 0, taking precedence over raster:bands); else
  ``s2:processing_baseline`` (04.00 on: −1000); else the date rule of the profile.
* Retries: the search is retried with exponential backoff; GDAL retries http reads
  (``GDAL_HTTP_MAX_RETRY`` / ``GDAL_HTTP_RETRY_DELAY``, set in :mod:`greensink.ingest.reader` unless the
  environment sets them).
* Every asset that is missing from its item or cannot be opened is recorded (item id, asset key,
  href, error) in ``failed_assets``; its scene is skipped with a warning. If no scene remains the
  ingest stops, naming the catalog, bbox, season and the failures.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import logging
import operator
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import rasterio
from rasterio.warp import transform_bounds

from greensink.errors import InputDataError
from greensink.grid import Grid
from greensink.ingest import check_unique_ids, ingest_year, make_scene, resolve_profiles, season_window

log = logging.getLogger(__name__)

# Asset keys tried in order for each band role, per built-in profile: the first key present in an
# item is used. Planetary Computer names Sentinel-2 L2A assets B04/B08/SCL, Earth Search v1
# red/nir/scl; Landsat C2 L2 assets are red/nir08/qa_pixel (USGS, Planetary Computer, Earth Search).
DEFAULT_ASSETS: dict[str, dict[str, list[str] | None]] = {
    "sentinel2-l2a": {"red": ["B04", "red"], "nir": ["B08", "nir"], "quality": ["SCL", "scl"]},
    "sentinel2-l1c": {"red": ["B04", "red"], "nir": ["B08", "nir"], "quality": None},
    "landsat-c2-l2": {"red": ["red", "SR_B4"], "nir": ["nir08", "SR_B5"], "quality": ["qa_pixel", "QA_PIXEL"]},
}
DEFAULTS = {"profile": "sentinel2-l2a", "max_cloud_cover_pct": 100.0, "limit": 1000, "retries": 3}
RETRY_DELAY_S = 1.0  # first backoff of a failed search; doubled on each further try
QUERY_OPS: dict[str, Callable[[Any, Any], bool]] = {  # STAC query extension, for static catalogs
    "eq": operator.eq, "neq": operator.ne, "lt": operator.lt, "lte": operator.le, "gt": operator.gt, "gte": operator.ge,
    "in": lambda v, ref: v in ref, "startsWith": lambda v, ref: str(v).startswith(ref),
    "endsWith": lambda v, ref: str(v).endswith(ref), "contains": lambda v, ref: ref in v,
}


# ----------------------------------------------------------------------------- configuration


def is_static(catalog: str) -> bool:
    """True for a static catalog (a local path, a file:// URL, or an http(s) URL ending in .json);
    False for a STAC API root URL."""
    scheme = urlparse(str(catalog)).scheme.lower()
    if scheme in ("http", "https"):
        return str(catalog).split("?")[0].lower().endswith(".json")
    return True


def local_path(href: str) -> str:
    """An href as a GDAL-readable name: file:// URLs and relative paths become absolute paths; other
    URLs (http, https, s3, ...) as given. Also the name of a local static catalog's root file."""
    parsed = urlparse(href)
    if parsed.scheme == "file":
        return str(Path(unquote(parsed.path)).resolve())
    if parsed.scheme and len(parsed.scheme) > 1:  # http, https, s3, gs ... (a drive letter is one character)
        return href
    return str(Path(href).resolve())


def profile_of(stac: Mapping, collection: str | None) -> str:
    """The sensor profile name of an item of ``collection``: ``profile`` (a name, or a mapping of
    collection id to name, with ``default`` for the rest)."""
    spec = stac.get("profile", DEFAULTS["profile"])
    if isinstance(spec, Mapping):
        return spec.get(collection or "", spec.get("default", DEFAULTS["profile"]))
    return spec


def asset_keys(stac: Mapping, profile_name: str, profile: Mapping) -> dict[str, list[str] | None]:
    """Candidate asset keys per band role: ``stac.assets`` (a key, a list of keys, or null for no
    quality band) over the defaults of the profile (or of its ``base``)."""
    base = DEFAULT_ASSETS.get(profile_name) or DEFAULT_ASSETS.get(profile.get("base") or "", {})
    out: dict[str, list[str] | None] = {role: copy.deepcopy(base.get(role)) for role in ("red", "nir", "quality")}
    for role, keys in (stac.get("assets") or {}).items():
        out[role] = None if keys is None else ([keys] if isinstance(keys, str) else list(keys))
    if not profile.get("quality"):
        out["quality"] = None  # the profile cannot read a quality band
    return out


def stac_problems(cfg: Mapping, profiles: Mapping[str, Mapping]) -> list[str]:
    """Checks of imagery.stac the schema cannot express (profile names, asset keys), without network."""
    im = cfg["imagery"]
    stac = im.get("stac")
    if im["source"] != "stac":
        return []
    if not stac:
        return ["imagery.stac: source stac needs imagery.stac with at least catalog (a STAC API URL or a static catalog.json)."]
    problems: list[str] = []
    spec = stac.get("profile", DEFAULTS["profile"])
    names = dict(spec) if isinstance(spec, Mapping) else {"": spec}
    for coll, name in names.items():
        where = "imagery.stac.profile" + (f".{coll}" if coll else "")
        if name not in profiles:
            problems.append(f"{where}: must name a sensor profile, one of {sorted(profiles)} (or add one under imagery.profiles). Got {name!r}.")
            continue
        keys = asset_keys(stac, name, profiles[name])
        for role in ("red", "nir"):
            if not keys.get(role):
                problems.append(f"imagery.stac.assets.{role}: profile {name!r} has no default asset key for {role}. "
                                f"Give imagery.stac.assets.{role}, e.g. B04 for red.")
    return problems


# ----------------------------------------------------------------------------- search


def grid_bbox_wgs84(grid: Grid) -> tuple[float, float, float, float]:
    """The analysis grid's bounds in EPSG:4326 (lon/lat, densified so the footprint is inside)."""
    return tuple(round(v, 7) for v in transform_bounds(grid.crs, "EPSG:4326", *grid.bounds, densify_pts=21))


def _item_date(item) -> dt.date | None:
    iso = _item_iso(item)
    return dt.date.fromisoformat(iso[:10]) if iso else None


def _intersects(a: Sequence[float], b: Sequence[float]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def _query_ok(props: Mapping, query: Mapping) -> bool:
    """True when ``props`` meet a STAC query-extension filter ({property: {op: value}})."""
    for name, cond in query.items():
        if name not in props or props[name] is None:
            return False
        v = props[name]
        for op, ref in (cond.items() if isinstance(cond, Mapping) else [("eq", cond)]):
            test = QUERY_OPS.get(op)
            if test is None:
                raise InputDataError(f"imagery.stac.query.{name}: unknown operator {op!r}. Use one of {list(QUERY_OPS)}.")
            try:
                if not test(v, ref):
                    return False
            except TypeError:
                return False
    return True


def _full_query(stac: Mapping) -> dict:
    query = copy.deepcopy(dict(stac.get("query") or {}))
    limit = float(stac.get("max_cloud_cover_pct", DEFAULTS["max_cloud_cover_pct"]))
    if limit < 100:
        cond = query.setdefault("eo:cloud_cover", {})
        cond["lte"] = min(limit, cond.get("lte", limit))
    return query


def _with_retries(fn: Callable[[], Any], what: str, retries: int, delay: float = RETRY_DELAY_S,
                  sleep: Callable[[float], None] = time.sleep) -> Any:
    """``fn()``, tried ``retries`` more times on error with exponential backoff (delay, 2×delay, ...)."""
    for attempt in range(retries + 1):
        try:
            return fn()
        except InputDataError:
            raise
        except Exception as exc:  # network errors come in many types (requests, pystac-client, urllib)
            if attempt == retries:
                raise InputDataError(f"{what} failed after {retries + 1} tries: {exc}. Check the URL and the network, "
                                     "or raise imagery.stac.retries.") from exc
            wait = delay * 2 ** attempt
            log.warning("%s failed (%s); retrying in %.0f s (%d/%d)", what, exc, wait, attempt + 1, retries)
            sleep(wait)
    raise AssertionError("unreachable")


def _static_items(catalog: str, bbox, start: dt.date, end: dt.date, collections, query: Mapping) -> list:
    import pystac

    href = catalog if urlparse(catalog).scheme in ("http", "https") else local_path(catalog)
    try:
        root = pystac.read_file(href)
    except (ValueError, KeyError, TypeError, OSError, pystac.STACError) as exc:  # JSON syntax (ValueError), missing fields
        raise InputDataError(f"imagery.stac.catalog {catalog}: cannot be read as a STAC catalog ({type(exc).__name__}: "
                             f"{' '.join(str(exc).split())[:300]}). Give a valid STAC catalog.json, collection.json or item "
                             "(pystac or stac-validator can check it); if it was cut short, write it again.") from exc
    if isinstance(root, pystac.Item):
        items = [root]
    elif isinstance(root, pystac.Catalog):
        items = list(root.get_items(recursive=True))
    else:
        raise InputDataError(f"imagery.stac.catalog {catalog}: not a STAC catalog, collection or item ({type(root).__name__}).")
    out = []
    for item in items:
        if collections and item.collection_id not in collections:
            continue
        if item.bbox is None or not _intersects(item.bbox, bbox):
            continue
        date = _item_date(item)
        if date is None or not start <= date <= end:
            continue
        if not _query_ok(item.properties, query):
            continue
        out.append(item)
    return out


def _api_items(catalog: str, bbox, start: dt.date, end: dt.date, collections, query: Mapping, limit: int) -> list:
    from pystac_client import Client

    client = Client.open(catalog)
    search = client.search(bbox=list(bbox), datetime=f"{start.isoformat()}T00:00:00Z/{end.isoformat()}T23:59:59Z",
                           collections=list(collections) if collections else None, query=dict(query) or None,
                           max_items=limit)
    return list(search.items())


def search(stac: Mapping, bbox: Sequence[float], start: dt.date, end: dt.date, *,
           sleep: Callable[[float], None] = time.sleep) -> tuple[list, dict]:
    """Items of ``stac.catalog`` intersecting ``bbox`` (EPSG:4326) dated ``start``..``end`` (inclusive)
    within the collections, the cloud limit and the query; sorted by datetime, id. Also returns the
    search record for scenes.json."""
    catalog = str(stac["catalog"])
    collections = list(stac.get("collections") or [])
    query = _full_query(stac)
    limit = int(stac.get("limit", DEFAULTS["limit"]))
    retries = int(stac.get("retries", DEFAULTS["retries"]))
    static = is_static(catalog)
    remote = urlparse(catalog).scheme in ("http", "https")
    what = f"STAC {'catalog' if static else 'search'} {catalog}"
    if static:
        if not remote and not Path(local_path(catalog)).exists():
            raise InputDataError(f"imagery.stac.catalog: {catalog} not found. Give a STAC API URL or the path of a static catalog.json.")
        fetch = lambda: _static_items(catalog, bbox, start, end, collections, query)  # noqa: E731
    else:
        fetch = lambda: _api_items(catalog, bbox, start, end, collections, query, limit)  # noqa: E731
    items = _with_retries(fetch, what, retries if remote else 0, sleep=sleep)
    items = sorted(items, key=lambda it: (_item_iso(it), it.id))
    found = len(items)
    limit_reached = found >= limit
    if limit_reached:
        log.warning("%s: %d items found, the limit (imagery.stac.limit = %d); the search may be incomplete: "
                    "narrow it (collections, query, max_cloud_cover_pct) or raise the limit", what, found, limit)
    items = items[:limit]
    record = {
        "catalog": catalog,
        "kind": "static" if static else "api",
        "collections": collections,
        "bbox_wgs84": list(bbox),
        "datetime": f"{start.isoformat()}/{end.isoformat()}",
        "query": query,
        "items_found": found,
        "limit": limit,
        "limit_reached": limit_reached,
    }
    return items, record


def _item_iso(item) -> str:
    when = item.datetime or item.common_metadata.start_datetime
    if when is None:
        return ""
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return when.isoformat(timespec="seconds") + "Z"


def first_item_lattice(cfg: Mapping, bounds: Sequence[float]) -> tuple[Any, Any, str] | None:
    """(CRS, transform, description) of the red asset of the first item (by datetime, id) found over
    ``bounds`` (analysis CRS) in the season of the earliest reporting year that has items, for the
    grid's lattice (:func:`greensink.lattice.imagery_lattice`): from the asset's (else the item's)
    ``proj:transform`` with ``proj:epsg`` or ``proj:code``, else from the file's header. None if no
    item is found or its red asset has neither."""
    from affine import Affine
    from rasterio.crs import CRS

    stac = cfg["imagery"]["stac"]
    profiles = resolve_profiles(cfg["imagery"].get("profiles"))
    bbox = tuple(round(v, 7) for v in transform_bounds(cfg["crs"], "EPSG:4326", *bounds, densify_pts=21))
    for year in sorted(cfg["years"]):
        start, end = season_window(year, cfg["season"])
        items, _ = search(stac, bbox, start, end)
        if not items:
            continue
        item = items[0]
        name = profile_of(stac, item.collection_id)
        key = next((k for k in asset_keys(stac, name, profiles[name]).get("red") or [] if k in item.assets), None)
        if key is None:
            return None
        asset = item.assets[key]
        meta = {**item.properties, **asset.extra_fields}
        epsg, code, transform = meta.get("proj:epsg"), meta.get("proj:code"), meta.get("proj:transform")
        where = f"STAC item {item.id} asset {key}"
        if transform and (epsg or code) and len(transform) >= 6:
            crs = CRS.from_epsg(int(epsg)) if epsg else CRS.from_user_input(code)
            return crs, Affine(*[float(v) for v in transform[:6]]), f"{where} (proj:transform)"
        href = local_path(asset.get_absolute_href() or asset.href)
        try:
            with rasterio.open(href) as src:
                return src.crs, src.transform, f"{where} ({href})"
        except rasterio.errors.RasterioError as exc:
            log.warning("%s: no proj:transform and %s cannot be opened (%s); the grid is not aligned to it", where, href, exc)
            return None
    return None


# ----------------------------------------------------------------------------- items -> scenes


def _raster_band(asset) -> Mapping:
    bands = asset.extra_fields.get("raster:bands") or []
    return bands[0] if bands and isinstance(bands[0], Mapping) else {}


def item_harmonisation(item, red_asset, profile: Mapping) -> tuple[str, str, tuple[float, float] | None]:
    """(baseline, add_offset, (scale, offset) or None) of an item, for :func:`greensink.ingest.make_scene`.

    For the sentinel2-baseline rule: ``earthsearch:boa_offset_applied: true`` gives add-offset 0;
    else the red asset's raster:bands scale/offset if given; else ``s2:processing_baseline``; else
    the date (make_scene's rule). For other profiles: raster:bands scale/offset if given, else the profile."""
    props = item.properties
    band = _raster_band(red_asset)
    given = None
    if "scale" in band or "offset" in band:
        given = (float(band.get("scale", 1.0)), float(band.get("offset", 0.0)))
    if profile.get("offset_rule") != "sentinel2-baseline":
        return "", "", given
    applied = props.get("earthsearch:boa_offset_applied", props.get("sentinel:boa_offset_applied"))
    baseline = str(props.get("s2:processing_baseline") or props.get("sentinel:processing_baseline") or "")
    if applied is True:
        return baseline, "0", None  # the provider removed the offset from the DNs
    return baseline, "", given


@dataclasses.dataclass
class ItemScene:
    """An item turned into a scene, or the reasons it could not be."""

    item_id: str
    collection: str | None
    scene: Any  # greensink.ingest.Scene, or None when an asset is missing
    assets: dict[str, str | None]  # role -> asset key used
    cloud_cover_pct: float | None
    failed: list[dict]


def item_scene(item, stac: Mapping, profiles: Mapping[str, Mapping]) -> ItemScene:
    """A Scene from one item: asset hrefs resolved to absolute paths/URLs, harmonisation from its metadata."""
    name = profile_of(stac, item.collection_id)
    profile = profiles[name]
    keys = asset_keys(stac, name, profile)
    chosen: dict[str, str | None] = {}
    hrefs: dict[str, str | None] = {}
    failed: list[dict] = []
    for role in ("red", "nir", "quality"):
        candidates = keys.get(role)
        if not candidates:
            chosen[role] = hrefs[role] = None
            continue
        key = next((k for k in candidates if k in item.assets), None)
        if key is None:
            failed.append({"item_id": item.id, "asset": "/".join(candidates), "role": role, "href": None,
                           "error": f"item has no asset {' or '.join(map(repr, candidates))} "
                                    f"(it has {sorted(item.assets)}); set imagery.stac.assets.{role}"})
            continue
        chosen[role] = key
        hrefs[role] = local_path(item.assets[key].get_absolute_href() or item.assets[key].href)
    cloud = item.properties.get("eo:cloud_cover")
    base = ItemScene(item.id, item.collection_id, None, chosen, None if cloud is None else float(cloud), failed)
    if failed:
        return base
    baseline, add_offset, given = item_harmonisation(item, item.assets[chosen["red"]], profile)
    given_nir = item_harmonisation(item, item.assets[chosen["nir"]], profile)[2] or given  # the NIR asset's own, if it has one
    scene = make_scene(item.id, _item_iso(item), name, profile, hrefs["red"], hrefs["nir"], hrefs["quality"],
                       baseline, add_offset, f"STAC item {item.id}")
    if given is not None:
        nir = None if given_nir == given else given_nir
        scene = dataclasses.replace(scene, scale=given[0], offset=given[1],
                                    nir_scale=nir[0] if nir else None, nir_offset=nir[1] if nir else None)
    base.scene = scene
    return base


def probe_assets(found: ItemScene) -> list[dict]:
    """Open every band file of a scene; one failed-asset record per file that cannot be opened."""
    failed = []
    for role, path, _ in found.scene.band_files():
        try:
            with rasterio.open(path) as src:
                if src.crs is None:
                    raise rasterio.errors.RasterioIOError("no CRS")
        except rasterio.errors.RasterioError as exc:
            failed.append({"item_id": found.item_id, "asset": found.assets[role], "role": role, "href": path, "error": str(exc)})
    return failed


def stac_scenes(stac: Mapping, profiles: Mapping[str, Mapping], grid: Grid, year: int, season: Mapping[str, str],
                *, sleep: Callable[[float], None] = time.sleep) -> tuple[list, dict, list[dict], dict[str, dict]]:
    """(scenes, search record, failed assets, per-scene STAC info) of one year's season.

    Raises InputDataError naming the catalog, bbox and season if no item is found, or if every
    item found has an asset that is missing or cannot be opened."""
    start, end = season_window(year, season)
    bbox = grid_bbox_wgs84(grid)
    items, record = search(stac, bbox, start, end, sleep=sleep)
    where = (f"catalog {record['catalog']}, collections {record['collections'] or 'all'}, bbox {list(bbox)} (EPSG:4326), "
             f"season {start} to {end}, query {record['query'] or 'none'}")
    if not items:
        raise InputDataError(f"{year}: no STAC item found ({where}). Check the catalog and collections, widen the season, "
                             "or raise imagery.stac.max_cloud_cover_pct.")
    scenes, failed, info = [], [], {}
    for item in items:
        found = item_scene(item, stac, profiles)
        if not found.failed:
            found.failed = probe_assets(found)
        if found.failed:
            failed += found.failed
            for f in found.failed:
                log.warning("STAC item %s: asset %s (%s) cannot be used: %s; the scene is skipped",
                            f["item_id"], f["asset"], f["href"], f["error"])
            continue
        scenes.append(found.scene)
        info[found.item_id] = {"stac_item_id": found.item_id, "stac_collection": found.collection,
                               "stac_assets": found.assets, "cloud_cover_pct": found.cloud_cover_pct}
    record["item_ids"] = [s.scene_id for s in scenes]
    if not scenes:
        lines = "\n".join(f"  - item {f['item_id']} asset {f['asset']} ({f['href']}): {f['error']}" for f in failed)
        raise InputDataError(f"{year}: none of the {len(items)} STAC item(s) found can be read ({where}); failed assets:\n{lines}")
    check_unique_ids(scenes, f"STAC catalog {record['catalog']}")
    return scenes, record, failed, info


def ingest_stac_year(stac: Mapping, profiles: Mapping[str, Mapping], grid: Grid, year: int, season: Mapping[str, str],
                     block_rows: int = 512, *, sleep: Callable[[float], None] = time.sleep) -> dict:
    """The scenes.json record of one year from a STAC search: :func:`greensink.ingest.ingest_year` of the
    items found, with ``stac`` (the search and the item ids used), ``failed_assets`` and, per scene,
    its item id, collection, asset keys and cloud cover."""
    scenes, record, failed, info = stac_scenes(stac, profiles, grid, year, season, sleep=sleep)
    out = ingest_year(scenes, grid, year, season, block_rows)
    out["scenes"] = [{**s, **info[s["scene_id"]]} for s in out["scenes"]]
    record["item_ids"] = [s["scene_id"] for s in out["scenes"]]
    out["stac"] = record
    out["failed_assets"] = failed
    out["warnings"] = [f"STAC item {f['item_id']}: asset {f['asset']} ({f['href']}) cannot be used ({f['error']}); the scene is skipped."
                       for f in failed] + out["warnings"]
    return out
