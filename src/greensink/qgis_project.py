"""A QGIS project file (``results/greensink.qgs``) that opens a run's products as one styled map.

The project is QGIS's own XML, written with the standard library (the workflow has no QGIS):

- project CRS = the run's CRS (WKT2 from PROJ, so QGIS needs no lookup of its own CRS ids);
- a layer tree with a trend group (2+ years: trend zone tables, trend raster, the transitions'
  vegetation classes), one group per change pair (sink zone tables, yearly sink raster, lost patches,
  attribution) and one group per year (zone tables, coarsest level on top, the zoning subgroup when
  zoning is on, then the carbon, canopy, FVC and NDVI rasters), newest first; with config scenarios a
  scenarios group on top, one subgroup per scenario (its zone tables styled on ``difference_t``, the plan
  minus the baseline, then its carbon raster);
- every layer referenced by a path relative to the project file (``./2024/carbon.tif``), and the
  project set to save relative paths, so the ``results`` folder can be moved or archived as a whole;
- each layer's style embedded from the ``.qml`` written beside it (rule ``qgis_styles``; the scenario
  layers' by :func:`write_scenario_styles` in rule ``qgis_project``), so the project shows the same
  colours as a layer opened on its own;
- layer names a planner can read, in Chinese and English like the report, with the unit.

Only the newest year's carbon raster is shown when the project opens: the zone layers are solid
fills and would hide it. Every year's carbon raster is checked inside its (unchecked) year group,
so ticking a year shows that year's map. The file states the QGIS version it was written for (``QGIS_VERSION``,
the Debian 12 LTR used in CI): that QGIS opens it without a message; a newer QGIS says, as it does
for any older project, that it will update the file when it is saved.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from xml.etree import ElementTree as ET

from pyproj import CRS
from pyproj.enums import WktVersion

from greensink import io as gio
from greensink.grid import Grid
from greensink.styles import BROWN_GREEN, robust_max, vector_qml

__all__ = ["LEVEL_NAMES", "QGIS_VERSION", "RASTERS", "ZONING_TABLES", "Group", "Layer", "ScenarioLayers", "layers",
           "project_xml", "run_qgis_project", "run_tree", "scenario_styles", "write_scenario_styles"]

log = logging.getLogger(__name__)

QGIS_VERSION = "3.22.16-Białowieża"  # Debian 12 python3-qgis, the QGIS the CI opens the project with
ID_PREFIX = "greensink_"  # layer ids: QGIS replaces an id of 10 characters or fewer by a random one
HEADER = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"

# per-year rasters: file stem -> (Chinese, English, unit), in the order they are listed (top first)
RASTERS: dict[str, tuple[str, str, str]] = {
    "carbon": ("碳密度", "carbon density", "t C/ha"),
    "canopy": ("树冠覆盖", "tree canopy", "fraction 0–1"),
    "fvc": ("植被覆盖度", "vegetation cover FVC", "fraction 0–1"),
    "ndvi": ("归一化植被指数", "NDVI", ""),
}
LEVEL_NAMES: dict[str, str] = {"city": "市域", "district": "城区", "block": "街区", "parcel": "地块"}


@dataclass(frozen=True)
class Layer:
    """One map layer: ``source`` is the file's path relative to the project file (POSIX separators)
    and its style is the ``.qml`` beside it. QGIS keeps an ``id`` only if it is longer than 10
    characters (shorter ones are replaced by a random id, which breaks the layer tree's references)."""

    id: str
    name: str
    source: str
    kind: Literal["raster", "vector"]
    visible: bool = False

    @property
    def qml(self) -> str:
        """Path of the layer's style, relative to the project file (``name.qml`` beside ``name.tif``)."""
        return self.source.rsplit(".", 1)[0] + ".qml"


@dataclass(frozen=True)
class Group:
    """A layer-tree group; children are listed top first (QGIS draws the top one over the others)."""

    name: str
    children: tuple[Layer | Group, ...] = field(default_factory=tuple)
    visible: bool = True
    expanded: bool = False


def layers(node: Group | Layer) -> Iterator[Layer]:
    """Every layer under ``node``, in tree order (top first)."""
    if isinstance(node, Layer):
        yield node
        return
    for child in node.children:
        yield from layers(child)


def _level_name(level: str) -> str:
    zh = LEVEL_NAMES.get(level)
    return f"{zh} {level}" if zh else level


def _raster_name(stem: str, when: str) -> str:
    zh, en, unit = RASTERS[stem]
    return f"{zh} {en} {when}" + (f" ({unit})" if unit else "")


# zoning zone tables: product -> (Chinese, English, unit of the styled column, greensink.styles.ZONING_COLUMNS)
ZONING_TABLES: dict[str, tuple[str, str, str]] = {
    "importance": ("碳汇重要性", "sink importance, extremely important share", "%"),
    "potential": ("碳汇潜力空间", "sink potential space share", "%"),
    "canopy_gap": ("树冠覆盖", "canopy cover", "%"),
}


def _trend_group(years: Sequence[int], levels: Sequence[str]) -> Group:
    when = f"{years[0]}–{years[-1]}"
    zones = tuple(
        Layer(f"{ID_PREFIX}trend_{level}", f"{_level_name(level)} {when} 碳储量趋势 stock trend (t C/ha/yr)",
              f"change/trend/zones/{level}.gpkg", "vector")
        for level in levels)
    trend = Layer(f"{ID_PREFIX}trend_raster", f"碳储量趋势 stock trend {when} (t C/ha/yr)", "change/trend/trend.tif",
                  "raster")
    classes = Layer(f"{ID_PREFIX}transition_classes", f"植被类型 vegetation classes {years[-1]} (transitions)",
                    "change/trend/transitions/classes.tif", "raster")
    return Group(f"趋势 trend {when}", (Group(f"分区 zones {when}", zones, visible=False), trend, classes),
                 visible=False)


def _zoning_group(year: int, levels: Sequence[str]) -> Group:
    tables = tuple(
        Layer(f"{ID_PREFIX}zoning_{year}_{product}_{level}", f"{_level_name(level)} {year} {zh} {en} ({unit})",
              f"{year}/zoning/{product}_{level}.gpkg", "vector")
        for product, (zh, en, unit) in ZONING_TABLES.items() for level in levels)
    rasters = (
        Layer(f"{ID_PREFIX}importance_{year}", f"碳汇重要性 sink importance classes {year}", f"{year}/zoning/importance.tif",
              "raster"),
        Layer(f"{ID_PREFIX}potential_{year}", f"碳汇潜力空间 sink potential space {year}", f"{year}/zoning/potential.tif",
              "raster"),
    )
    return Group(f"分区规划 zoning {year}", (Group(f"分区 zones {year}", tables, visible=False), *rasters),
                 visible=False)


@dataclass(frozen=True)
class ScenarioLayers:
    """A configured scenario as the project shows it: ``name`` (its folder under ``scenarios/``), ``label``
    (the config's display name) and the ``baseline_year`` it changes."""

    name: str
    label: str
    baseline_year: int


# the scenario zone tables' styled column: plan - baseline carbon stock (greensink.scenario.tables), t C
SCENARIO_COLUMN = "difference_t"


def _scenario_group(scenarios: Sequence[ScenarioLayers], levels: Sequence[str]) -> Group:
    groups = []
    for s in scenarios:
        label = s.label or s.name
        zones = tuple(
            Layer(f"{ID_PREFIX}scenario_zones_{s.name}_{level}",
                  f"{_level_name(level)} {label} 与{s.baseline_year}年之差 difference from {s.baseline_year} (t C)",
                  f"scenarios/{s.name}/zones/{level}.gpkg", "vector")
            for level in levels)
        carbon = Layer(f"{ID_PREFIX}scenario_carbon_{s.name}", f"碳密度 carbon density {label} (t C/ha)",
                       f"scenarios/{s.name}/carbon.tif", "raster")
        groups.append(Group(f"{label} ({s.baseline_year})", (Group(f"分区 zones {label}", zones, visible=False), carbon),
                            visible=False))
    return Group("情景 scenarios", tuple(groups), visible=False)


def run_tree(years: Sequence[int], pairs: Sequence[tuple[int, int]], levels: Sequence[str],
             zoning: bool = False, scenarios: Sequence[ScenarioLayers] = ()) -> Group:
    """The layer tree of a run's products, paths relative to ``results/``.

    ``levels`` come coarsest first (the config's zone order) and stay in that order, so the city is
    on top; change pairs and years are listed newest first. With 2 or more years a trend group (trend
    raster and zone tables, the transitions' vegetation classes) comes first; each pair's group holds
    its attribution raster and lost patches; with ``zoning`` each year holds a zoning subgroup. With
    ``scenarios`` a group 情景 scenarios comes first (config order), one subgroup per scenario holding its zone
    tables (a subgroup, coarsest on top) and its carbon raster.
    """
    years = sorted(int(y) for y in years)
    pairs = sorted((int(a), int(b)) for a, b in pairs)
    groups: list[Group] = [_scenario_group(scenarios, levels)] if scenarios else []
    groups += [_trend_group(years, levels)] if len(years) >= 2 else []
    for y0, y1 in reversed(pairs):
        when = f"{y0}–{y1}"
        folder = f"change/{y0}_{y1}"
        zones = tuple(
            Layer(f"{ID_PREFIX}sink_{y0}_{y1}_{level}", f"{_level_name(level)} {when} 年碳汇 yearly sink (t C/ha/yr)",
                  f"{folder}/zones/{level}.gpkg", "vector")
            for level in levels)
        sink = Layer(f"{ID_PREFIX}sink_{y0}_{y1}", f"年碳汇 yearly sink {when} (t C/ha/yr)", f"{folder}/sink.tif", "raster")
        lost = Layer(f"{ID_PREFIX}lost_{y0}_{y1}", f"碳汇空间损失 lost sink patches {when} (t C)",
                     f"{folder}/lost_patches.gpkg", "vector")
        attribution = Layer(f"{ID_PREFIX}attribution_{y0}_{y1}", f"变化归因 change attribution {when}",
                            f"{folder}/attribution.tif", "raster")
        groups.append(Group(f"碳汇变化 change {when}",
                            (Group(f"分区 zones {when}", zones, visible=False), sink, lost, attribution),
                            visible=False))
    newest = years[-1] if years else None
    for year in reversed(years):
        zones = tuple(
            Layer(f"{ID_PREFIX}zones_{year}_{level}", f"{_level_name(level)} {year} 碳密度 carbon density (t C/ha)",
                  f"{year}/zones/{level}.gpkg", "vector")
            for level in levels)
        rasters = tuple(
            Layer(f"{ID_PREFIX}{stem}_{year}", _raster_name(stem, str(year)), f"{year}/{stem}.tif", "raster",
                  visible=stem == "carbon")
            for stem in RASTERS)
        zoning_group = (_zoning_group(year, levels),) if zoning else ()
        groups.append(Group(f"{year} 年 year {year}",
                            (Group(f"分区 zones {year}", zones, visible=False), *zoning_group, *rasters),
                            visible=year == newest, expanded=year == newest))
    return Group("", tuple(groups))


# ----------------------------------------------------------------------------- XML


def _text(parent: ET.Element, tag: str, text: str, **attrib: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrib)
    el.text = text
    return el


def _spatialrefsys(parent: ET.Element, crs: CRS) -> None:
    """QGIS's CRS element. No ``srsid`` (QGIS's own database id): QGIS then builds the CRS from the WKT."""
    srs = ET.SubElement(parent, "spatialrefsys", nativeFormat="Wkt")
    _text(srs, "wkt", crs.to_wkt(WktVersion.WKT2_2019))
    with warnings.catch_warnings():  # "you will likely lose information": QGIS reads the WKT, PROJ.4 is a fallback
        warnings.simplefilter("ignore", UserWarning)
        proj4 = crs.to_proj4()
        acronym = crs.to_dict().get("proj") or ""  # to_dict goes through PROJ.4 as well
    _text(srs, "proj4", proj4)
    authority = crs.to_authority()
    _text(srs, "srid", authority[1] if authority else "0")
    _text(srs, "authid", ":".join(authority) if authority else "")
    _text(srs, "description", crs.name)
    _text(srs, "projectionacronym", acronym)
    ellps_id = (crs.ellipsoid.to_json_dict().get("id") or {}) if crs.ellipsoid is not None else {}
    _text(srs, "ellipsoidacronym", f"{ellps_id['authority']}:{ellps_id['code']}" if ellps_id else "")
    _text(srs, "geographicflag", "true" if crs.is_geographic else "false")


def _tree_xml(parent: ET.Element, group: Group) -> None:
    for child in group.children:
        if isinstance(child, Group):
            el = ET.SubElement(parent, "layer-tree-group", name=child.name, expanded="1" if child.expanded else "0",
                               checked="Qt::Checked" if child.visible else "Qt::Unchecked")
            ET.SubElement(el, "customproperties")
            _tree_xml(el, child)
        else:
            el = ET.SubElement(parent, "layer-tree-layer", id=child.id, name=child.name, source=f"./{child.source}",
                               providerKey="gdal" if child.kind == "raster" else "ogr", expanded="0",
                               checked="Qt::Checked" if child.visible else "Qt::Unchecked")
            ET.SubElement(el, "customproperties")


def _datasource(layer: Layer) -> str:
    if layer.kind == "raster":
        return f"./{layer.source}"
    stem = layer.source.rsplit("/", 1)[-1].rsplit(".", 1)[0]  # greensink.io names the table's layer after its file
    return f"./{layer.source}|layername={stem}"


def _style_children(qml: str, where: str) -> list[ET.Element]:
    """The style elements of a .qml document (renderer, pipe, blend modes) to embed in a map layer."""
    body = qml.split("\n", 1)[1] if qml.startswith("<!DOCTYPE") else qml
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise ValueError(f"{where}: style is not valid QML XML ({exc}). Rerun rule qgis_styles.") from exc
    if root.tag != "qgis":
        raise ValueError(f"{where}: style must be a QGIS .qml document with a <qgis> root. Got <{root.tag}> instead.")
    return list(root)


def _maplayer(parent: ET.Element, layer: Layer, crs: CRS, style: str) -> None:
    attrib = {"type": layer.kind, "hasScaleBasedVisibilityFlag": "0", "styleCategories": "AllStyleCategories",
              "refreshOnNotifyEnabled": "0", "autoRefreshEnabled": "0", "autoRefreshTime": "0",
              "minScale": "1e+08", "maxScale": "0"}
    if layer.kind == "vector":
        attrib |= {"geometry": "Polygon", "wkbType": "MultiPolygon", "readOnly": "0", "simplifyDrawingHints": "1",
                   "simplifyDrawingTol": "1", "simplifyLocal": "1", "simplifyMaxScale": "1", "simplifyAlgorithm": "0",
                   "labelsEnabled": "0", "symbologyReferenceScale": "-1"}
    ml = ET.SubElement(parent, "maplayer", attrib)
    _text(ml, "id", layer.id)
    _text(ml, "datasource", _datasource(layer))
    _text(ml, "layername", layer.name)
    _spatialrefsys(ET.SubElement(ml, "srs"), crs)
    if layer.kind == "vector":
        _text(ml, "provider", "ogr", encoding="UTF-8")
    else:
        _text(ml, "provider", "gdal")
    for el in _style_children(style, layer.qml):
        ml.append(el)


def project_xml(tree: Group, styles: Mapping[str, str], crs: str,
                extent: tuple[float, float, float, float], title: str = "greensink") -> str:
    """The .qgs document of ``tree``: ``styles`` maps each layer's ``qml`` path to the QML text,
    ``crs`` is the run's CRS (any form PROJ reads) and ``extent`` (xmin, ymin, xmax, ymax, in that
    CRS) the view the project opens on."""
    proj_crs = CRS.from_user_input(crs)
    all_layers = list(layers(tree))
    ids = [layer.id for layer in all_layers]
    short = [i for i in ids if len(i) <= 10]
    if short:
        raise ValueError(f"layer ids must be longer than 10 characters (QGIS replaces shorter ones). Got {short}.")
    if len(set(ids)) != len(ids):
        raise ValueError(f"layer ids must be unique. Got {sorted({i for i in ids if ids.count(i) > 1})} more than once.")
    missing = [layer.qml for layer in all_layers if layer.qml not in styles]
    if missing:
        raise ValueError(f"every layer needs its style. Missing: {', '.join(missing)}. Rerun rule qgis_styles.")

    root = ET.Element("qgis", projectname=title, version=QGIS_VERSION, saveUser="", saveUserFull="",
                      saveDateTime="")
    ET.SubElement(root, "homePath", path="")
    _text(root, "title", title)
    _spatialrefsys(ET.SubElement(root, "projectCrs"), proj_crs)

    tree_el = ET.SubElement(root, "layer-tree-group")
    ET.SubElement(tree_el, "customproperties")
    _tree_xml(tree_el, tree)
    order = ET.SubElement(tree_el, "custom-order", enabled="0")
    for layer_id in ids:
        _text(order, "item", layer_id)

    canvas = ET.SubElement(root, "mapcanvas", name="theMapCanvas", annotationsVisible="1")
    _text(canvas, "units", "degrees" if proj_crs.is_geographic else "meters")
    ext = ET.SubElement(canvas, "extent")
    for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), extent, strict=True):
        _text(ext, tag, repr(float(value)))
    _text(canvas, "rotation", "0")
    _spatialrefsys(ET.SubElement(canvas, "destinationsrs"), proj_crs)

    project_layers = ET.SubElement(root, "projectlayers")
    for layer in all_layers:
        _maplayer(project_layers, layer, proj_crs, styles[layer.qml])
    layer_order = ET.SubElement(root, "layerorder")
    for layer_id in ids:
        ET.SubElement(layer_order, "layer", id=layer_id)

    props = ET.SubElement(root, "properties")
    srs_props = ET.SubElement(props, "SpatialRefSys")
    _text(srs_props, "ProjectionsEnabled", "1", type="int")  # QGIS reads <projectCrs> only when this is set
    paths = ET.SubElement(props, "Paths")
    _text(paths, "Absolute", "false", type="bool")  # QGIS keeps the paths relative when the project is saved again
    ET.indent(root, space="  ")
    return HEADER + ET.tostring(root, encoding="unicode") + "\n"


