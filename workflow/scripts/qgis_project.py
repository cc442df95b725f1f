"""Rule qgis_project: the QGIS project of a run, results/greensink.qgs.

Inputs: every year's carbon, canopy, FVC and NDVI raster and zone tables, every change pair's sink raster and
zone tables, their .qml styles (rule qgis_styles) and the run's grid (CRS and extent).
Outputs: results/greensink.qgs, the layers grouped by change pair and year, zone levels coarsest on top, styled,
paths relative to the project file (greensink.qgis_project).
"""

from pathlib import Path

from greensink import io
from greensink.grid import Grid
from greensink.logs import setup
from greensink.qgis_project import layers, project_xml, run_tree

log = setup(snakemake.log[0])  # noqa: F821
inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
home = Path(out[0]).parent
tree = run_tree(p.years, p.pairs, p.levels)
styles = {layer.qml: (home / layer.qml).read_text(encoding="utf-8") for layer in layers(tree)}
grid = Grid.read(inp.grid)
io.write_text(out[0], project_xml(tree, styles, grid.crs, grid.bounds))
log.info("QGIS project %s: %d layers in %d groups, CRS %s", out[0], len(styles), len(tree.children), grid.crs)
