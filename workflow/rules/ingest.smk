# Ingest: select and check the scenes of each year's season, fix their harmonisation, measure what is masked.
# (sensor profiles and file patterns are checked with the rest of the config, before any job runs)
from greensink.workflow import ingest_input_function


rule ingest:
    input:
        # table: the scenes table (if any); images: the band files of the year's season (imagery.files);
        # catalog: a local static STAC catalog (source stac; its items are searched in the job)
        unpack(ingest_input_function(config)),
        grid="results/zones/grid.json",
    output:
        "results/{year}/ingest/scenes.json",
    log:
        "logs/ingest/{year}.log",
    conda:
        ENV
    resources:
        mem_mb=job_mem_mb,
        runtime=job_runtime,
    params:
        source=config["imagery"]["source"],
        files=config["imagery"].get("files", []),
        profiles=config["imagery"].get("profiles", {}),
        stac=config["imagery"].get("stac", {}),
        season=config["season"],
        block_rows=config["imagery"]["block_rows"],
    script:
        "../scripts/ingest.py"
