# Land transitions (IPCC Approach 3): vegetation class (and green-space type, when given per year) of every
# pixel in every year, and per zone and level the transition areas and their carbon change. In a tiled run the job
# reads the tiles' coverage (level_coverage) and sums tile by tile: memory bounded by a tile.


rule transitions:
    input:
        zones=expand("results/zones/{level}.gpkg", level=LEVELS),
        coverage=level_coverage,
        grid="results/zones/grid.json",
        classes=expand("results/{year}/vegetation_class.tif", year=YEARS),
        carbon=expand("results/{year}/carbon.tif", year=YEARS),
        fractions=yearly_type_fractions,
    output:
        classes="results/change/trend/transitions/classes.tif",
        types=TRANSITION_TYPES_RASTER,
        csv=expand("results/change/trend/transitions/{level}.csv", level=LEVELS),
        parquet=expand("results/change/trend/transitions/{level}.parquet", level=LEVELS),
        matrices=[f"results/change/trend/transitions/matrix_{y0}_{y1}.csv" for y0, y1 in TRANSITION_PAIRS],
        type_matrices=TRANSITION_TYPE_MATRICES,
        summary="results/change/trend/transitions/transitions.json",
    log:
        "logs/transitions.log",
    conda:
        ENV
    resources:
        mem_mb=job_mem_mb,
        runtime=job_runtime,
    params:
        size_px=TILE_PX,
        years=YEARS,
        levels=LEVELS,
        types=TYPES,
        types_by_year=TYPES_BY_YEAR,
        compress=config["output"]["compress"],
    script:
        "../scripts/transitions.py"
