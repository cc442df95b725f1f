"""QGIS layer styles (.qml) written beside the products, so they open styled.

QGIS loads ``name.qml`` beside ``name.tif`` / ``name.gpkg`` as the layer's default style.
Carbon density uses a sequential green ramp from 0 to the 99th percentile of the run; the
yearly sink a diverging brown–green ramp symmetric about 0; zone layers are graduated on
``carbon_t_ha`` (or ``sink_t_ha_yr``) in five equal classes. The limits come from the data,
so each run's styles fit its own values. NDVI, FVC and canopy fraction have fixed 0–1 scales
(``FIXED_RASTERS``), the same in every run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from greensink import io as gio

log = logging.getLogger(__name__)

GREENS = ("#ffffe5", "#d9f0a3", "#78c679", "#238443", "#004529")
BROWN_GREEN = ("#8c510a", "#d8b365", "#f5f5f5", "#5ab4ac", "#01665e")
RED_YELLOW_GREEN = ("#d7191c", "#fdae61", "#ffffbf", "#a6d96a", "#1a9641")
DARK_GREENS = ("#f7fcf5", "#c7e9c0", "#74c476", "#238b45", "#00441b")
# rasters on a fixed physical scale (the same colours in every run and year): stem -> (min, max, colours, unit)
FIXED_RASTERS: dict[str, tuple[float, float, tuple[str, ...], str]] = {
    "ndvi": (0.0, 1.0, RED_YELLOW_GREEN, ""),  # NDVI below 0 (water, bare) is drawn in the lowest colour
    "fvc": (0.0, 1.0, GREENS, ""),  # fractional vegetation cover 0-1
    "canopy": (0.0, 1.0, DARK_GREENS, ""),  # tree-canopy fraction 0-1
}
HEADER = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"


def robust_max(values: np.ndarray, q: float = 99.0) -> float:
    """The ``q``-th percentile of the finite values (1.0 when there are none or it is not > 0)."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    top = float(np.percentile(finite, q)) if finite.size else 1.0
    return top if top > 0 else 1.0


def _stops(vmin: float, vmax: float, colours: Sequence[str]) -> list[tuple[float, str]]:
    return [(vmin + (vmax - vmin) * i / (len(colours) - 1), c) for i, c in enumerate(colours)]


def raster_qml(vmin: float, vmax: float, colours: Sequence[str] = GREENS, unit: str = "t C/ha") -> str:
    """Single-band pseudocolour style of band 1, interpolated between ``colours`` over [vmin, vmax]."""
    items = "\n".join(
        f'          <item alpha="255" value="{v:.6g}" label={quoteattr(f"{v:.3g} {unit}".strip())} color="{c}"/>'
        for v, c in _stops(vmin, vmax, colours)
    )
    return HEADER + f"""<qgis version="3.22.0" styleCategories="AllStyleCategories">
  <pipe>
    <rasterrenderer type="singlebandpseudocolor" band="1" opacity="1" alphaBand="-1" classificationMin="{vmin:.6g}" classificationMax="{vmax:.6g}" nodataColor="">
      <rasterTransparency/>
      <minMaxOrigin>
        <limits>None</limits>
        <extent>WholeRaster</extent>
        <statAccuracy>Estimated</statAccuracy>
        <cumulativeCutLower>0.02</cumulativeCutLower>
        <cumulativeCutUpper>0.98</cumulativeCutUpper>
        <stdDevFactor>2</stdDevFactor>
      </minMaxOrigin>
      <rastershader>
        <colorrampshader colorRampType="INTERPOLATED" classificationMode="1" clip="0" minimumValue="{vmin:.6g}" maximumValue="{vmax:.6g}" labelPrecision="2">
{items}
        </colorrampshader>
      </rastershader>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation saturation="0" colorizeOn="0" grayscaleMode="0" invertColors="0"/>
    <rasterresampler maxOversampling="2"/>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
"""


def _hex_rgba(colour: str) -> str:
    c = colour.lstrip("#")
    return ",".join(str(int(c[i : i + 2], 16)) for i in (0, 2, 4)) + ",255"