def scenario_styles(tables: Mapping[str, Sequence[Sequence[float]]]) -> dict[str, str]:
    """The scenario zone tables' styles: ``tables`` maps each level to the ``difference_t`` columns (t C) of
    that level's tables, one per scenario. Every table of a level gets the same diverging brown-green style,
    five equal classes symmetric about 0 over ± the largest |difference| of the level in any scenario (NaN
    skipped; ± 1 t C where there is none), so the scenarios of a level compare on one scale. Returns
    level -> QML text."""
    out = {}
    for level, columns in tables.items():
        values = [abs(float(v)) for col in columns for v in col]
        top = robust_max(values, 100) if values else 1.0
        out[level] = vector_qml(SCENARIO_COLUMN, -top, top, BROWN_GREEN, "t C")
    return out


def write_scenario_styles(home: str | Path, scenarios: Sequence[ScenarioLayers], levels: Sequence[str]) -> None:
    """The .qml beside each scenario layer under ``home`` (``results/``): the zone tables' by
    :func:`scenario_styles`, the carbon raster's a copy of its baseline year's ``carbon.qml`` (rule qgis_styles),
    so a plan's map and its baseline year's share one colour scale."""
    home = Path(home)
    columns = {level: [gio.read_vector(home / f"scenarios/{s.name}/zones/{level}.gpkg")[SCENARIO_COLUMN].to_numpy()
                       for s in scenarios] for level in levels}
    styles = scenario_styles(columns)
    for s in scenarios:
        for level in levels:
            gio.write_text(home / f"scenarios/{s.name}/zones/{level}.qml", styles[level])
        baseline = (home / f"{s.baseline_year}/carbon.qml").read_text(encoding="utf-8")
        gio.write_text(home / f"scenarios/{s.name}/carbon.qml", baseline)


