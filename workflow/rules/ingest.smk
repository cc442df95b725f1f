# Ingest: select and check the scenes of each year's season, fix their harmonisation, measure what is masked.
# (sensor profiles and file patterns are checked with the rest of the config, before any job runs)
from greensink.refresh import scene_band_files, scene_rows_digest, scenes_table
from greensink.workflow import imagery_inputs


def ingest_inputs(wildcards):
    """imagery_inputs of the year; a user's scenes table as ancient, with the band files of the year's rows
    as ordinary inputs (scenes_digest reruns the year when its own rows change: greensink.refresh)."""
    found = imagery_inputs(config, int(wildcards.year))
    if scenes_table(config):
        found["table"] = [ancient(t) for t in found["table"]]
        found["images"] = sorted({*found["images"], *scene_band_files(config, wildcards.year)})
    return found


def ingest_scenes_digest(wildcards):
    return scene_rows_digest(config, wildcards.year)


# a param only with a scenes table: runs without one keep their params (a new param would rerun them once)
INGEST_REFRESH_PARAMS = {"scenes_digest": ingest_scenes_digest} if scenes_table(config) else {}


rule ingest:
    input:
        # table: the scenes table (if any); images: the band files of the year's season (imagery.files);
        # catalog: a local static STAC catalog (source stac; its items are searched in the job)
        # (a scenes table as ancient, with the band files of the year's rows: see ingest_inputs)
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
