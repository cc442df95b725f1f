# Planning zones: validated, nested, on one grid; exact pixel coverage once per level.


from greensink.refresh import lattice_scene_digest, scenes_table

# a param only with a scenes table: runs without one keep their params (a new param would rerun them once)
LATTICE_REFRESH_PARAMS = (
    {"lattice_digest": lambda wildcards: lattice_scene_digest(config)} if scenes_table(config) else {}
)


# A checkpoint: the grid it writes decides the composite tiles (common.smk, tile_ids).
checkpoint prepare_zones:
    input:
        zone_source,
        # grid.align imagery: the file(s) the grid's lattice is read from (scenes table or first scene, STAC catalog)
        lattice=grid_lattice_inputs,
    output:
        zones=expand("results/zones/{level}.gpkg", level=LEVELS),
        nesting="results/zones/nesting.csv",
        grid="results/zones/grid.json",
    log:
        "logs/prepare_zones.log",
    conda:
        ENV
    resources:
        mem_mb=job_mem_mb,
        runtime=job_runtime,
    params:
        **LATTICE_REFRESH_PARAMS,  # the lattice scene's row (greensink.refresh)
        zones=config["zones"],
        crs=config["crs"],
        resolution=config["resolution"],
        align=config["grid"]["align"],
    script:
        "../scripts/prepare_zones.py"


rule zone_coverage:
    input:
        zones="results/zones/{level}.gpkg",
        grid="results/zones/grid.json",
    output:
        "results/zones/{level}_coverage.npz",
    log:
        "logs/zone_coverage/{level}.log",
    conda:
        ENV
    resources:
        mem_mb=job_mem_mb,
        runtime=job_runtime,
    script:
        "../scripts/zone_coverage.py"


if TILED:

    # The coverage of each {level}×{tile}: the whole grid's matrix's columns of the tile, on the tile's sub-grid
    # (memory bounded by the tile), read by the tiled aggregate and change jobs. The whole-grid matrix above
    # is what untiled rules read; in a tiled run every zone-summing rule reads the tiles'.
    rule zone_coverage_tile:
        input:
            zones="results/zones/{level}.gpkg",
            grid="results/zones/grid.json",
        output:
            "results/zones/tiles/{level}_coverage_{tile}.npz",
        log:
            "logs/zone_coverage/{level}/{tile}.log",
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=job_mem_mb,
            runtime=job_runtime,
        params:
            size_px=TILE_PX,
        script:
            "../scripts/zone_coverage_tile.py"
