"""Report rendering: the context of the whole report and its Jinja2 rendering.

Every text that comes from input data (zone names and ids, model reasons, paths) goes through
Jinja2 autoescaping; nothing here marks input text as safe. The template ``report.html.j2`` is
package data (``greensink/data/``, read with importlib.resources) unless a folder is given.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import jinja2
import numpy as np
import pandas as pd

from greensink.package_data import read_text
from greensink.report.calibration import calibration_label
from greensink.report.maps import (
    bilingual,
    choropleth,
    cjk_font,
    downsample,
    raster_map,
    target_status_map,
    upper_limit,
    zone_labels,
)
from greensink.report.scenarios import ScenarioProducts, scenario_section
from greensink.report.series import SeriesProducts, series_section
from greensink.report.sinks import (
    MAX_LOSSES,
    PARTLY_MARK,
    SINK_VERDICTS,
    class_counts_text,
    no_net_carbon_loss_of,
    partly_observed_count,
    partly_observed_of,
    seen_both_text,
    sink_class_list,
    sink_class_of,
)
from greensink.report.tables import (
    MAX_ROWS,
    change_row,
    flag_rows,
    level_table,
    losses_section,
    model_section,
    nesting_rows,
    seen_both_headers,
    target_tables,
    type_table,
    zone_row,
    zone_target_status,
)
from greensink.report.text import (
    DASH,
    INTERVAL_PCT,
    LEVEL_NAMES_ZH,
    auto_decimals,
    column,
    format_interval,
    format_number,
    interval_label,
    level_label,
    text_or_dash,
    tiers_summary,
    to_float,
    zone_headers,
)
from greensink.report.uncertainty import uncertainty_section
from greensink.report.webmap import webmap_section
from greensink.report.zoning import ZoningProducts, zoning_section
from greensink.units import CO2_PER_C

TEMPLATE_NAME = "report.html.j2"


def summary_section(years: Sequence[int], tables: Mapping[int, Mapping[str, pd.DataFrame]],
                    change: Mapping[tuple[int, int], Mapping[str, pd.DataFrame]], city: str,
                    levels: Sequence[str] = ()) -> dict[str, Any]:
    stocks = []
    for year in years:
        df = tables.get(year, {}).get(city)
        if df is None:
            continue
        for key, r in df.iterrows():
            c = to_float(r.get("carbon_t"))
            dec = auto_decimals(c) if math.isfinite(c) else None
            co2 = to_float(r.get("co2e_t"))
            dec2 = auto_decimals(co2) if math.isfinite(co2) else None
            stocks.append({
                "year": year, "name": text_or_dash(r.get("name")),
                "carbon": format_number(c), "carbon_iv": format_interval(r.get("carbon_t_lo"), r.get("carbon_t_hi"), dec),
                "co2e": format_number(co2), "co2e_iv": format_interval(r.get("co2e_t_lo"), r.get("co2e_t_hi"), dec2),
                "density": format_number(r.get("carbon_t_ha"), 2),
                "tier": tiers_summary([df.loc[[key]]]),
                "filled": format_number(r.get("carbon_t_filled")),
                "observed": format_number(r.get("carbon_observed_pct"), 1),
                "coverage": format_number(r.get("green_coverage_pct"), 1),
                "ratio": format_number(r.get("green_space_ratio_pct"), 1),
                "canopy": format_number(r.get("canopy_cover_pct"), 1),
                "per_capita": format_number(r.get("park_area_per_capita_m2"), 1),
            })
    sinks = []
    for (y0, y1) in sorted(change):
        df = change[(y0, y1)].get(city)
        if df is None:
            continue
        for _, r in df.iterrows():
            s, lo, hi = to_float(r.get("sink_t_yr")), to_float(r.get("sink_t_yr_lo")), to_float(r.get("sink_t_yr_hi"))
            dec = auto_decimals(s) if math.isfinite(s) else None
            verdict = SINK_VERDICTS[sink_class_of(r)]
            sinks.append({
                "pair": f"{y0}–{y1}", "name": text_or_dash(r.get("name")),
                "sink": format_number(s, dec, sign=True), "sink_iv": format_interval(lo, hi, dec),
                "co2e": format_number(s * CO2_PER_C, sign=True),
                "co2e_iv": format_interval(lo * CO2_PER_C, hi * CO2_PER_C,
                                           auto_decimals(s * CO2_PER_C) if math.isfinite(s) else None),
                "density": format_number(r.get("sink_t_ha_yr"), 2, sign=True),
                "conservative": format_number(r.get("sink_t_yr_conservative", lo), dec, sign=True),
                "u_pct": format_number(r.get("sink_u_pct"), 1),
                "verdict": verdict,
                **seen_both_summary(r),
            })
    checks = []  # per pair and level: sink classes and the no-net-carbon-loss check from the significance
    for (y0, y1) in sorted(change):
        for level in levels:
            df = change[(y0, y1)].get(level)
            if df is None or not len(df):
                continue
            ok = [no_net_carbon_loss_of(r) for r in df.to_dict("records")]
            known = [v for v in ok if v is not None]
            checks.append({"pair": f"{y0}–{y1}", "level": level_label(level),
                           "classes": class_counts_text({c: n for c, n in
                                                         pd.Series(sink_class_list(df)).value_counts().items()}),
                           "met": f"{sum(known):,}", "known": f"{len(known):,}", "missed": f"{len(known) - sum(known):,}"})
    return {"stocks": stocks, "sinks": sinks, "checks": checks}


def seen_both_summary(r: pd.Series) -> dict[str, Any]:
    """The summary's words on a sink that includes filled land: ``partly`` (False where the zone was seen
    whole in both years or nothing is known), the share seen in both years and the sink of that land alone."""
    if not partly_observed_of(r):
        return {"partly": False}
    obs = to_float(r.get("sink_observed_t_yr"))
    dec = auto_decimals(obs) if math.isfinite(obs) else None
    return {"partly": True, "mark": PARTLY_MARK, "seen": seen_both_text(r.get("observed_both_pct")),
            "observed": format_number(obs, dec, sign=True),
            "observed_iv": format_interval(r.get("sink_observed_t_yr_lo"), r.get("sink_observed_t_yr_hi"), dec)}


def partly_note(df: pd.DataFrame) -> dict[str, Any] | None:
    """The change section's count of a level's zones whose sink includes filled land, None where the table
    does not say (written before ``sink_partly_observed`` and ``observed_both_pct`` existed)."""
    if not {"sink_partly_observed", "observed_both_pct"} & set(df.columns):
        return None
    return {"n": f"{partly_observed_count(df):,}", "zones": f"{len(df):,}", "mark": PARTLY_MARK}


def provenance_section(provenance: Mapping[str, Any]) -> dict[str, Any]:
    prov = dict(provenance or {})
    packages = prov.pop("packages", None) or {}
    inputs = prov.pop("inputs", None) or []
    items = []
    for key, label in (("greensink_version", "greensink 版本 version"), ("config_sha256", "配置 config SHA-256")):
        if key in prov:
            items.append({"key": label, "value": text_or_dash(prov.pop(key))})
    for key in sorted(prov):
        value = prov[key]
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
        items.append({"key": str(key), "value": text if len(text) <= 400 else text[:400] + " …"})
    files = []
    for entry in inputs:
        if isinstance(entry, Mapping):
            files.append({"path": text_or_dash(entry.get("path")), "sha256": text_or_dash(entry.get("sha256"))})
        else:
            files.append({"path": text_or_dash(entry), "sha256": DASH})
    pkgs = [{"name": str(k), "version": text_or_dash(v)} for k, v in sorted(packages.items())] \
        if isinstance(packages, Mapping) else []
    return {"entries": items, "packages": pkgs, "inputs": files}


def render_report(
    *,
    years: list[int],
    tables: dict[int, dict[str, gpd.GeoDataFrame]],
    change: dict[tuple[int, int], dict[str, gpd.GeoDataFrame]],
    models: dict[int, dict],
    targets: pd.DataFrame,
    provenance: dict,
    carbon_maps: dict[int, np.ndarray],
    sink_maps: dict[tuple[int, int], np.ndarray],
    extent: tuple[float, float, float, float],
    crs: str,
    levels: list[str],
    type_names: dict[str, str],
    template_dir: str | Path | None = None,
    nesting: pd.DataFrame | None = None,
    interval_pct: float = INTERVAL_PCT,
    calibration: Mapping[str, Any] | None = None,
    series: SeriesProducts | None = None,
    zoning: ZoningProducts | None = None,
    scenarios: ScenarioProducts | None = None,
) -> str:
    """The whole self-contained HTML report as a string (no external resources: images are inline base64 PNG,
    CSS inline, no JS from the network).

    ``tables[year][level]`` zone tables and ``change[(y0, y1)][level]`` change tables as written by
    :mod:`greensink.aggregate` and :mod:`greensink.change`; ``models[year]`` the dict of
    :func:`greensink.model.fit_models`; ``targets`` the frame of :func:`greensink.targets.evaluate`
    (evaluated on the latest year unless it has a ``year`` column); ``carbon_maps[year]`` (3, rows, cols)
    t C/ha (estimate, lower, upper) and ``sink_maps[(y0, y1)]`` the same in t C/ha/yr, both on ``extent``
    (xmin, ymin, xmax, ymax) in metres of ``crs``; ``levels`` coarsest first; ``type_names`` code -> label.
    ``interval_pct`` is the width of the bootstrap intervals of the tables and rasters (config
    carbon.interval_pct), used in every interval label. ``calibration`` is the calibration benchmark's
    measured coverage (:func:`load_calibration`, :func:`read_calibration`): a level whose coverage is far from
    nominal gets its intervals labelled; None (the default) says nothing about calibration.
    The template ``report.html.j2`` is read from ``template_dir`` if given (a checkout's ``reports/``), else
    from the package data (:func:`template_environment`); nothing is written.
    ``series`` the trend, transition, lost-patch and attribution products (:func:`greensink.report.series.read_series`):
    with two or more years the report has a time-series section (stock over time from ``tables`` in any case, each
    other part where its products are given). ``zoning`` the last year's zoning products
    (:func:`greensink.report.zoning.read_zoning`), None when zoning is off: no zoning section. ``scenarios`` the
    scenario products (:func:`greensink.report.scenarios.read_scenarios`), None without scenarios: no scenario
    comparison section."""
    interval = interval_label(interval_pct)
    years = sorted(int(y) for y in years)
    extent = tuple(float(v) for v in extent)  # type: ignore[assignment]
    levels = list(levels)
    city = levels[0] if levels else "city"
    outline_level = levels[1] if len(levels) > 1 else city
    pairs = sorted(change)

    # maps: one colour scale per quantity, shared by all years
    shown = {y: downsample(np.asarray(carbon_maps[y])[0], extent) for y in years if y in carbon_maps}
    density_max = upper_limit((band for band, _ in shown.values()), 99)
    year_sections = []
    for year in years:
        level_tables = tables.get(year, {})
        maps = []
        if year in shown:
            maps.append({
                "src": raster_map(*shown[year], extent, level_tables.get(outline_level),
                                  title=bilingual(f"{year} 年碳密度", f"Carbon density {year}"), label="t C/ha",
                                  cmap="YlGn", vmin=0.0, vmax=density_max, extend="max",
                                  labels=zone_labels(level_tables.get(outline_level))),
                "caption": f"{year} 年碳密度（像元）Carbon density per pixel, {year}, t C/ha ({crs}); grey lines: "
                           f"{level_label(outline_level)} boundaries; grey fill: no clear observation 无有效观测.",
            })
        for level in levels:
            df = level_tables.get(level)
            if df is None or len(df) < 2:
                continue
            vmax = upper_limit((column(tables[y][level], "carbon_t_ha") for y in years if level in tables.get(y, {})), 100)
            maps.append({
                "src": choropleth(df, "carbon_t_ha", extent,
                                  title=bilingual(f"{year} 年{LEVEL_NAMES_ZH.get(level, level)}碳密度",
                                                  f"Carbon density by {level}, {year}"),
                                  label="t C/ha", vmax=vmax, labels=zone_labels(df)),
                "caption": f"{year} 年{LEVEL_NAMES_ZH.get(level, level)}碳密度 Mean carbon density per {level} "
                           f"(t C per ha of zone area); hatched: no data 无数据.",
            })
        zone_tables = []
        for level in levels:
            df = level_tables.get(level)
            if df is None:
                continue
            files = [f"results/{year}/zones/{level}.gpkg", f"results/{year}/zones/{level}.csv"]
            zone_tables.append({"level": level_label(level), "table": level_table(
                f"zones-{year}-{level}", zone_headers(interval_pct), df, zone_row, "carbon_t_ha", files,
                ("碳密度", "carbon density (t C/ha)")), "calibration": calibration_label(calibration, level, "stock")})
        city_df = level_tables.get(city)
        year_sections.append({
            "year": year, "maps": maps, "tables": zone_tables,
            "types": type_table(year, city_df, type_names) if city_df is not None else None,
        })

    shown_sink = {p: downsample(np.asarray(sink_maps[p])[0], extent) for p in pairs if p in sink_maps}
    sink_max = upper_limit((np.abs(band) for band, _ in shown_sink.values()), 98)
    change_headers = ["名称 Name", "编号 Zone ID", "面积 Area (ha)", "期初碳储量 Carbon start (t C)",
                      "期末碳储量 Carbon end (t C)", "年碳汇 Sink (t C/yr)", f"{interval} 区间 interval (t C/yr)",
                      "类别 Class", *seen_both_headers(interval), "不确定度 U (%)", "保守下限 Conservative (t C/yr)",
                      "单位面积 Sink (t C/ha/yr)", "CO₂e (t/yr)", "无碳净损失 No net carbon loss",
                      "绿量变化（两年均看清的土地）Green-area change over land seen both years (ha)",
                      "绿量无净损失 No net loss of green area"]
    change_sections = []
    for y0, y1 in pairs:
        maps = []
        if (y0, y1) in shown_sink:
            maps.append({
                "src": raster_map(*shown_sink[(y0, y1)], extent,
                                  tables.get(y1, {}).get(outline_level),
                                  title=bilingual(f"{y0}–{y1} 年均碳汇", f"Yearly sink {y0}-{y1}"),
                                  label="t C/ha/yr", cmap="BrBG", vmin=-sink_max, vmax=sink_max, extend="both",
                                  labels=zone_labels(tables.get(y1, {}).get(outline_level))),
                "caption": f"{y0}–{y1} 年均碳汇 Yearly net sink per pixel, t C/ha/yr: green = carbon taken up 吸收, "
                           f"brown = carbon lost 损失, white ≈ no change; grey fill: no data.",
            })
        level_tables = []
        for level in levels:
            df = change[(y0, y1)].get(level)
            if df is None:
                continue
            files = [f"results/change/{y0}_{y1}/zones/{level}.gpkg", f"results/change/{y0}_{y1}/zones/{level}.csv"]
            level_tables.append({"level": level_label(level), "table": level_table(
                f"change-{y0}-{y1}-{level}", change_headers, df, change_row, "sink_t_ha_yr", files,
                ("单位面积年碳汇", "sink per hectare (t C/ha/yr)")),
                "losses": losses_section(f"losses-{y0}-{y1}-{level}", df, interval),
                "partly": partly_note(df),
                "calibration": calibration_label(calibration, level, "sink")})
        change_sections.append({"pair": f"{y0}–{y1}", "y0": y0, "y1": y1, "maps": maps, "tables": level_tables})

    series_context = series_section(series, years=years, tables=tables, change=change, levels=levels,
                                    interval=interval, extent=extent, crs=str(crs), sink_max=sink_max,
                                    outline_level=outline_level)
    zoning_context = zoning_section(zoning, levels=levels, extent=extent, crs=str(crs), outline_level=outline_level,
                                    boundaries=tables.get(zoning.year, tables.get(years[-1], {})).get(outline_level)
                                    if zoning is not None else None)

    last = years[-1] if years else None
    target_year = last
    if targets is not None and len(targets) and "year" in targets.columns:
        target_year = int(max(targets["year"]))
    target_maps = []
    for level in levels:
        df = tables.get(target_year, {}).get(level)
        if df is None or len(df) < 2 or targets is None or not len(targets) or "level" not in targets.columns \
                or not (targets["level"].astype(str) == level).any():
            continue
        status = zone_target_status(targets, level, df["zone_id"].tolist())
        target_maps.append({
            "src": target_status_map(df, status, extent, labels=zone_labels(df),
                                     title=bilingual(f"{target_year} 年{LEVEL_NAMES_ZH.get(level, level)}目标达成",
                                                     f"Targets by {level}, {target_year}")),
            "caption": f"{target_year} 年{LEVEL_NAMES_ZH.get(level, level)}目标达成：绿 = 全部达标，红 = 至少一项未达标，"
                       f"灰 = 无数据（不是未达标），白 = 无目标。Targets per {level}, {target_year}: green = every target "
                       f"met, red = at least one missed, grey = no data (neither met nor missed), white = no target.",
        })
    webmap = webmap_section(tables.get(last, {}), np.asarray(carbon_maps[last])[0] if last in carbon_maps else None,
                            extent, levels, year=last, targets=targets, density_max=density_max,
                            interval=interval) if last is not None else None

    context = {
        "webmap": webmap,
        "target_maps": target_maps,
        "figure_text_zh": cjk_font() is not None,
        "years": years,
        "years_text": ", ".join(str(y) for y in years),
        "crs": str(crs),
        "levels": [level_label(level) for level in levels],
        "interval": interval,
        "summary": summary_section(years, tables, change, city, levels),
        "uncertainty": uncertainty_section(years, tables, change, models, levels, type_names, calibration),
        "max_losses": MAX_LOSSES,
        "year_sections": year_sections,
        "change_sections": change_sections,
        "targets": target_tables(targets, levels, years),
        "models": [model_section(y, models[y], type_names) for y in years if y in models],
        "residual_bootstrap": any((models[y] or {}).get("bootstrap") == "residuals" for y in years if y in models),
        "flags": flag_rows(years, tables, levels),
        "nesting": nesting_rows(nesting),
        "provenance": provenance_section(provenance),
        "version": text_or_dash((provenance or {}).get("greensink_version", "")),
        "type_names": [{"code": str(k), "name": str(v)} for k, v in type_names.items()],
        "max_rows": MAX_ROWS,
        "series": series_context,
        "zoning": zoning_context,
        "scenarios": scenario_section(scenarios, levels=levels, interval=interval),
    }
    return template_environment(template_dir).get_template(TEMPLATE_NAME).render(**context)


def template_environment(template_dir: str | Path | None = None) -> jinja2.Environment:
    """The Jinja2 environment of the report: templates from ``template_dir``, or from greensink's package data
    (``greensink/data/report.html.j2``, through importlib.resources) when None; autoescaping on for every
    template and string, undefined names an error."""
    if template_dir is None:
        loader: jinja2.BaseLoader = jinja2.FunctionLoader(read_text)
    else:
        loader = jinja2.FileSystemLoader(str(template_dir))
    return jinja2.Environment(
        loader=loader,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "htm", "xml", "j2"), default_for_string=True,
                                            default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
