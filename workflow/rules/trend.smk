# Trend: Theil-Sen slope of carbon stock over every reporting year, per pixel and per zone (made with 2+ years).
# Untiled (tiles.size_px null): one job. Tiled: one trend_tile job per tile on the windows of every year's rasters
# (the tile's trend raster and the zone sums per year and draw), then rule trend gathers them (greensink.trend_tiles).


if not TILED:

    rule trend:
        input:
            zones=expand("results/zones/{level}.gpkg", level=LEVELS),
            coverage=expand("results/zones/{level}_coverage.npz", level=LEVELS),
            grid="results/zones/grid.json",
            fractions=series_fractions,
            predictors=expand("results/{year}/{predictor}.tif", year=YEARS, predictor=PREDICTORS),
            ndvi_se=expand("results/{year}/ndvi_se.tif", year=YEARS),
            models=expand("results/{year}/model/models.json", year=YEARS),
            fills=expand("results/{year}/fill.json", year=YEARS),  # rule fill: each year's fill of unobserved typed land
            # the indicator tables (rule aggregate), not the final ones: a target edit does not rerun the trend
            tables=expand(
                "results/{year}/zones/{level}.indicators.parquet",
                year=YEARS,
                level=LEVELS,
            ),
        output:
            trend="results/change/trend/trend.tif",
            zones=expand("results/change/trend/zones/{level}.gpkg", level=LEVELS),
            csv=expand("results/change/trend/zones/{level}.csv", level=LEVELS),
            parquet=expand("results/change/trend/zones/{level}.parquet", level=LEVELS),
            record="results/change/trend/trend.json",
        log:
            "logs/change/trend.log",
        conda:
            ENV
        resources:
            mem_mb=job_mem_mb,
            runtime=job_runtime,
        params:
            years=YEARS,
            levels=LEVELS,
            types=TYPES,
            predictors=PREDICTORS,
            interval_pct=config["carbon"]["interval_pct"],
            min_observed_pct=config["carbon"]["min_observed_pct"],
            uncertainty=config.get("uncertainty", {}),
            seed=config["seed"],
            compress=config["output"]["compress"],
        script:
            "../scripts/trend.py"

else:

    rule trend_tile:
        input:
            coverage=expand("results/zones/tiles/{level}_coverage_{{tile}}.npz", level=LEVELS),
            grid="results/zones/grid.json",
            fractions=series_fractions,
            predictors=expand("results/{year}/{predictor}.tif", year=YEARS, predictor=PREDICTORS),
            ndvi_se=expand("results/{year}/ndvi_se.tif", year=YEARS),
            models=expand("results/{year}/model/models.json", year=YEARS),
            fills=expand("results/{year}/fill.json", year=YEARS),  # rule fill: the whole years' fill of unobserved typed land
        output:
            trend="results/change/trend/tiles/trend_{tile}.tif",
            parts="results/change/trend/tiles/parts_{tile}.npz",
        log:
            "logs/change/trend/{tile}.log",
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=job_mem_mb,
            runtime=job_runtime,
        params:
            years=YEARS,
            levels=LEVELS,
            types=TYPES,
            predictors=PREDICTORS,
            interval_pct=config["carbon"]["interval_pct"],
            uncertainty=config.get("uncertainty", {}),
            seed=config["seed"],
            compress=config["output"]["compress"],
            size_px=TILE_PX,
        script:
            "../scripts/trend_tile.py"

    rule trend:
        input:
            trend_tiles=trend_tiles("trend"),
            parts=trend_tiles("parts", "npz"),
            zones=expand("results/zones/{level}.gpkg", level=LEVELS),
            grid="results/zones/grid.json",
            models=expand("results/{year}/model/models.json", year=YEARS),
            # the indicator tables (rule aggregate), not the final ones: a target edit does not rerun the trend
            tables=expand(
                "results/{year}/zones/{level}.indicators.parquet",
                year=YEARS,
                level=LEVELS,
            ),
        output:
            trend="results/change/trend/trend.tif",
            zones=expand("results/change/trend/zones/{level}.gpkg", level=LEVELS),
            csv=expand("results/change/trend/zones/{level}.csv", level=LEVELS),
            parquet=expand("results/change/trend/zones/{level}.parquet", level=LEVELS),
            record="results/change/trend/trend.json",
        log:
            "logs/change/trend.log",
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=job_mem_mb,
            runtime=job_runtime,
        params:
            years=YEARS,
            levels=LEVELS,
            interval_pct=config["carbon"]["interval_pct"],
            min_observed_pct=config["carbon"]["min_observed_pct"],
            uncertainty=config.get("uncertainty", {}),
            seed=config["seed"],
            compress=config["output"]["compress"],
            size_px=TILE_PX,
        script:
            "../scripts/trend_gather.py"
