# Change: yearly net sink between two reporting years, per pixel and per zone, its attribution, no net loss of sink space.


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
    script:
        "../scripts/change.py"
