# Change: yearly net sink between two reporting years, per pixel and per zone, its attribution, no net loss of sink space.
# Untiled (tiles.size_px null): one job per pair. Tiled: one change_tile job per pair × tile on the windows of the
# years' rasters (tile rasters, zone partial sums, lost pixels), then rule change gathers them (greensink.change.tiles).


if not TILED:

    rule change:
        input:
            zones=expand("results/zones/{level}.gpkg", level=LEVELS),
            coverage=expand("results/zones/{level}_coverage.npz", level=LEVELS),
            grid="results/zones/grid.json",
            fractions0=fractions_y0,
            fractions1=fractions_y1,
            predictors0=expand("results/{{y0}}/{predictor}.tif", predictor=PREDICTORS),
            predictors1=expand("results/{{y1}}/{predictor}.tif", predictor=PREDICTORS),
            classes0="results/{y0}/vegetation_class.tif",
            classes1="results/{y1}/vegetation_class.tif",
            ndvi_se0="results/{y0}/ndvi_se.tif",
            ndvi_se1="results/{y1}/ndvi_se.tif",
            models0="results/{y0}/model/models.json",
            models1="results/{y1}/model/models.json",
            # the indicator tables (rule aggregate), not the final ones: a target edit does not rerun change
            tables0=expand("results/{{y0}}/zones/{level}.indicators.parquet", level=LEVELS),
            tables1=expand("results/{{y1}}/zones/{level}.indicators.parquet", level=LEVELS),
            comparability="results/change/{y0}_{y1}/comparability.json",  # rule comparability (change.incompatible)
            fill0="results/{y0}/fill.json",  # rule fill: the years' fill of unobserved typed land
            fill1="results/{y1}/fill.json",
        output:
            sink="results/change/{y0}_{y1}/sink.tif",
            zones=expand("results/change/{{y0}}_{{y1}}/zones/{level}.gpkg", level=LEVELS),
            csv=report(
                expand("results/change/{{y0}}_{{y1}}/zones/{level}.csv", level=LEVELS),
                caption="../report/change_table.rst",
                category="碳汇变化 Change",
                subcategory="{y0}–{y1}",
            ),
            parquet=expand("results/change/{{y0}}_{{y1}}/zones/{level}.parquet", level=LEVELS),
            attribution="results/change/{y0}_{y1}/attribution.tif",
            lost_patches="results/change/{y0}_{y1}/lost_patches.gpkg",
            lost_patches_csv="results/change/{y0}_{y1}/lost_patches.csv",
            uncertainty="results/change/{y0}_{y1}/uncertainty.json",
        log:
            "logs/change/{y0}_{y1}.log",
        conda:
            ENV
        resources:
            mem_mb=job_mem_mb,
            runtime=job_runtime,
        params:
            levels=LEVELS,
            types=TYPES,
            greenspace=GREENSPACE,
            predictors=PREDICTORS,
            interval_pct=config["carbon"]["interval_pct"],
            uncertainty=config.get("uncertainty", {}),
            seed=config["seed"],
            compress=config["output"]["compress"],
            no_net_loss_tolerance_pixels=config["indicators"]["no_net_loss_tolerance_pixels"],
            min_observed_pct=config["carbon"]["min_observed_pct"],
            draws=config["change"]["draws"],
        script:
            "../scripts/change.py"

else:

    rule change_tile:
        input:
            coverage=expand("results/zones/tiles/{level}_coverage_{{tile}}.npz", level=LEVELS),
            grid="results/zones/grid.json",
            fractions0=fractions_y0,
            fractions1=fractions_y1,
            predictors0=expand("results/{{y0}}/{predictor}.tif", predictor=PREDICTORS),
            predictors1=expand("results/{{y1}}/{predictor}.tif", predictor=PREDICTORS),
            classes0="results/{y0}/vegetation_class.tif",
            classes1="results/{y1}/vegetation_class.tif",
            ndvi_se0="results/{y0}/ndvi_se.tif",
            ndvi_se1="results/{y1}/ndvi_se.tif",
            models0="results/{y0}/model/models.json",
            models1="results/{y1}/model/models.json",
            fill0="results/{y0}/fill.json",  # rule fill: the whole year's fill of unobserved typed land
            fill1="results/{y1}/fill.json",
        output:
            sink="results/change/{y0}_{y1}/tiles/sink_{tile}.tif",
            attribution="results/change/{y0}_{y1}/tiles/attribution_{tile}.tif",
            parts="results/change/{y0}_{y1}/tiles/parts_{tile}.npz",
        log:
            "logs/change/{y0}_{y1}/{tile}.log",
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
            predictors=PREDICTORS,
            interval_pct=config["carbon"]["interval_pct"],
            uncertainty=config.get("uncertainty", {}),
            seed=config["seed"],
            compress=config["output"]["compress"],
            size_px=TILE_PX,
            draws=config["change"]["draws"],
        script:
            "../scripts/change_tile.py"

    rule change:
        input:
            sink_tiles=pair_tiles("sink"),
            attribution_tiles=pair_tiles("attribution"),
            parts=pair_tiles("parts", "npz"),
            zones=expand("results/zones/{level}.gpkg", level=LEVELS),
            grid="results/zones/grid.json",
            models0="results/{y0}/model/models.json",
            models1="results/{y1}/model/models.json",
            # the indicator tables (rule aggregate), not the final ones: a target edit does not rerun change
            tables0=expand("results/{{y0}}/zones/{level}.indicators.parquet", level=LEVELS),
            tables1=expand("results/{{y1}}/zones/{level}.indicators.parquet", level=LEVELS),
            comparability="results/change/{y0}_{y1}/comparability.json",  # rule comparability (change.incompatible)
        output:
            sink="results/change/{y0}_{y1}/sink.tif",
            zones=expand("results/change/{{y0}}_{{y1}}/zones/{level}.gpkg", level=LEVELS),
            csv=report(
                expand("results/change/{{y0}}_{{y1}}/zones/{level}.csv", level=LEVELS),
                caption="../report/change_table.rst",
                category="碳汇变化 Change",
                subcategory="{y0}–{y1}",
            ),
            parquet=expand("results/change/{{y0}}_{{y1}}/zones/{level}.parquet", level=LEVELS),
            attribution="results/change/{y0}_{y1}/attribution.tif",
            lost_patches="results/change/{y0}_{y1}/lost_patches.gpkg",
            lost_patches_csv="results/change/{y0}_{y1}/lost_patches.csv",
            uncertainty="results/change/{y0}_{y1}/uncertainty.json",
        log:
            "logs/change/{y0}_{y1}.log",
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=job_mem_mb,
            runtime=job_runtime,
        params:
            levels=LEVELS,
            interval_pct=config["carbon"]["interval_pct"],
            uncertainty=config.get("uncertainty", {}),
            compress=config["output"]["compress"],
            no_net_loss_tolerance_pixels=config["indicators"]["no_net_loss_tolerance_pixels"],
            min_observed_pct=config["carbon"]["min_observed_pct"],
            size_px=TILE_PX,
        script:
            "../scripts/change_gather.py"
