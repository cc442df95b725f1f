# Planning zones: validated, nested, on one grid; exact pixel coverage once per level.


# A checkpoint: the grid it writes decides the composite tiles (common.smk, tile_ids).
checkpoint prepare_zones:
    input:
        zone_source,
    output:
        zones=expand("results/zones/{level}.gpkg", level=LEVELS),
        nesting="results/zones/nesting.csv",
        grid="results/zones/grid.json",
    params:
        zones=config["zones"],
        crs=config["crs"],
        resolution=config["resolution"],
    log:
        "logs/prepare_zones.log",
    conda:
        ENV
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
    script:
        "../scripts/zone_coverage.py"
