"""Rule report: the self-contained planner report.

Inputs: every zone table (years and changes), models, carbon and sink rasters, targets, provenance, nesting table;
the trend, transition, lost-patch and attribution products, and the last year's zoning products (when made);
the scenario summary and zone tables (when scenarios are configured);
the calibration benchmark's measured coverage shipped with greensink (greensink/data/calibration.json), if any.
Outputs: results/report.html (opens offline; images inline).
Description: greensink.report.run_report.
"""

from greensink.logs import setup
from greensink.report import run_report

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, p = sm.input, sm.params
run_report(sm.output[0], tables=inp.tables, change=inp.change, models=inp.models, carbon=inp.carbon, sinks=inp.sinks,
           provenance=inp.provenance, grid=inp.grid, nesting=inp.nesting, targets=inp.targets, template=inp.template,
           years=p.years, pairs=p.pairs, levels=p.levels, type_names=p.types, interval_pct=p.interval_pct,
           trend=inp.trend, transitions=inp.transitions, lost_patches=inp.lost_patches, attribution=inp.attribution,
           zoning=inp.zoning, scenarios=inp.scenarios)
