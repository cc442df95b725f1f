# Scenarios: planned states of a baseline year through the same models and zonal engine (config scenarios).
# Each scenario is its own {scenario} jobs; the summary gathers them. Input functions in common.smk.
# Tiled (tiles.size_px set): the burn's whole-scene part once (scenario_plan: states, polygons, models, record),
# the rasters and the carbon map per {scenario}×{tile}, then mosaics that write the untiled rules' files.
from greensink.scenario.demo import DEMO_LAYERS as DEMO_SCENARIO_LAYERS

if SCENARIOS:

    wildcard_constraints:
        scenario=SCENARIO_PATTERN,

    if not TILED:

        rule scenario_inputs:
            input:
                changes=scenario_changes,
                grid="results/zones/grid.json",
                ndvi=scenario_baseline("ndvi.tif"),
                fvc=scenario_baseline("fvc.tif"),
                canopy=scenario_baseline("canopy.tif"),
                height=scenario_baseline("height.tif"),
                vegetation=scenario_baseline("vegetation.tif"),
                classes=scenario_baseline("vegetation_class.tif"),
                vegetation_stats=scenario_baseline("vegetation.json"),
                models=scenario_baseline("model/models.json"),
                fractions=scenario_fractions,
                greenspace=scenario_greenspace,
            output:
                ndvi="results/scenarios/{scenario}/ndvi.tif",
                fvc="results/scenarios/{scenario}/fvc.tif",
                canopy="results/scenarios/{scenario}/canopy.tif",
                height="results/scenarios/{scenario}/height.tif",
                vegetation="results/scenarios/{scenario}/vegetation.tif",
                tree_shrub="results/scenarios/{scenario}/tree_shrub.tif",
                fractions="results/scenarios/{scenario}/fractions.tif",
                changes="results/scenarios/{scenario}/changes.tif",
                greenspace="results/scenarios/{scenario}/greenspace.gpkg",
                models="results/scenarios/{scenario}/models.json",
                record="results/scenarios/{scenario}/inputs.json",
            log:
                "logs/scenarios/{scenario}_inputs.log",
            conda:
                ENV
            resources:
                mem_mb=job_mem_mb,
                runtime=job_runtime,
            params:
                scenario=scenario_params,
                years=scenario_years,  # the baseline year only: adding a year reruns no scenario of an earlier one
                types=TYPES,
                type_column=(GREENSPACE or {}).get("type_column", "type"),
                typed_land=bool(GREENSPACE),
                vegetation=config["vegetation"],
                compress=config["output"]["compress"],
            script:
                "../scripts/scenario_inputs.py"

    else:

        rule scenario_plan:
            input:
                changes=scenario_changes,
                grid="results/zones/grid.json",
                ndvi=scenario_baseline("ndvi.tif"),
                fvc=scenario_baseline("fvc.tif"),
                canopy=scenario_baseline("canopy.tif"),
                height=scenario_baseline("height.tif"),
                vegetation=scenario_baseline("vegetation.tif"),
                classes=scenario_baseline("vegetation_class.tif"),
                vegetation_stats=scenario_baseline("vegetation.json"),
                models=scenario_baseline("model/models.json"),
                fractions=scenario_fractions,
                greenspace=scenario_greenspace,
            output:
                greenspace="results/scenarios/{scenario}/greenspace.gpkg",
                models="results/scenarios/{scenario}/models.json",
                record="results/scenarios/{scenario}/inputs.json",
                plan="results/scenarios/{scenario}/tiles/plan.json",
            log:
                "logs/scenarios/{scenario}_plan.log",
            conda:
                ENV
            resources:
                mem_mb=job_mem_mb,
                runtime=job_runtime,
            params:
                scenario=scenario_params,
                years=scenario_years,
                types=TYPES,
                type_column=(GREENSPACE or {}).get("type_column", "type"),
                typed_land=bool(GREENSPACE),
                vegetation=config["vegetation"],
            script:
                "../scripts/scenario_plan.py"

        rule scenario_inputs_tile:
            input:
                grid="results/zones/grid.json",
                plan="results/scenarios/{scenario}/tiles/plan.json",
                ndvi=scenario_baseline("ndvi.tif"),
                fvc=scenario_baseline("fvc.tif"),
                canopy=scenario_baseline("canopy.tif"),
                height=scenario_baseline("height.tif"),
                vegetation=scenario_baseline("vegetation.tif"),
                classes=scenario_baseline("vegetation_class.tif"),
                fractions=scenario_fractions,
            output:
                ndvi="results/scenarios/{scenario}/tiles/ndvi_{tile}.tif",
                fvc="results/scenarios/{scenario}/tiles/fvc_{tile}.tif",
                canopy="results/scenarios/{scenario}/tiles/canopy_{tile}.tif",
                height="results/scenarios/{scenario}/tiles/height_{tile}.tif",
                vegetation="results/scenarios/{scenario}/tiles/vegetation_{tile}.tif",
                tree_shrub="results/scenarios/{scenario}/tiles/tree_shrub_{tile}.tif",
                fractions="results/scenarios/{scenario}/tiles/fractions_{tile}.tif",
                changes="results/scenarios/{scenario}/tiles/changes_{tile}.tif",
            log:
                "logs/scenarios/{scenario}/inputs_{tile}.log",
            conda:
                ENV
            threads: 1
            resources:
                mem_mb=job_mem_mb,
                runtime=job_runtime,
            params:
                scenario=scenario_params,
                years=scenario_years,
                types=TYPES,
                type_column=(GREENSPACE or {}).get("type_column", "type"),
                compress=config["output"]["compress"],
                size_px=TILE_PX,
            script:
                "../scripts/scenario_inputs_tile.py"

        rule scenario_inputs_mosaic:
            input:
                ndvi=scenario_tiles("ndvi"),
                fvc=scenario_tiles("fvc"),
                canopy=scenario_tiles("canopy"),
                height=scenario_tiles("height"),
                vegetation=scenario_tiles("vegetation"),
                tree_shrub=scenario_tiles("tree_shrub"),
                fractions=scenario_tiles("fractions"),
                changes=scenario_tiles("changes"),
                grid="results/zones/grid.json",
            output:
                ndvi="results/scenarios/{scenario}/ndvi.tif",
                fvc="results/scenarios/{scenario}/fvc.tif",
                canopy="results/scenarios/{scenario}/canopy.tif",
                height="results/scenarios/{scenario}/height.tif",
                vegetation="results/scenarios/{scenario}/vegetation.tif",
                tree_shrub="results/scenarios/{scenario}/tree_shrub.tif",
                fractions="results/scenarios/{scenario}/fractions.tif",
                changes="results/scenarios/{scenario}/changes.tif",
            log:
                "logs/scenarios/{scenario}_inputs_mosaic.log",
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
                "../scripts/scenario_inputs_mosaic.py"

    if not TILED:

        rule scenario_carbon:
            input:
                models="results/scenarios/{scenario}/models.json",
                predictors=expand("results/scenarios/{{scenario}}/{predictor}.tif", predictor=PREDICTORS),
                fractions="results/scenarios/{scenario}/fractions.tif",
                ndvi_se=scenario_baseline("ndvi_se.tif"),
            output:
                carbon="results/scenarios/{scenario}/carbon.tif",
                stats="results/scenarios/{scenario}/carbon.json",
            log:
                "logs/scenarios/{scenario}_carbon.log",
            conda:
                ENV
            resources:
                mem_mb=job_mem_mb,
                runtime=job_runtime,
            params:
                types=scenario_types,
                year=scenario_year,
                predictors=PREDICTORS,
                interval_pct=config["carbon"]["interval_pct"],
                compress=config["output"]["compress"],
                uncertainty=config.get("uncertainty", {}),
                seed=config["seed"],
            script:
                "../scripts/scenario_carbon.py"

    else:

        rule scenario_carbon_tile:
            input:
                models="results/scenarios/{scenario}/models.json",
                predictors=expand("results/scenarios/{{scenario}}/{predictor}.tif", predictor=PREDICTORS),
                fractions="results/scenarios/{scenario}/fractions.tif",
                ndvi_se=scenario_baseline("ndvi_se.tif"),
            output:
                carbon="results/scenarios/{scenario}/tiles/carbon_{tile}.tif",
                stats="results/scenarios/{scenario}/tiles/carbon_{tile}.json",
            log:
                "logs/scenarios/{scenario}/carbon_{tile}.log",
            conda:
                ENV
            threads: 1
            resources:
                mem_mb=job_mem_mb,
                runtime=job_runtime,
            params:
                types=scenario_types,
                year=scenario_year,
                predictors=PREDICTORS,
                interval_pct=config["carbon"]["interval_pct"],
                compress=config["output"]["compress"],
                uncertainty=config.get("uncertainty", {}),
                seed=config["seed"],
                size_px=TILE_PX,
            script:
                "../scripts/scenario_carbon.py"

        rule scenario_carbon_mosaic:
            input:
                tiles=scenario_tiles("carbon"),
                stats=scenario_tiles("carbon", "json"),
                grid="results/zones/grid.json",
            output:
                carbon="results/scenarios/{scenario}/carbon.tif",
                stats="results/scenarios/{scenario}/carbon.json",
            log:
                "logs/scenarios/{scenario}_carbon_mosaic.log",
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
                "../scripts/scenario_carbon_mosaic.py"

    if not TILED:

        rule scenario_zones:
            input:
                zones=expand("results/zones/{level}.gpkg", level=LEVELS),
                coverage=expand("results/zones/{level}_coverage.npz", level=LEVELS),
                grid="results/zones/grid.json",
                ndvi=scenario_baseline("ndvi.tif"),
                fvc=scenario_baseline("fvc.tif"),
                canopy=scenario_baseline("canopy.tif"),
                height=scenario_baseline("height.tif"),
                vegetation=scenario_baseline("vegetation.tif"),
                classes=scenario_baseline("vegetation_class.tif"),
                ndvi_se=scenario_baseline("ndvi_se.tif"),
                models=scenario_baseline("model/models.json"),
                fractions=scenario_fractions,
                greenspace=scenario_greenspace,
                baseline_tables=scenario_baseline_tables,
                baseline_draws=scenario_baseline_draws,
                fill=scenario_baseline("fill.json"),  # rule fill: the baseline year's fill of unobserved typed land
                s_ndvi="results/scenarios/{scenario}/ndvi.tif",
                s_fvc="results/scenarios/{scenario}/fvc.tif",
                s_canopy="results/scenarios/{scenario}/canopy.tif",
                s_height="results/scenarios/{scenario}/height.tif",
                s_vegetation="results/scenarios/{scenario}/vegetation.tif",
                s_tree_shrub="results/scenarios/{scenario}/tree_shrub.tif",
                s_fractions="results/scenarios/{scenario}/fractions.tif",
                s_changes="results/scenarios/{scenario}/changes.tif",
                s_greenspace="results/scenarios/{scenario}/greenspace.gpkg",
                s_models="results/scenarios/{scenario}/models.json",
                population=optional_population,
                residential=optional_residential,
                targets=config["targets"],
            output:
                zones=expand("results/scenarios/{{scenario}}/zones/{level}.gpkg", level=LEVELS),
                csv=report(
                    expand("results/scenarios/{{scenario}}/zones/{level}.csv", level=LEVELS),
                    caption="../report/scenario_table.rst",
                    category="情景 Scenarios",
                    subcategory="{scenario}",
                ),
                parquet=expand("results/scenarios/{{scenario}}/zones/{level}.parquet", level=LEVELS),
                totals="results/scenarios/{scenario}/totals.csv",
            log:
                "logs/scenarios/{scenario}_zones.log",
            conda:
                ENV
            resources:
                mem_mb=job_mem_mb,
                runtime=job_runtime,
            params:
                scenario=scenario_params,
                years=scenario_years,  # the baseline year only: adding a year reruns no scenario of an earlier one
                levels=LEVELS,
                types=TYPES,
                greenspace=GREENSPACE,
                population=config.get("population"),
                park_service=config["indicators"]["park_service"],
                interval_pct=config["carbon"]["interval_pct"],
                min_observed_pct=config["carbon"]["min_observed_pct"],
                uncertainty=config.get("uncertainty", {}),
                seed=config["seed"],
            script:
                "../scripts/scenario_zones.py"

    else:

        # one job per {scenario}×{tile}: the scenario's zone partial sums over the tile (greensink.scenario.tiles)
        rule scenario_zones_tile:
            input:
                coverage=expand("results/zones/tiles/{level}_coverage_{{tile}}.npz", level=LEVELS),
                grid="results/zones/grid.json",
                ndvi=scenario_baseline("ndvi.tif"),
                fvc=scenario_baseline("fvc.tif"),
                canopy=scenario_baseline("canopy.tif"),
                height=scenario_baseline("height.tif"),
                vegetation=scenario_baseline("vegetation.tif"),
                classes=scenario_baseline("vegetation_class.tif"),
                fractions=scenario_fractions,
                ndvi_se=scenario_baseline("ndvi_se.tif"),
                models=scenario_baseline("model/models.json"),
                fill=scenario_baseline("fill.json"),
                s_ndvi="results/scenarios/{scenario}/ndvi.tif",
                s_fvc="results/scenarios/{scenario}/fvc.tif",
                s_canopy="results/scenarios/{scenario}/canopy.tif",
                s_height="results/scenarios/{scenario}/height.tif",
                s_vegetation="results/scenarios/{scenario}/vegetation.tif",
                s_tree_shrub="results/scenarios/{scenario}/tree_shrub.tif",
                s_fractions="results/scenarios/{scenario}/fractions.tif",
                s_changes="results/scenarios/{scenario}/changes.tif",
                s_models="results/scenarios/{scenario}/models.json",
            output:
                sums="results/scenarios/{scenario}/tiles/zones_{tile}.npz",
            log:
                "logs/scenarios/{scenario}/zones_{tile}.log",
            conda:
                ENV
            threads: 1
            resources:
                mem_mb=job_mem_mb,
                runtime=job_runtime,
            params:
                scenario=scenario_params,
                years=scenario_years,
                levels=LEVELS,
                types=TYPES,
                uncertainty=config.get("uncertainty", {}),
                seed=config["seed"],
                size_px=TILE_PX,
            script:
                "../scripts/scenario_zones_tile.py"

        # the gather: the tiles' sums added up and the tables finished, with no raster or coverage matrix read
        rule scenario_zones:
            input:
                zones=expand("results/zones/{level}.gpkg", level=LEVELS),
                sums=scenario_tiles("zones", "npz"),
                grid="results/zones/grid.json",
                models=scenario_baseline("model/models.json"),
                fill=scenario_baseline("fill.json"),
                baseline_tables=scenario_baseline_tables,
                baseline_draws=scenario_baseline_draws,
                s_greenspace="results/scenarios/{scenario}/greenspace.gpkg",
                s_models="results/scenarios/{scenario}/models.json",
                population=optional_population,
                residential=optional_residential,
                targets=config["targets"],
            output:
                zones=expand("results/scenarios/{{scenario}}/zones/{level}.gpkg", level=LEVELS),
                csv=report(
                    expand("results/scenarios/{{scenario}}/zones/{level}.csv", level=LEVELS),
                    caption="../report/scenario_table.rst",
                    category="情景 Scenarios",
                    subcategory="{scenario}",
                ),
                parquet=expand("results/scenarios/{{scenario}}/zones/{level}.parquet", level=LEVELS),
                totals="results/scenarios/{scenario}/totals.csv",
            log:
                "logs/scenarios/{scenario}_zones.log",
            conda:
                ENV
            threads: 1
            resources:
                mem_mb=job_mem_mb,
                runtime=job_runtime,
            params:
                scenario=scenario_params,
                years=scenario_years,
                levels=LEVELS,
                types=TYPES,
                greenspace=GREENSPACE,
                population=config.get("population"),
                park_service=config["indicators"]["park_service"],
                interval_pct=config["carbon"]["interval_pct"],
                min_observed_pct=config["carbon"]["min_observed_pct"],
                uncertainty=config.get("uncertainty", {}),
                seed=config["seed"],
                size_px=TILE_PX,
            script:
                "../scripts/scenario_zones_gather.py"

    rule scenario_summary:
        input:
            tables=expand("results/scenarios/{scenario}/zones/{level}.gpkg", scenario=list(SCENARIOS), level=LEVELS),
            totals=expand("results/scenarios/{scenario}/totals.csv", scenario=list(SCENARIOS)),
            baseline_tables=expand("results/{year}/zones/{level}.gpkg", year=SCENARIO_YEARS, level=LEVELS),
            targets=config["targets"],
        output:
            summary=report(
                "results/scenarios/summary.csv",
                caption="../report/scenario_summary.rst",
                category="情景 Scenarios",
                subcategory="比较 comparison",
            ),
        log:
            "logs/scenarios/summary.log",
        conda:
            ENV
        resources:
            mem_mb=job_mem_mb,
            runtime=job_runtime,
        params:
            scenarios=list(SCENARIOS),
            baseline_years=SCENARIO_YEARS,
            levels=LEVELS,
        script:
            "../scripts/scenario_summary.py"


# The demo city's scenario layers (the demo config's scenarios and config/examples/demo-scenarios.yaml use them).
if DEMO:

    rule demo_scenario_layers:
        input:
            parcels=f"{config['demo']['out_dir']}/zones/parcel.gpkg",
            districts=f"{config['demo']['out_dir']}/zones/district.gpkg",
            greenspace=f"{config['demo']['out_dir']}/greenspace.gpkg",
        output:
            expand(f"{config['demo']['out_dir']}/scenarios/{{name}}.gpkg", name=DEMO_SCENARIO_LAYERS),
        log:
            "logs/scenarios/demo_layers.log",
        conda:
            ENV
        resources:
            mem_mb=job_mem_mb,
            runtime=job_runtime,
        params:
            names=DEMO_SCENARIO_LAYERS,
        script:
            "../scripts/demo_scenario_layers.py"
