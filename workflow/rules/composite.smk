# Composite: one growing-season image per year with a valid-observation count.


rule composite:
    input:
        scenes="results/{year}/ingest/scenes.json",
        grid="results/zones/grid.json",
    output:
        "results/{year}/composite.tif",
    params:
        method=config["imagery"]["composite"],
        block_rows=config["imagery"]["block_rows"],
        compress=config["output"]["compress"],
    log:
        "logs/composite/{year}.log",
    conda:
        ENV
    script:
        "../scripts/composite.py"
