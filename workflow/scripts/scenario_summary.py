"""Rule scenario_summary: which plan meets which target where, with stock and change from the baseline.

Inputs: every scenario's zone tables and totals.csv, the baseline years' zone tables, the targets.
Outputs: results/scenarios/summary.csv (scenario × level × target indicator; docs/outputs.md).
"""

from greensink import io, targets
from greensink.logs import setup
from greensink.scenario.tables import summary_table

log = setup(snakemake.log[0])  # noqa: F821
inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
n = len(p.levels)
entries = []
for k in range(len(p.scenarios)):
    tables = {level: io.read_vector(path) for level, path in zip(p.levels, inp.tables[k * n:(k + 1) * n], strict=True)}
    entries.append((tables, io.read_csv(inp.totals[k])))
baselines = {}
for k, year in enumerate(p.baseline_years):
    baselines[year] = {level: io.read_vector(path) for level, path in zip(p.levels, inp.baseline_tables[k * n:(k + 1) * n],
                                                                          strict=True)}
summary = summary_table(entries, baselines, targets.read_targets(inp.targets))
io.write_csv(out.summary, summary)
log.info("scenario summary: %d rows over %d scenario(s)", len(summary), len(p.scenarios))