def vector_qml(column: str, vmin: float, vmax: float, colours: Sequence[str] = GREENS, unit: str = "t C/ha") -> str:
    """Graduated fill style on ``column`` in len(colours) equal classes over [vmin, vmax]; the first and
    last classes are open-ended so every value is drawn."""
    n = len(colours)
    edges = [vmin + (vmax - vmin) * i / n for i in range(n + 1)]
    edges[0], edges[-1] = -1e30, 1e30
    ranges, symbols = [], []
    for i, colour in enumerate(colours):
        lo = vmin + (vmax - vmin) * i / n
        hi = vmin + (vmax - vmin) * (i + 1) / n
        label = (f"< {hi:.3g}" if i == 0 else f"≥ {lo:.3g}" if i == n - 1 else f"{lo:.3g} – {hi:.3g}") + f" {unit}"
        ranges.append(f'      <range lower="{edges[i]:.6g}" upper="{edges[i + 1]:.6g}" label={quoteattr(label)} symbol="{i}" render="true"/>')
        symbols.append(f"""      <symbol type="fill" name="{i}" alpha="1" clip_to_extent="1" force_rhr="0">
        <layer class="SimpleFill" enabled="1" locked="0" pass="0">
          <Option type="Map">
            <Option name="color" type="QString" value="{_hex_rgba(colour)}"/>
            <Option name="outline_color" type="QString" value="110,110,110,255"/>
            <Option name="outline_style" type="QString" value="solid"/>
            <Option name="outline_width" type="QString" value="0.1"/>
            <Option name="outline_width_unit" type="QString" value="MM"/>
            <Option name="style" type="QString" value="solid"/>
          </Option>
        </layer>
      </symbol>""")
    return HEADER + f"""<qgis version="3.22.0" styleCategories="Symbology">
  <renderer-v2 type="graduatedSymbol" attr={quoteattr(column)} graduatedMethod="GraduatedColor" symbollevels="0" enableorderby="0" forceraster="0">
    <ranges>
{chr(10).join(ranges)}
    </ranges>
    <symbols>
{chr(10).join(symbols)}
    </symbols>
  </renderer-v2>
  <blendMode>0</blendMode>
  <featureBlendMode>0</featureBlendMode>
</qgis>
"""


def classed_raster_qml(classes: Sequence[tuple[int, str, str]], band: int = 1) -> str:
    """Paletted (unique values) style of ``band`` for a class raster: one (value, label, colour) per class;
    values not listed (the nodata value) are not drawn. Used for the zoning classes (importance.tif,
    potential.tif), the change attribution and the vegetation classes."""
    entries = "\n".join(f'        <paletteEntry value="{int(v)}" alpha="255" label={quoteattr(label)} color="{colour}"/>'
                        for v, label, colour in classes)
    return HEADER + f"""<qgis version="3.22.0" styleCategories="AllStyleCategories">
  <pipe>
    <rasterrenderer type="paletted" band="{int(band)}" opacity="1" alphaBand="-1" nodataColor="">
      <rasterTransparency/>
      <colorPalette>
{entries}
      </colorPalette>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation saturation="0" colorizeOn="0" grayscaleMode="0" invertColors="0"/>
    <rasterresampler maxOversampling="2"/>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
"""


# attribution.tif band 1 (greensink.change.ATTRIBUTION_CODES): code -> (label, colour)
ATTRIBUTION_STYLE = {
    1: ("新增绿地 gain", "#1a9641"), 2: ("绿地损失 loss", "#d7191c"), 3: ("生长 growth", "#a6d96a"),
    4: ("类型转换 conversion", "#fdae61"), 0: ("其他 other", "#f0f0f0"),
}
# transitions/classes.tif (greensink.vegetation classes): code -> (label, colour)
VEGETATION_STYLE = {
    0: ("无植被 none", "#f0f0f0"), 1: ("草地 grass", "#d9f0a3"), 2: ("灌木 shrub", "#78c679"), 3: ("乔木 tree", "#005a32"),
}
# zoning zone tables (results/{year}/zoning/{product}_{level}.gpkg): product -> column drawn, 0-100 %
ZONING_COLUMNS = {"importance": "share_pct_extremely_important", "potential": "potential_pct",
                  "canopy_gap": "canopy_cover_pct"}
LOSS = ("#fff7bc", "#fec44f", "#fe9929", "#d95f0e", "#993404")


def _zoning_product(path: str | Path) -> str:
    stem = Path(path).stem
    product = next((p for p in ZONING_COLUMNS if stem.startswith(p + "_")), None)
    if product is None:
        raise ValueError(f"{path}: not a zoning zone table style (expected <product>_<level>.qml, product one of "
                         f"{', '.join(ZONING_COLUMNS)}).")
    return product


def _classes(style: Mapping[int, tuple[str, str]]) -> list[tuple[int, str, str]]:
    return [(code, label, colour) for code, (label, colour) in style.items()]