def run_qgis_project(grid_json: str | Path, out: str | Path, *, years: Sequence[int], pairs: Sequence[tuple[int, int]],
                     levels: Sequence[str], zoning: bool = False,
                     scenarios: Sequence[ScenarioLayers | Sequence[Any]] = ()) -> Group:
    """Rule qgis_project: the project ``out`` (results/greensink.qgs) of the :func:`run_tree` of ``years``,
    change ``pairs``, zone ``levels`` and ``scenarios`` ((name, label, baseline year) each), each layer styled by
    the .qml beside it (paths relative to ``out``'s folder, written by rule qgis_styles; the scenario layers'
    written here first, :func:`write_scenario_styles`), on the CRS and extent of the grid ``grid_json``.
    Returns the tree."""
    home = Path(out).parent
    scenarios = [s if isinstance(s, ScenarioLayers) else ScenarioLayers(str(s[0]), str(s[1]), int(s[2]))
                 for s in scenarios]
    if scenarios:
        write_scenario_styles(home, scenarios, levels)
    tree = run_tree(years, pairs, levels, zoning, scenarios)
    styles = {layer.qml: (home / layer.qml).read_text(encoding="utf-8") for layer in layers(tree)}
    grid = Grid.read(grid_json)
    gio.write_text(out, project_xml(tree, styles, grid.crs, grid.bounds))
    log.info("QGIS project %s: %d layers in %d groups, CRS %s", out, len(styles), len(tree.children), grid.crs)
    return tree
