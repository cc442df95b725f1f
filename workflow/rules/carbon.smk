# Carbon: density map with its 90 % band from the bootstrap draws. Untiled (tiles.size_px null): one job per
# year. Tiled: one job per {year}×{tile} on the windows of the year's rasters, then a mosaic that writes the
# untiled rule's files (greensink.tiling).

if not TILED:

    rule carbon:
        input:
            models="results/{year}/model/models.json",
            predictors=expand("results/{{year}}/{predictor}.tif", predictor=PREDICTORS),
            fractions=year_fractions,
            ndvi_se="results/{year}/ndvi_se.tif",
        output:
            carbon="results/{year}/carbon.tif",
            stats="results/{year}/carbon.json",
        log:
            "logs/carbon/{year}.log",
        conda:
            ENV
        resources:
            mem_mb=job_mem_mb,
            runtime=job_runtime,
        params:
            types=TYPES,
            predictors=PREDICTORS,
            interval_pct=config["carbon"]["interval_pct"],
            compress=config["output"]["compress"],
            uncertainty=config.get("uncertainty", {}),
            seed=config["seed"],
        script:
            "../scripts/carbon.py"

else:

    rule carbon_tile:
        input:
            models="results/{year}/model/models.json",
            predictors=expand("results/{{year}}/{predictor}.tif", predictor=PREDICTORS),
            fractions=year_fractions,
            ndvi_se="results/{year}/ndvi_se.tif",
        output:
            carbon="results/{year}/tiles/carbon_{tile}.tif",
            stats="results/{year}/tiles/carbon_{tile}.json",
        log:
            "logs/carbon/{year}/{tile}.log",
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=job_mem_mb,
            runtime=job_runtime,
        params:
            types=TYPES,
            predictors=PREDICTORS,
            interval_pct=config["carbon"]["interval_pct"],
            compress=config["output"]["compress"],
            uncertainty=config.get("uncertainty", {}),
            seed=config["seed"],
            size_px=TILE_PX,
        script:
            "../scripts/carbon.py"

    rule carbon_mosaic:
        input:
            tiles=year_tiles("carbon"),
            stats=year_tiles("carbon", "json"),
            grid="results/zones/grid.json",
        output:
            carbon="results/{year}/carbon.tif",
            stats="results/{year}/carbon.json",
        log:
            "logs/mosaic/carbon/{year}.log",
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=job_mem_mb,
            runtime=job_runtime,
        params:
            compress=config["output"]["compress"],
            size_px=TILE_PX,
        script:
            "../scripts/carbon_mosaic.py"
