"""Report: the planner's self-contained HTML report, Chinese and English side by side.

:func:`render_report` turns the products of a run (zone tables per year and level, change
tables per pair of years, the target evaluation, the fitted carbon models and the provenance)
into one HTML string. CSS is inline, every figure is an inline base64 PNG, the only script is the
interactive map's own (inline SVG, no library) and there is no network resource, so
``results/report.html`` opens offline, reads on a phone and prints on A4 (a print stylesheet).

The modules, each importing only those listed before it:

* :mod:`~greensink.report.text`: numbers, labels and bilingual sentences as shown; table cells;
* :mod:`~greensink.report.maps`: raster maps and zone choropleths as inline PNG;
* :mod:`~greensink.report.sinks`: the sink class of a change-table row and how it reads;
* :mod:`~greensink.report.tables`: the rows of every table (zones, sinks, losses, types, targets, models);
* :mod:`~greensink.report.calibration`: the calibration benchmark's coverage and its labels;
* :mod:`~greensink.report.uncertainty`: the uncertainty section;
* :mod:`~greensink.report.webmap`: the interactive map (zones of every level as SVG paths over the carbon map,
  each zone's values as the tables show them);
* :mod:`~greensink.report.charts`: stock over the years and the attribution of a change as inline PNG charts;
* :mod:`~greensink.report.series`: the time-series section (stock over time, trend, attribution, no net loss
  of carbon-sink space, land transitions) and its products (:func:`read_series`);
* :mod:`~greensink.report.zoning`: the zoning section (importance classes, potential space, canopy gap) and
  its products (:func:`read_zoning`);
* :mod:`~greensink.report.render`: the whole report's context and the Jinja2 rendering (template from
  the package data);
* :mod:`~greensink.report.run`: rule report: the run's products read, the targets evaluated
  (:mod:`greensink.targets`), the report rendered and written (:func:`run_report`).
"""

from greensink.report.calibration import calibration_label, load_calibration, read_calibration
from greensink.report.maps import downsample
from greensink.report.render import TEMPLATE_NAME, render_report
from greensink.report.run import run_report
from greensink.report.sinks import class_counts_text, largest_losses, no_net_carbon_loss_of, sink_class_of
from greensink.report.tables import MAX_ROWS, SHOW_EACH_END, model_section, zone_row
from greensink.report.text import (
    DASH,
    INTERVAL_PCT,
    ZONE_HEADERS,
    format_interval,
    format_number,
    formula,
    interval_label,
    plot_carbon_text,
    predictor_label,
    rivals_text,
    tiers_summary,
    type_predictors,
    zone_headers,
)
from greensink.report.uncertainty import dominant_source_text, u_pct_summary, variance_breakdown

__all__ = ["DASH", "INTERVAL_PCT", "MAX_ROWS", "SHOW_EACH_END", "TEMPLATE_NAME", "ZONE_HEADERS", "calibration_label",
           "class_counts_text", "dominant_source_text", "downsample", "format_interval", "format_number", "formula",
           "interval_label", "largest_losses", "load_calibration", "model_section", "no_net_carbon_loss_of",
           "plot_carbon_text", "predictor_label", "read_calibration", "render_report", "rivals_text", "run_report", "sink_class_of",
           "tiers_summary", "type_predictors", "u_pct_summary", "variance_breakdown", "zone_headers", "zone_row"]
