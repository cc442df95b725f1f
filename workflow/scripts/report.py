"""Rule report: the self-contained planner report.

Inputs: every zone table (years and changes), models, carbon and sink rasters, targets, provenance, nesting table;
the calibration benchmark's measured coverage shipped with greensink (greensink/data/calibration.json), if any.
Outputs: results/report.html (opens offline; images inline).
"""

from pathlib import Path

from greensink import io
from greensink.grid import Grid
from greensink.logs import setup
from greensink.report import load_calibration, render_report
from greensink.targets import evaluate, read_targets

log = setup(snakemake.log[0])  # noqa: F821
inp, p = snakemake.input, snakemake.params  # noqa: F821
grid = Grid.read(inp.grid)
tables = {y: {lv: io.read_vector(f"results/{y}/zones/{lv}.gpkg") for lv in p.levels} for y in p.years}
change = {(y0, y1): {lv: io.read_vector(f"results/change/{y0}_{y1}/zones/{lv}.gpkg") for lv in p.levels} for y0, y1 in p.pairs}
models = {y: io.read_json(path) for y, path in zip(p.years, inp.models, strict=True)}
targets = read_targets(inp.targets)
last = tables[p.years[-1]]
calibration = load_calibration()
html = render_report(
    years=list(p.years), tables=tables, change=change, models=models, targets=evaluate(last, targets),
    provenance=io.read_json(inp.provenance),
    carbon_maps={y: io.read_raster(path) for y, path in zip(p.years, inp.carbon, strict=True)},
    sink_maps={pair: io.read_raster(path) for pair, path in zip(p.pairs, inp.sinks, strict=True)},
    extent=grid.bounds, crs=grid.crs, levels=list(p.levels), type_names=dict(p.types), template_dir=Path(inp.template).parent,
    nesting=io.read_csv(inp.nesting), interval_pct=p.interval_pct, calibration=calibration,
)
io.write_text(snakemake.output[0], html)  # noqa: F821
log.info("report: %.0f kB, %d targets evaluated for %d; calibration benchmark %s", len(html) / 1024, len(targets),
         p.years[-1], f"of {calibration['date']} ({calibration['realisations']} realisations)" if calibration else "not shipped")
