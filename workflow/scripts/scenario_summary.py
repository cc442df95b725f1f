"""Rule scenario_summary: which plan meets which target where, with stock and change from the baseline.

Inputs: every scenario's zone tables and totals.csv, the baseline years' zone tables, the targets.
Outputs: results/scenarios/summary.csv (scenario × level × target indicator; docs/outputs.md).
Description: greensink.scenario.run.run_scenario_summary.
"""

from greensink.logs import setup
from greensink.scenario.run import run_scenario_summary

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, p = sm.input, sm.params
run_scenario_summary(inp.tables, inp.totals, inp.baseline_tables, inp.targets, sm.output.summary, scenarios=p.scenarios,
                     baseline_years=p.baseline_years, levels=p.levels)
