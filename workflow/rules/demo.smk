# The built-in demo city: imagery, zones, green space, plots, population and the truth.
if DEMO:

    rule build_demo:
        output:
            manifest=f"{config['demo']['out_dir']}/demo.json",
            scenes=f"{config['demo']['out_dir']}/imagery/scenes.csv",
            zones=expand(
                f"{config['demo']['out_dir']}/zones/{{level}}.gpkg", level=["city", "district", "block", "parcel"]
            ),
            greenspace=f"{config['demo']['out_dir']}/greenspace.gpkg",
            plots=f"{config['demo']['out_dir']}/plots.gpkg",
            population=f"{config['demo']['out_dir']}/population.gpkg",
            truth=expand(f"{config['demo']['out_dir']}/truth/carbon_{{year}}.tif", year=YEARS),
        log:
            "logs/build_demo.log",
        conda:
            ENV
        resources:
            mem_mb=job_mem_mb,
            runtime=job_runtime,
        params:
            demo=config["demo"],
            years=YEARS,
            crs=config["crs"],
            resolution=config["resolution"],
            season=config["season"],
            compress=config["output"]["compress"],
        script:
            "../scripts/build_demo.py"
