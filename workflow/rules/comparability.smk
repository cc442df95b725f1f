# Comparability: may the two years of a change pair be differenced (same sensors and harmonisation)?
# change.incompatible refuse stops the run here, before the change job; flag lets the pair through, noted.


rule comparability:
    input:
        scenes0="results/{y0}/ingest/scenes.json",
        scenes1="results/{y1}/ingest/scenes.json",
    output:
        "results/change/{y0}_{y1}/comparability.json",
    log:
        "logs/comparability/{y0}_{y1}.log",
    conda:
        ENV
    resources:
        mem_mb=job_mem_mb,
        runtime=job_runtime,
    params:
        mode=config["change"]["incompatible"],
    script:
        "../scripts/comparability.py"
