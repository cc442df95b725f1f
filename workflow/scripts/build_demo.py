"""Rule build_demo: generate the built-in demo city.

Inputs: none (offline, deterministic from demo.seed).
Outputs: imagery + scenes table, zones, green space, plots, population and the truth under demo.out_dir.
"""

from greensink.demo import generate_demo
from greensink.logs import setup

log = setup(snakemake.log[0])  # noqa: F821
p = snakemake.params  # noqa: F821
d = p.demo
manifest = generate_demo(
    d["out_dir"], years=p.years, crs=p.crs, resolution_m=p.resolution, season=(p.season["start"], p.season["end"]),
    seed=d["seed"], extent_m=d["extent_m"], blocks=tuple(d["blocks"]), parcels_per_block=tuple(d["parcels_per_block"]),
    scenes_per_year=d["scenes_per_year"], compress=p.compress, truth_cell_m=d["truth_cell_m"],
    plot_radius_m=d["plot_radius_m"], progress=log.info,
)
log.info("demo city written to %s: %s", d["out_dir"], manifest.get("counts"))
