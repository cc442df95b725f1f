# Composite: one growing-season image per year with a valid-observation count.
# Untiled (tiles.size_px null): one job per year. Tiled: one job per {year}×{tile}, then a mosaic.
# Threads: the untiled composite with imagery.engine dask reduces its chunks on the job's threads
# (greensink.workflow.composite_threads: the cores given to Snakemake, at most 8; 1 when imagery.dask.scheduler
# is the address of a running cluster, whose workers compute); every other
# composite job is one thread (tiles spread over cores as separate jobs). imagery.dask says where the dask
# engine computes: those threads, a dask.distributed LocalCluster of them, or a running scheduler by address.
from greensink.workflow import composite_threads

if not TILED:

    rule composite:
        input:
            scenes="results/{year}/ingest/scenes.json",
            grid="results/zones/grid.json",
        output:
            "results/{year}/composite.tif",
        log:
            "logs/composite/{year}.log",
        conda:
            ENV
        # resource_settings.cores: None (not an error, as workflow.cores is) without --cores, e.g. snakemake --report
        threads: composite_threads(config, workflow.resource_settings.cores)
        resources:
            mem_mb=job_mem_mb,
            runtime=job_runtime,
        params:
            method=config["imagery"]["composite"],
            block_rows=config["imagery"]["block_rows"],
            compress=config["output"]["compress"],
            engine=config["imagery"]["engine"],
            dask=config["imagery"]["dask"],
        script:
            "../scripts/composite.py"

else:

    rule composite_tile:
        input:
            scenes="results/{year}/ingest/scenes.json",
            grid="results/zones/grid.json",
        output:
            "results/{year}/tiles/composite_{tile}.tif",
        log:
            "logs/composite/{year}/{tile}.log",
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=job_mem_mb,
            runtime=job_runtime,
        params:
            method=config["imagery"]["composite"],
            block_rows=config["imagery"]["block_rows"],
            compress=config["output"]["compress"],
            size_px=TILE_PX,
            engine=config["imagery"]["engine"],
        script:
            "../scripts/composite.py"

    rule mosaic:
        input:
            tiles=composite_tiles,
            scenes="results/{year}/ingest/scenes.json",
            grid="results/zones/grid.json",
        output:
            "results/{year}/composite.tif",
        log:
            "logs/mosaic/{year}.log",
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=job_mem_mb,
            runtime=job_runtime,
        params:
            method=config["imagery"]["composite"],
            block_rows=config["imagery"]["block_rows"],
            compress=config["output"]["compress"],
            size_px=TILE_PX,
        script:
            "../scripts/mosaic.py"
