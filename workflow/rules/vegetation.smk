# Vegetation: NDVI, fractional vegetation cover, vegetation and tree-canopy masks, structure classes
# (refined by the optional canopy height model vegetation.chm) and mean canopy height (NaN without it).


rule vegetation:
    input:
        composite="results/{year}/composite.tif",
        chm=optional_chm,
    output:
        ndvi="results/{year}/ndvi.tif",
        fvc="results/{year}/fvc.tif",
        vegetation="results/{year}/vegetation.tif",
        canopy="results/{year}/canopy.tif",
        classes="results/{year}/vegetation_class.tif",
        height="results/{year}/height.tif",
        stats="results/{year}/vegetation.json",
    log:
        "logs/vegetation/{year}.log",
    conda:
        ENV
    resources:
        mem_mb=job_mem_mb,
        runtime=job_runtime,
    params:
        vegetation=config["vegetation"],
        block_rows=config["imagery"]["block_rows"],
        compress=config["output"]["compress"],
    script:
        "../scripts/vegetation.py"


# The composite NDVI's standard error from its clear-observation count (uncertainty.ndvi).
rule ndvi_se:
    input:
        composite="results/{year}/composite.tif",
    output:
        "results/{year}/ndvi_se.tif",
    log:
        "logs/ndvi_se/{year}.log",
    conda:
        ENV
    resources:
        mem_mb=job_mem_mb,
        runtime=job_runtime,
    params:
        obs_sd=config.get("uncertainty", {}).get("ndvi", {}).get("obs_sd", 0.03),
        method=config["imagery"]["composite"],
        compress=config["output"]["compress"],
    script:
        "../scripts/ndvi_se.py"