def run_qgis_styles(carbon: Sequence[str | Path], sinks: Sequence[str | Path], tables: Sequence[str | Path],
                    change: Sequence[str | Path], out: Mapping[str, Sequence[str | Path]], *,
                    trend: Sequence[str | Path] = (), trend_tables: Sequence[str | Path] = (),
                    lost_patches: Sequence[str | Path] = (), n_years: int = 1) -> dict[str, float]:
    """Rule qgis_styles: a .qml beside every layer, with one colour scale per quantity for all years.

    ``carbon`` the years' carbon rasters, ``sinks`` the change pairs' sink rasters, ``tables`` the zone
    tables and ``change`` the change zone tables; ``out`` maps each of those four names to the .qml paths to
    write (any number; each gets the scale of its quantity: 0 to the :func:`robust_max` of band 1 over all
    files, ± that of the sinks, and of ``carbon_t_ha`` / ``sink_t_ha_yr`` in the tables), and ``fixed`` to
    .qml paths whose stem names a raster of :data:`FIXED_RASTERS`. Optional: ``trend`` (the trend raster,
    diverging ± the robust max of |band 1|) and ``trend_tables`` (``trend_t_ha_yr``, ± likewise),
    ``lost_patches`` (``carbon_lost_t``, 0 to its max), each styled at out[name]; out["attribution"] and
    out["classes"] get classed styles (:data:`ATTRIBUTION_STYLE`; :data:`VEGETATION_STYLE` of the last of
    ``n_years`` bands, the newest year) and out["zoning_tables"] the 0-100 % column of :data:`ZONING_COLUMNS`.
    Returns the scale limits: ``carbon_max``, ``sink_max``, ``zone_max``, ``change_max``, ``trend_max``,
    ``trend_zone_max`` and ``lost_max`` (1.0 where there is nothing to scale)."""
    carbon_max = max(robust_max(gio.read_raster(path, bands=1)) for path in carbon)
    for path in out["carbon"]:
        gio.write_text(path, raster_qml(0.0, carbon_max, GREENS, "t C/ha"))
    sink_max = max((robust_max(abs(gio.read_raster(path, bands=1))) for path in sinks), default=1.0)
    for path in out["sinks"]:
        gio.write_text(path, raster_qml(-sink_max, sink_max, BROWN_GREEN, "t C/ha/yr"))
    zone_max = max(robust_max(gio.read_vector(path)["carbon_t_ha"].to_numpy(), 100) for path in tables)
    for path in out["tables"]:
        gio.write_text(path, vector_qml("carbon_t_ha", 0.0, zone_max, GREENS, "t C/ha"))
    change_max = max((robust_max(abs(gio.read_vector(path)["sink_t_ha_yr"].to_numpy()), 100) for path in change),
                     default=1.0)
    for path in out["change"]:
        gio.write_text(path, vector_qml("sink_t_ha_yr", -change_max, change_max, BROWN_GREEN, "t C/ha/yr"))
    for path in out.get("fixed", []):
        gio.write_text(path, raster_qml(*FIXED_RASTERS[Path(path).stem]))
    trend_max = max((robust_max(abs(gio.read_raster(path, bands=1))) for path in trend), default=1.0)
    for path in out.get("trend", []):
        gio.write_text(path, raster_qml(-trend_max, trend_max, BROWN_GREEN, "t C/ha/yr"))
    trend_zone_max = max((robust_max(abs(gio.read_vector(path)["trend_t_ha_yr"].to_numpy()), 100)
                          for path in trend_tables), default=1.0)
    for path in out.get("trend_tables", []):
        gio.write_text(path, vector_qml("trend_t_ha_yr", -trend_zone_max, trend_zone_max, BROWN_GREEN, "t C/ha/yr"))
    lost_max = max((robust_max(gio.read_vector(path)["carbon_lost_t"].to_numpy(), 100) for path in lost_patches),
                   default=1.0)
    for path in out.get("lost_patches", []):
        gio.write_text(path, vector_qml("carbon_lost_t", 0.0, lost_max, LOSS, "t C"))
    for path in out.get("attribution", []):
        gio.write_text(path, classed_raster_qml(_classes(ATTRIBUTION_STYLE)))
    for path in out.get("classes", []):
        gio.write_text(path, classed_raster_qml(_classes(VEGETATION_STYLE), band=max(int(n_years), 1)))
    for path in out.get("zoning_tables", []):
        gio.write_text(path, vector_qml(ZONING_COLUMNS[_zoning_product(path)], 0.0, 100.0, GREENS, "%"))
    log.info("QGIS styles: carbon 0-%.1f t C/ha, sink ±%.2f t C/ha/yr, zones 0-%.1f t C/ha", carbon_max, sink_max,
             zone_max)
    return {"carbon_max": carbon_max, "sink_max": sink_max, "zone_max": zone_max, "change_max": change_max,
            "trend_max": trend_max, "trend_zone_max": trend_zone_max, "lost_max": lost_max}
