"""Rule report: a finished run's products read, the targets evaluated, the report rendered and written."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from greensink import io as gio
from greensink.grid import Grid
from greensink.report.calibration import load_calibration
from greensink.report.render import render_report
from greensink.report.scenarios import read_scenarios
from greensink.report.series import read_series
from greensink.report.zoning import read_zoning
from greensink.targets import evaluate, read_targets

log = logging.getLogger(__name__)


def _by(keys: Sequence, levels: Sequence[str], paths: Sequence[str | Path], what: str) -> dict:
    """``paths`` listed key-major, level-minor (as the rule lists them) → {key: {level: table}}."""
    paths = list(paths)
    if len(paths) != len(keys) * len(levels):
        raise ValueError(f"{what}: expected {len(keys)} × {len(levels)} zone tables (each of {list(keys)} at each level "
                         f"of {list(levels)}, in that order). Got {len(paths)}.")
    it = iter(paths)
    return {k: {lv: gio.read_vector(next(it)) for lv in levels} for k in keys}


def run_report(out: str | Path, *, tables: Sequence[str | Path], change: Sequence[str | Path],
               models: Sequence[str | Path], carbon: Sequence[str | Path], sinks: Sequence[str | Path],
               provenance: str | Path, grid: str | Path, nesting: str | Path, targets: str | Path,
               template: str | Path, years: Sequence[int], pairs: Sequence[tuple[int, int]], levels: Sequence[str],
               type_names: Mapping[str, str], interval_pct: float = 90.0, trend: Sequence[str | Path] = (),
               transitions: Sequence[str | Path] = (), lost_patches: Sequence[str | Path] = (),
               attribution: Sequence[str | Path] = (), zoning: Sequence[str | Path] = (),
               scenarios: Sequence[str | Path] = ()) -> str:
    """Write the report of a run to ``out`` (results/report.html) and return its HTML (:func:`render_report`).

    ``tables`` the zone tables of every year of ``years`` at every level of ``levels`` (year-major, as
    rule report lists them), ``change`` those of every change pair of ``pairs`` (pair-major); ``models``,
    ``carbon`` one models.json and carbon raster per year, ``sinks`` one sink raster per pair; ``grid`` the
    run's grid.json, ``nesting`` its nesting table, ``provenance`` provenance.json, ``targets`` the targets
    file (evaluated on the last year's tables; a missing file means no targets), ``template`` the report
    template. The calibration benchmark's measured coverage shipped with greensink labels the intervals.
    ``trend``, ``transitions``, ``lost_patches``, ``attribution``: the time-series products the report shows
    (:func:`greensink.report.series.read_series`, each file known by its name); ``zoning`` the last year's
    zoning products (:func:`greensink.report.zoning.read_zoning`); ``scenarios`` results/scenarios/summary.csv and
    the scenarios' zone tables (:func:`greensink.report.scenarios.read_scenarios`); empty: that part is left out."""
    years, pairs, levels = list(years), [tuple(p) for p in pairs], list(levels)
    run_grid = Grid.read(grid)
    zone_tables = _by(years, levels, tables, "tables")
    change_tables = _by(pairs, levels, change, "change")
    target_list = read_targets(targets)
    calibration = load_calibration()
    html = render_report(
        years=years, tables=zone_tables, change=change_tables,
        models={y: gio.read_json(path) for y, path in zip(years, models, strict=True)},
        targets=evaluate(zone_tables[years[-1]], target_list), provenance=gio.read_json(provenance),
        carbon_maps={y: gio.read_raster(path) for y, path in zip(years, carbon, strict=True)},
        sink_maps={pair: gio.read_raster(path) for pair, path in zip(pairs, sinks, strict=True)},
        extent=run_grid.bounds, crs=run_grid.crs, levels=levels, type_names=dict(type_names),
        template_dir=Path(template).parent, nesting=gio.read_csv(nesting), interval_pct=interval_pct,
        calibration=calibration,
        series=read_series(trend=trend, transitions=transitions, lost_patches=lost_patches, attribution=attribution,
                           first_level=levels[0] if levels else None),
        zoning=read_zoning(zoning),
        scenarios=read_scenarios(scenarios),
    )
    gio.write_text(out, html)
    log.info("report: %.0f kB, %d targets evaluated for %d; calibration benchmark %s", len(html) / 1024,
             len(target_list), years[-1],
             f"of {calibration['date']} ({calibration['realisations']} realisations)" if calibration else "not shipped")
    return html
