"""Rule plot_carbon: plot carbon density (t C/ha) per plot and year from a tree inventory, with draws.

Inputs: the tree inventory (plots.trees.path, CSV), the plots file (plots.path: id, type, year,
        location, and an area column or plots.radius_m), the allometry parameter table.
Outputs: results/plots/plot_carbon.csv (one row per plot and year: n_trees, carbon_t_ha, its sd and
         5-95 % range over the draws, status trees / empty / not_measured), plot_carbon_draws.csv
         (plot_id, year, d0000 .. : model.n_bootstrap draws of t C/ha, paired across years),
         trees.csv (per-tree carbon), plots.gpkg (the measured plots with their carbon, read by rule
         model) and plot_carbon.json (settings and counts, copied into models.json).
Description: greensink.inventory.plot_carbon (allometric and measurement errors per tree, docs/allometry.md).
"""

from greensink import io
from greensink.allometry import params_from_mapping
from greensink.config import read_yaml
from greensink.inventory import plot_carbon
from greensink.logs import setup

log = setup(snakemake.log[0])  # noqa: F821
inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
trees_path, plots_path, params_path = inp.trees[0], inp.plots[0], inp.params[0]  # input functions give lists
params = params_from_mapping(read_yaml(params_path, "Start from config/allometry.yaml"), where=params_path)
result = plot_carbon(io.read_csv_as_text(trees_path), io.read_vector(plots_path), p.plots, params,
                     n_draws=p.n_draws, seed=p.seed, where=trees_path, plots_where=plots_path)
io.write_csv(out.table, result.table)
io.write_csv(out.draws, result.draws_frame())
io.write_csv(out.trees, result.trees)
io.write_table(out.plots, result.plots, csv=False)
io.write_json(out.record, result.record)
log.info("%d trees -> %d plot-years with carbon (%d recorded empty, %d not measured), %d draws each",
         result.record["n_trees"], result.record["n_measured"], result.record["n_empty"], result.record["n_not_measured"],
         p.n_draws)
