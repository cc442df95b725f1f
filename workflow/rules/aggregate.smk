# Aggregate: zone tables at every level, from exact coverage and the same bootstrap draws. It writes the
# intermediate indicator tables; rule targets adds the targets' columns to make the final zone tables.
# It also writes each level's zone draw sums (.draws.npz), which the scenario rules read for their baseline.
# Untiled (tiles.size_px null): one job per year over the whole grid. Tiled: one aggregate_tile job per
# {year}×{tile} writes the zone partial sums of its tile (greensink.zone_sums), and rule aggregate adds them up
# and writes the same outputs, without reading a raster or a whole coverage matrix.

if not TILED:

    rule aggregate:
        input:
            zones=expand("results/zones/{level}.gpkg", level=LEVELS),
            coverage=expand("results/zones/{level}_coverage.npz", level=LEVELS),
            grid="results/zones/grid.json",
            ndvi="results/{year}/ndvi.tif",
            fvc="results/{year}/fvc.tif",
            vegetation="results/{year}/vegetation.tif",
            canopy="results/{year}/canopy.tif",
            classes="results/{year}/vegetation_class.tif",
            fractions=year_fractions,
            greenspace=year_greenspace,
            models="results/{year}/model/models.json",
            fill="results/{year}/fill.json",
            predictors=expand("results/{{year}}/{predictor}.tif", predictor=PREDICTORS),
            ndvi_se="results/{year}/ndvi_se.tif",
            population=optional_population,
            residential=optional_residential,
        output:
            tables=expand("results/{{year}}/zones/{level}.indicators.parquet", level=LEVELS),
            draws=expand("results/{{year}}/zones/{level}.draws.npz", level=LEVELS),
        log:
            "logs/aggregate/{year}.log",
        conda:
            ENV
        resources:
            mem_mb=job_mem_mb,
            runtime=job_runtime,
        params:
            levels=LEVELS,
            types=TYPES,
            predictors=PREDICTORS,
            greenspace=GREENSPACE,
            min_observed_pct=config["carbon"]["min_observed_pct"],
            population=config.get("population"),
            park_service=config["indicators"]["park_service"],
            interval_pct=config["carbon"]["interval_pct"],
            uncertainty=config.get("uncertainty", {}),
            seed=config["seed"],
        script:
            "../scripts/aggregate.py"

else:

    rule aggregate_tile:
        input:
            coverage=expand("results/zones/tiles/{level}_coverage_{{tile}}.npz", level=LEVELS),
            grid="results/zones/grid.json",
            ndvi="results/{year}/ndvi.tif",
            fvc="results/{year}/fvc.tif",
            vegetation="results/{year}/vegetation.tif",
            canopy="results/{year}/canopy.tif",
            classes="results/{year}/vegetation_class.tif",
            fractions=year_fractions,
            models="results/{year}/model/models.json",
            fill="results/{year}/fill.json",
            predictors=expand("results/{{year}}/{predictor}.tif", predictor=PREDICTORS),
            ndvi_se="results/{year}/ndvi_se.tif",
        output:
            sums="results/{year}/tiles/aggregate_{tile}.npz",
        log:
            "logs/aggregate/{year}/{tile}.log",
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=job_mem_mb,
            runtime=job_runtime,
        params:
            levels=LEVELS,
            types=TYPES,
            predictors=PREDICTORS,
            uncertainty=config.get("uncertainty", {}),
            seed=config["seed"],
            size_px=TILE_PX,
        script:
            "../scripts/aggregate_tile.py"

    rule aggregate:
        input:
            zones=expand("results/zones/{level}.gpkg", level=LEVELS),
            sums=year_tiles("aggregate", "npz"),
            grid="results/zones/grid.json",
            greenspace=year_greenspace,
            models="results/{year}/model/models.json",
            fill="results/{year}/fill.json",
            population=optional_population,
            residential=optional_residential,
        output:
            tables=expand("results/{{year}}/zones/{level}.indicators.parquet", level=LEVELS),
            draws=expand("results/{{year}}/zones/{level}.draws.npz", level=LEVELS),
        log:
            "logs/aggregate/{year}.log",
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=job_mem_mb,
            runtime=job_runtime,
        params:
            levels=LEVELS,
            types=TYPES,
            greenspace=GREENSPACE,
            min_observed_pct=config["carbon"]["min_observed_pct"],
            population=config.get("population"),
            park_service=config["indicators"]["park_service"],
            interval_pct=config["carbon"]["interval_pct"],
            uncertainty=config.get("uncertainty", {}),
            seed=config["seed"],
            size_px=TILE_PX,
        script:
            "../scripts/aggregate_gather.py"
