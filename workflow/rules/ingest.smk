# Ingest: select and check the scenes of each year's season, fix their harmonisation, measure what is masked.
# (sensor profiles and file patterns are checked with the rest of the config, before any job runs)
from greensink.refresh import scenes_table

# a param only with a scenes table: runs without one keep their params (a new param would rerun them once)
INGEST_REFRESH_PARAMS = {"scenes_digest": ingest_scenes_digest} if scenes_table(config) else {}


rule ingest:
    input:
        # table: the scenes table (if any); images: the band files of the year's season (imagery.files);
        # catalog: a local static STAC catalog (source stac; its items are searched in the job)
        # (a scenes table as ancient, with the band files of the year's rows: ingest_inputs in common.smk)
        unpack(ingest_inputs),
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
        **INGEST_REFRESH_PARAMS,  # the scenes table's rows of the year (greensink.refresh)
        source=config["imagery"]["source"],
        files=config["imagery"].get("files", []),
        profiles=config["imagery"].get("profiles", {}),
        stac=config["imagery"].get("stac", {}),
        season=config["season"],
        block_rows=config["imagery"]["block_rows"],
    script:
        "../scripts/ingest.py"
