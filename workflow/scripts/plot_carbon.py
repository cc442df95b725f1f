"""Rule plot_carbon: plot carbon density (t C/ha) per plot and year from a tree inventory, with draws.

Inputs: the tree inventory (plots.trees.path, CSV), the plots file (plots.path: id, type, year,
        location, and an area column or plots.radius_m), the allometry parameter table.
Outputs: results/plots/plot_carbon.csv (one row per plot and year: n_trees, carbon_t_ha, its sd and
         5-95 % range over the draws, status trees / empty / not_measured), plot_carbon_draws.csv
         (plot_id, year, d0000 .. : model.n_bootstrap draws of t C/ha, paired across years),
         trees.csv (per-tree carbon), plots.gpkg (the measured plots with their carbon, read by rule
         model) and plot_carbon.json (settings and counts, copied into models.json).
Description: greensink.inventory.run_plot_carbon, greensink.inventory.plot_carbon (allometric and measurement
errors per tree, docs/allometry.md).
"""

from greensink.inventory import run_plot_carbon
from greensink.logs import setup

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, p = sm.input, sm.params
run_plot_carbon(inp.trees, inp.plots, inp.params, dict(sm.output.items()), plots_cfg=p.plots, n_draws=p.n_draws,
                seed=p.seed)
