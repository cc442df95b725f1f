"""Rule build_demo: generate the built-in demo city.

Inputs: none (offline, deterministic from demo.seed).
Outputs: imagery + scenes table, zones, green space, plots, population and the truth under demo.out_dir.
Description: greensink.demo.generate.run_build_demo.
"""

from greensink.demo import run_build_demo
from greensink.logs import setup

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
p = sm.params
run_build_demo(demo=p.demo, years=p.years, crs=p.crs, resolution_m=p.resolution, season=p.season, compress=p.compress)
