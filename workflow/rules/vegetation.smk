# Vegetation: NDVI, fractional vegetation cover, vegetation and tree-canopy masks, structure classes
# (refined by the optional canopy height model vegetation.chm) and mean canopy height (NaN without it).
# Untiled (tiles.size_px null): one job per year. Tiled: the whole grid's FVC endmembers (one job per year,
# read tile by tile), one job per {year}×{tile} on the composite's window, then a mosaic that writes the
# untiled rule's files (greensink.tiling).

if not TILED:

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

else:

    rule vegetation_endmembers:
        input:
            composite="results/{year}/composite.tif",
        output:
            "results/{year}/tiles/fvc_endmembers.json",
        log:
            "logs/vegetation/{year}/endmembers.log",
        conda:
            ENV
        resources:
            mem_mb=job_mem_mb,
            runtime=job_runtime,
        params:
            vegetation=config["vegetation"],
            block_rows=config["imagery"]["block_rows"],
            size_px=TILE_PX,
        script:
            "../scripts/vegetation_endmembers.py"

    rule vegetation_tile:
        input:
            composite="results/{year}/composite.tif",
            endmembers="results/{year}/tiles/fvc_endmembers.json",
            chm=optional_chm,
        output:
            ndvi="results/{year}/tiles/ndvi_{tile}.tif",
            fvc="results/{year}/tiles/fvc_{tile}.tif",
            vegetation="results/{year}/tiles/vegetation_{tile}.tif",
            canopy="results/{year}/tiles/canopy_{tile}.tif",
            classes="results/{year}/tiles/vegetation_class_{tile}.tif",
            height="results/{year}/tiles/height_{tile}.tif",
        log:
            "logs/vegetation/{year}/{tile}.log",
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=job_mem_mb,
            runtime=job_runtime,
        params:
            vegetation=config["vegetation"],
            block_rows=config["imagery"]["block_rows"],
            compress=config["output"]["compress"],
            size_px=TILE_PX,
        script:
            "../scripts/vegetation_tile.py"

    rule vegetation_mosaic:
        input:
            ndvi=year_tiles("ndvi"),
            fvc=year_tiles("fvc"),
            vegetation=year_tiles("vegetation"),
            canopy=year_tiles("canopy"),
            classes=year_tiles("vegetation_class"),
            height=year_tiles("height"),
            endmembers="results/{year}/tiles/fvc_endmembers.json",
            grid="results/zones/grid.json",
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
            "logs/mosaic/vegetation/{year}.log",
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=job_mem_mb,
            runtime=job_runtime,
        params:
            vegetation=config["vegetation"],
            block_rows=config["imagery"]["block_rows"],
            compress=config["output"]["compress"],
            size_px=TILE_PX,
        script:
            "../scripts/vegetation_mosaic.py"


# The composite NDVI's standard error from its clear-observation count (uncertainty.ndvi): one job per year,
# or per {year}×{tile} and a mosaic when tiled.
if not TILED:

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

else:

    rule ndvi_se_tile:
        input:
            composite="results/{year}/composite.tif",
        output:
            "results/{year}/tiles/ndvi_se_{tile}.tif",
        log:
            "logs/ndvi_se/{year}/{tile}.log",
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=job_mem_mb,
            runtime=job_runtime,
        params:
            obs_sd=config.get("uncertainty", {}).get("ndvi", {}).get("obs_sd", 0.03),
            method=config["imagery"]["composite"],
            compress=config["output"]["compress"],
            size_px=TILE_PX,
        script:
            "../scripts/ndvi_se_tile.py"

    rule ndvi_se_mosaic:
        input:
            tiles=year_tiles("ndvi_se"),
            grid="results/zones/grid.json",
        output:
            "results/{year}/ndvi_se.tif",
        log:
            "logs/mosaic/ndvi_se/{year}.log",
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=job_mem_mb,
            runtime=job_runtime,
        params:
            compress=config["output"]["compress"],
            size_px=TILE_PX,
        script:
            "../scripts/ndvi_se_mosaic.py"
