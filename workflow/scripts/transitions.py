"""Rule transitions: land transitions between years (IPCC Approach 3), per pixel and per zone.

Inputs: results/zones/{level}.gpkg and _coverage.npz, grid.json; results/{year}/vegetation_class.tif and
        carbon.tif of every year; with green-space types given per year, results/types/{year}/fractions.tif.
Outputs: results/change/trend/transitions/classes.tif (vegetation class per year, band descriptions = years),
         greenspace_types.tif (dominant type per year; types per year only), {level}.csv and .parquet (long form:
         zone_id, level, y0, y1, kind, from_class, to_class, area_ha, carbon_change_t, carbon_known_ha),
         matrix_{y0}_{y1}.csv (city vegetation matrix, ha), greenspace_matrix_{y0}_{y1}.csv (types per year only),
         transitions.json. The method is greensink.transitions'.
"""

from greensink import io
from greensink.grid import Grid
from greensink.logs import setup
from greensink.transitions import transition_record, transitions

log = setup(snakemake.log[0])  # noqa: F821
inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
grid = Grid.read(inp.grid)
years = [int(y) for y in p.years]
classes = {y: io.read_raster(path) for y, path in zip(years, inp.classes, strict=True)}
carbon = {y: io.read_raster(path, bands=1) for y, path in zip(years, inp.carbon, strict=True)}
fractions = ({y: io.read_raster(path, bands=list(range(1, len(p.types) + 1)))
              for y, path in zip(years, inp.fractions, strict=True)} if p.types_by_year else None)
matrices = {level: io.read_sparse(path) for level, path in zip(p.levels, inp.coverage, strict=True)}
zone_ids = {level: io.read_vector(path)["zone_id"].astype(str).tolist() for level, path in zip(p.levels, inp.zones, strict=True)}
res = transitions(years, classes, carbon, matrices, zone_ids, grid.pixel_area_ha, fractions, p.types)
year_names = [str(y) for y in years]
io.write_raster(out.classes, res.classes, grid, band_names=year_names, compress=p.compress,
                tags={f"class_{k}": name for k, name in enumerate(["none", "grass", "shrub", "tree"])})
if res.types is not None:
    io.write_raster(out.types[0], res.types, grid, band_names=year_names, compress=p.compress,
                    tags={f"class_{k}": name for k, name in enumerate([*p.types, "none"])})
for level, path in zip(p.levels, out.csv, strict=True):
    io.write_table(path, res.tables[level], parquet=True)
for pair, path in zip(p.pairs, out.matrices, strict=True):
    io.write_csv(path, res.matrices[tuple(pair)].reset_index())
for pair, path in zip(p.pairs if res.types is not None else [], out.type_matrices, strict=True):
    io.write_csv(path, res.type_matrices[tuple(pair)].reset_index())
io.write_json(out.summary, transition_record(res, years, p.levels, p.types if res.types is not None else []))
for level in p.levels:
    log.info("%s: %d transition rows over %d pairs", level, len(res.tables[level]), len(p.pairs))
