"""Rule zone_coverage: exact fraction of each pixel covered by each zone of one level.

Inputs: results/zones/{level}.gpkg, results/zones/grid.json.
Outputs: results/zones/{level}_coverage.npz, a sparse (zones x pixels) matrix in zone_id order.
"""

from greensink import io
from greensink.coverage import coverage_matrix
from greensink.grid import Grid
from greensink.logs import progress, setup

log = setup(snakemake.log[0])  # noqa: F821
zones = io.read_vector(snakemake.input.zones)  # noqa: F821
grid = Grid.read(snakemake.input.grid)  # noqa: F821
m = coverage_matrix(zones.geometry.values, grid.transform, grid.shape, progress=progress(log, "coverage"))
io.write_sparse(snakemake.output[0], m)  # noqa: F821
log.info("coverage of %d zones: %d pixel entries, %.1f ha covered", m.shape[0], m.nnz, m.sum() * grid.pixel_area_ha)
