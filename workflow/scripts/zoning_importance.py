"""Rule zoning_importance: carbon-sink importance classes by weighted overlay (greensink.zoning.importance).

Inputs: results/zones/{level}.gpkg and _coverage.npz, grid.json, the year's vegetation_class, canopy, height, ndvi,
        fvc and carbon rasters, the green-space type fractions, the user rasters of zoning.importance.factors.
Outputs: results/{year}/zoning/importance.tif (uint8 1 一般, 2 重要, 3 极重要, 255 no class; class names, weights
         and breaks in its tags) and importance.qml beside it; importance_{level}.gpkg and .csv (area and carbon
         per class and zone); importance.json (factors, normalised weights, dropped factors, totals per level).
"""

from greensink import io
from greensink.grid import Grid
from greensink.logs import setup
from greensink.styles import classed_raster_qml
from greensink.zoning import IMPORTANCE_CLASSES, Factor, importance_run, raster_on_grid

COLOURS = {3: "#00441b", 2: "#41ab5d", 1: "#e5f5e0"}
log = setup(snakemake.log[0])  # noqa: F821
inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
grid = Grid.read(inp.grid)
imp = p.zoning["importance"]
factors = [Factor.from_config(f) for f in imp["factors"]]
layers = {name: io.read_raster(inp[name], bands=1) for name in ("vegetation_class", "canopy", "height", "ndvi", "fvc", "carbon")}
layers |= {f.name: raster_on_grid(f.path, f.band, grid, categorical=bool(f.classes)) for f in factors if f.path}
fractions = io.read_raster(inp.fractions, bands=list(range(1, len(p.types) + 1)))
classes, tags, tables, summary = importance_run(
    factors, imp["class_breaks"], layers, fractions, p.types, typed_land=p.typed_land, chm=p.chm,
    levels=p.levels, zones=[io.read_vector(f) for f in inp.zones], matrices=[io.read_sparse(f) for f in inp.coverage], grid=grid)
io.write_raster(out.raster, classes, grid, band_names=["importance_class"], compress=p.compress, nodata=255, tags=tags)
io.write_text(out.style, classed_raster_qml([(c, f"{zh} {en}", COLOURS[c]) for c, (_, zh, en) in IMPORTANCE_CLASSES.items()]))
for level, gpkg in zip(p.levels, out.gpkg, strict=True):
    io.write_table(gpkg, tables[level], layer=f"importance_{level}")
io.write_json(out.summary, summary)
for name, why in summary["dropped_factors"].items():
    log.warning("importance: factor %s left out: %s; weights renormalised over the others", name, why)
log.info("importance classes (pixels): %s; weights %s", summary["pixels"],
         {f["name"]: round(f["weight_normalised"], 4) for f in summary["factors"]})
