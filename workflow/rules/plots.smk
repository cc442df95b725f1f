# Plot carbon from a tree inventory (plots.trees): per plot and year t C/ha with paired error draws.


rule plot_carbon:
    input:
        trees=tree_inventory,
        plots=optional_plots,
        params=allometry_params,
    output:
        table="results/plots/plot_carbon.csv",
        draws="results/plots/plot_carbon_draws.csv",
        trees="results/plots/trees.csv",
        plots="results/plots/plots.gpkg",
        record="results/plots/plot_carbon.json",
    log:
        "logs/plot_carbon.log",
    conda:
        ENV
    resources:
        mem_mb=job_mem_mb,
        runtime=job_runtime,
    params:
        plots=PLOTS,
        n_draws=config["model"]["n_bootstrap"],
        seed=config["seed"],
    script:
        "../scripts/plot_carbon.py"
