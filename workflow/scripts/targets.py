"""Rule targets: the final zone tables of one year, the aggregated indicators with each target's columns.

Inputs: results/{year}/zones/{level}.indicators.parquet (rule aggregate), the targets file (config targets).
Outputs: results/{year}/zones/{level}.gpkg, .csv and .parquet (columns in docs/outputs.md: the indicators plus
target_<indicator>, target_<indicator>_met and target_<indicator>_gap for each target of the level).
Description: greensink.targets.run_targets.
"""

from greensink.logs import setup
from greensink.targets import run_targets

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
log = setup(sm.log[0])
p = sm.params
counts = run_targets(sm.input.indicators, sm.output.gpkg, sm.input.targets, p.levels)
log.info("targets of %s evaluated: %s", sm.wildcards.year, ", ".join(f"{lvl} {n}" for lvl, n in counts.items()))
