"""Rule qgis_project: the QGIS project of a run, results/greensink.qgs.

Inputs: every year's carbon, canopy, FVC and NDVI raster and zone tables, every change pair's sink raster and
zone tables, the trend, attribution, lost patches, transitions and zoning layers the config makes, their .qml styles (rule qgis_styles), each scenario's carbon raster and zone tables, and the run's grid (CRS and extent).
Outputs: results/greensink.qgs, the layers grouped by change pair and year, zone levels coarsest on top, styled,
paths relative to the project file (greensink.qgis_project); the scenario layers' .qml styles beside them.
Description: greensink.qgis_project.run_qgis_project.
"""

from greensink.logs import setup
from greensink.qgis_project import run_qgis_project

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
p = sm.params
run_qgis_project(sm.input.grid, sm.output[0], years=p.years, pairs=p.pairs, levels=p.levels, zoning=p.zoning,
                 scenarios=p.scenarios)
