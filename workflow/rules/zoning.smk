# Zoning (config zoning; off with zoning: null): canopy gap and plantable space, carbon-sink importance
# classes (weighted overlay) and carbon-sink potential space, per year (greensink.zoning). In a tiled run each
# job reads the tiles' coverage (level_coverage) and works tile by tile: memory bounded by a tile.


rule zoning_canopy_gap:
    input:
        zones=expand("results/zones/{level}.gpkg", level=LEVELS),
        coverage=level_coverage,
        grid="results/zones/grid.json",
        classes="results/{year}/vegetation_class.tif",
        canopy="results/{year}/canopy.tif",
        carbon="results/{year}/carbon.tif",
        coefficients=config["coefficients"],
        open_land=zoning_open_land,
    output:
        gpkg=expand("results/{{year}}/zoning/canopy_gap_{level}.gpkg", level=LEVELS),
        csv=expand("results/{{year}}/zoning/canopy_gap_{level}.csv", level=LEVELS),
        summary="results/{year}/zoning/canopy_gap.json",
    log:
        "logs/zoning_canopy_gap/{year}.log",
    conda:
        ENV
    resources:
        mem_mb=job_mem_mb,
        runtime=job_runtime,
    params:
        size_px=TILE_PX,
        levels=LEVELS,
        zoning=ZONING,
        greenspace=GREENSPACE,
    script:
        "../scripts/zoning_canopy_gap.py"


rule zoning_importance:
    input:
        zones=expand("results/zones/{level}.gpkg", level=LEVELS),
        coverage=level_coverage,
        grid="results/zones/grid.json",
        vegetation_class="results/{year}/vegetation_class.tif",
        canopy="results/{year}/canopy.tif",
        height="results/{year}/height.tif",
        ndvi="results/{year}/ndvi.tif",
        fvc="results/{year}/fvc.tif",
        carbon="results/{year}/carbon.tif",
        fractions=year_fractions,
        factor_rasters=zoning_factor_rasters,
    output:
        raster="results/{year}/zoning/importance.tif",
        style="results/{year}/zoning/importance.qml",
        gpkg=expand("results/{{year}}/zoning/importance_{level}.gpkg", level=LEVELS),
        csv=expand("results/{{year}}/zoning/importance_{level}.csv", level=LEVELS),
        summary="results/{year}/zoning/importance.json",
    log:
        "logs/zoning_importance/{year}.log",
    conda:
        ENV
    resources:
        mem_mb=job_mem_mb,
        runtime=job_runtime,
    params:
        size_px=TILE_PX,
        levels=LEVELS,
        types=TYPES,
        zoning=ZONING,
        typed_land=GREENSPACE is not None,
        chm=config["vegetation"].get("chm") is not None,
        compress=config["output"]["compress"],
    script:
        "../scripts/zoning_importance.py"


rule zoning_potential:
    input:
        zones=expand("results/zones/{level}.gpkg", level=LEVELS),
        coverage=level_coverage,
        grid="results/zones/grid.json",
        carbon="results/{year}/carbon.tif",
        coefficients=config["coefficients"],
        masks=zoning_masks,
    output:
        raster="results/{year}/zoning/potential.tif",
        style="results/{year}/zoning/potential.qml",
        gpkg=expand("results/{{year}}/zoning/potential_{level}.gpkg", level=LEVELS),
        csv=expand("results/{{year}}/zoning/potential_{level}.csv", level=LEVELS),
        summary="results/{year}/zoning/potential.json",
    log:
        "logs/zoning_potential/{year}.log",
    conda:
        ENV
    resources:
        mem_mb=job_mem_mb,
        runtime=job_runtime,
    params:
        size_px=TILE_PX,
        levels=LEVELS,
        zoning=ZONING,
        greenspace=GREENSPACE,
        compress=config["output"]["compress"],
    script:
        "../scripts/zoning_potential.py"
