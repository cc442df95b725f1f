# Ingest: select and check the scenes of each year's season; fix their harmonisation.


rule ingest:
    input:
        scenes=scenes_csv,
        grid="results/zones/grid.json",
    output:
        "results/{year}/ingest/scenes.json",
    params:
        season=config["season"],
        block_rows=config["imagery"]["block_rows"],
    log:
        "logs/ingest/{year}.log",
    conda:
        ENV
    script:
        "../scripts/ingest.py"
