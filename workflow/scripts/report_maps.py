"""Rule report_maps: quick-look PNG maps for Snakemake's report (snakemake --report report.zip).

Inputs: every year's carbon.tif and every pair's sink.tif, the run's grid.json, the second zone level's layer.
Outputs: results/{year}/carbon.png and results/change/{y0}_{y1}/sink.png (one colour scale per quantity).
Description: greensink.report.quicklooks.run_report_maps.
"""

from greensink.logs import setup
from greensink.report.quicklooks import run_report_maps

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, p = sm.input, sm.params
run_report_maps(carbon=inp.carbon, sinks=inp.sinks, grid=inp.grid, boundaries=inp.boundaries or None,
                out_carbon=sm.output.carbon, out_sinks=sm.output.sinks, years=p.years, pairs=p.pairs)
