# Green-space types: typed polygons (or a classified land-cover raster) -> exact per-type fractions on the grid.
# One job for every year, or one per year when greenspace.path holds {year} (outputs: year_types in common.smk).


rule types:
    input:
        greenspace=greenspace_source,
        grid="results/zones/grid.json",
    output:
        fractions=TYPES_OUT["fractions"],
        greenspace=TYPES_OUT["greenspace"],
        summary=TYPES_OUT["summary"],
    log:
        TYPES_LOG,
    conda:
        ENV
    resources:
        mem_mb=job_mem_mb,
        runtime=job_runtime,
    params:
        greenspace=greenspace_params,
        compress=config["output"]["compress"],
    script:
        "../scripts/types.py"
