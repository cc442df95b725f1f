# Green-space types: typed polygons (or a classified land-cover raster) -> exact per-type fractions on the grid.


rule types:
    input:
        greenspace=greenspace_source,
        grid="results/zones/grid.json",
    output:
        fractions="results/types/fractions.tif",
        greenspace="results/types/greenspace.gpkg",
        summary="results/types/summary.json",
    log:
        "logs/types.log",
    conda:
        ENV
    params:
        greenspace=GREENSPACE,
        compress=config["output"]["compress"],
    script:
        "../scripts/types.py"
