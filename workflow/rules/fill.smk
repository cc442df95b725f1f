# Fill of unobserved typed land: each type's mean density over the year's observed pixels, computed once per
# year (results/{year}/fill.json) for aggregate and change. Untiled (tiles.size_px null): one job per
# year over the whole grid. Tiled: one job per {year}×{tile} writes its tile's partial sums (its windows of the
# year's rasters), and rule fill_gather adds them up into the same file (greensink.carbon.fill).

if not TILED:

    rule fill:
        input:
            models="results/{year}/model/models.json",
            predictors=expand("results/{{year}}/{predictor}.tif", predictor=PREDICTORS),
            fractions=year_fractions,
        output:
            "results/{year}/fill.json",
        log:
            "logs/fill/{year}.log",
        conda:
            ENV
        resources:
            mem_mb=job_mem_mb,
            runtime=job_runtime,
        params:
            types=TYPES,
            predictors=PREDICTORS,
        script:
            "../scripts/fill.py"

else:

    rule fill_tile:
        input:
            models="results/{year}/model/models.json",
            predictors=expand("results/{{year}}/{predictor}.tif", predictor=PREDICTORS),
            fractions=year_fractions,
        output:
            "results/{year}/tiles/fill_{tile}.json",
        log:
            "logs/fill/{year}/{tile}.log",
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=job_mem_mb,
            runtime=job_runtime,
        params:
            types=TYPES,
            predictors=PREDICTORS,
            size_px=TILE_PX,
        script:
            "../scripts/fill_tile.py"

    rule fill_gather:
        input:
            tiles=year_tiles("fill", "json"),
            models="results/{year}/model/models.json",
            grid="results/zones/grid.json",
        output:
            "results/{year}/fill.json",
        log:
            "logs/fill/{year}.log",
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=job_mem_mb,
            runtime=job_runtime,
        params:
            types=TYPES,
            size_px=TILE_PX,
        script:
            "../scripts/fill_gather.py"
