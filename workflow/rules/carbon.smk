# Carbon: density map with its 90 % band from the bootstrap draws.


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
