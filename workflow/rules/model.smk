# Model: per-type regression of plot carbon on NDVI (and model.predictors), form and predictors chosen by spatial CV, bootstrapped.


rule model:
    input:
        plots=model_plots,
        plot_draws=plot_draws,
        coefficients=config["coefficients"],
        predictors=expand("results/{{year}}/{predictor}.tif", predictor=PREDICTORS),
        fractions=year_fractions,
        anchor=anchor_models,
    output:
        models=report(
            "results/{year}/model/models.json",
            caption="../report/models.rst",
            category="模型诊断 Model diagnostics",
            subcategory="{year}",
        ),
        samples="results/{year}/model/plots.csv",
        figures=report(
            expand("results/{{year}}/model/{type}.png", type=TYPES),
            caption="../report/model_figure.rst",
            category="模型诊断 Model diagnostics",
            subcategory="{year}",
        ),
    log:
        "logs/model/{year}.log",
    conda:
        ENV
    resources:
        mem_mb=job_mem_mb,
        runtime=job_runtime,
    params:
        plots=PLOTS,
        plots_digest=model_plots_digest,  # the year's plot rows: the plots file itself is ancient (greensink.refresh)
        model=config["model"],
        types=TYPES,
        typed=bool(GREENSPACE),
        ndvi_vegetation=config["vegetation"]["ndvi_vegetation"],
        predictors=PREDICTORS,
        notes=MODEL_NOTES,
        seed=config["seed"],
        uncertainty=config.get("uncertainty", {}),
    script:
        "../scripts/model.py"
