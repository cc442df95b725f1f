"""Rule zone_coverage: exact fraction of each pixel covered by each zone of one level.

Inputs: results/zones/{level}.gpkg, results/zones/grid.json.
Outputs: results/zones/{level}_coverage.npz, a sparse (zones x pixels) matrix in zone_id order.
Description: greensink.zones.run_zone_coverage.
"""

from greensink.logs import setup
from greensink.zones import run_zone_coverage

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
run_zone_coverage(sm.input.zones, sm.input.grid, sm.output[0])
