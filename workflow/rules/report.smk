# Report: provenance record and the self-contained planner report.
from greensink.provenance import recorded_config


rule provenance:
    input:
        zones=zone_source,
        scenes=expand("results/{year}/ingest/scenes.json", year=YEARS),
        greenspace=greenspace_source,
        plots=optional_plots,
        trees=tree_inventory,
        allometry=allometry_params,
        coefficients=config["coefficients"],
        population=optional_population,
        demo=demo_manifest,
        targets=config["targets"],  # checksummed: a target edit reruns provenance (and so the report)
        models=expand("results/{year}/model/models.json", year=YEARS),
    output:
        report("results/provenance.json", caption="../report/provenance.rst", category="数据来源 Provenance"),
    log:
        "logs/provenance.log",
    conda:
        ENV
    resources:
        mem_mb=job_mem_mb,
        runtime=job_runtime,
    params:
        # the portable config without its scenarios: a plan added or edited reruns its own jobs, not this record
        # (each plan's record is results/scenarios/{scenario}/inputs.json, rule scenario_inputs); a moved run neither
        config=recorded_config(config, config["workdir"]),
    script:
        "../scripts/provenance.py"


rule report:
    input:
        tables=[year_zone_tables(year) for year in YEARS],
        change=[f"results/change/{y0}_{y1}/zones/{level}.gpkg" for y0, y1 in PAIRS for level in LEVELS],
        models=expand("results/{year}/model/models.json", year=YEARS),
        carbon=expand("results/{year}/carbon.tif", year=YEARS),
        sinks=[f"results/change/{y0}_{y1}/sink.tif" for y0, y1 in PAIRS],
        # time series (issue 12) and zoning (issue 13): each part only where the config makes it
        trend=report_trend,
        transitions=report_transitions,
        lost_patches=[f"results/change/{y0}_{y1}/lost_patches.csv" for y0, y1 in PAIRS],
        attribution=[f"results/change/{y0}_{y1}/attribution.tif" for y0, y1 in PAIRS],
        zoning=report_zoning,
        scenarios=report_scenarios,  # only with config scenarios: summary and the first two levels' zone tables
        provenance="results/provenance.json",
        grid="results/zones/grid.json",
        nesting="results/zones/nesting.csv",
        targets=config["targets"],
        template=TEMPLATE,
    output:
        report("results/report.html", caption="../report/planner_report.rst", category="规划报告 Planner report"),
    log:
        "logs/report.log",
    conda:
        ENV
    resources:
        mem_mb=job_mem_mb,
        runtime=job_runtime,
    params:
        years=YEARS,
        pairs=PAIRS,
        levels=LEVELS,
        types=TYPE_NAMES,
        interval_pct=config["carbon"]["interval_pct"],
    script:
        "../scripts/report.py"


# Quick-look PNG maps beside the GeoTIFFs, for Snakemake's report (snakemake --report report.zip).
rule report_maps:
    input:
        carbon=expand("results/{year}/carbon.tif", year=YEARS),
        sinks=[f"results/change/{y0}_{y1}/sink.tif" for y0, y1 in PAIRS],
        grid="results/zones/grid.json",
        boundaries=f"results/zones/{OUTLINE_LEVEL}.gpkg",
    output:
        carbon=[
            report(
                f"results/{year}/carbon.png",
                caption="../report/carbon_map.rst",
                category="地图 Maps",
                subcategory=str(year),
            )
            for year in YEARS
        ],
        sinks=[
            report(
                f"results/change/{y0}_{y1}/sink.png",
                caption="../report/sink_map.rst",
                category="地图 Maps",
                subcategory=f"{y0}–{y1}",
            )
            for y0, y1 in PAIRS
        ],
    log:
        "logs/report_maps.log",
    conda:
        ENV
    resources:
        mem_mb=job_mem_mb,
        runtime=job_runtime,
    params:
        years=YEARS,
        pairs=PAIRS,
    script:
        "../scripts/report_maps.py"


rule qgis_styles:
    input:
        carbon=expand("results/{year}/carbon.tif", year=YEARS),
        sinks=[f"results/change/{y0}_{y1}/sink.tif" for y0, y1 in PAIRS],
        # the scale of the zone layers' carbon_t_ha, from the tables before targets (a target edit restyles nothing)
        tables=[year_indicator_tables(year) for year in YEARS],
        change=[f"results/change/{y0}_{y1}/zones/{level}.gpkg" for y0, y1 in PAIRS for level in LEVELS],
        trend=QGIS_TREND,
        trend_tables=QGIS_TREND_TABLES,
        lost_patches=QGIS_LOST,
    output:
        carbon=expand("results/{year}/carbon.qml", year=YEARS),
        sinks=[f"results/change/{y0}_{y1}/sink.qml" for y0, y1 in PAIRS],
        tables=[f"results/{year}/zones/{level}.qml" for year in YEARS for level in LEVELS],
        change=[f"results/change/{y0}_{y1}/zones/{level}.qml" for y0, y1 in PAIRS for level in LEVELS],
        fixed=expand("results/{year}/{name}.qml", year=YEARS, name=["ndvi", "fvc", "canopy"]),
        trend=qml(QGIS_TREND),
        trend_tables=qml(QGIS_TREND_TABLES),
        lost_patches=qml(QGIS_LOST),
        attribution=qml(QGIS_ATTRIBUTION),
        classes=qml(QGIS_CLASSES),
        zoning_tables=qml(QGIS_ZONING_TABLES),
    log:
        "logs/qgis_styles.log",
    conda:
        ENV
    resources:
        mem_mb=job_mem_mb,
        runtime=job_runtime,
    params:
        n_years=len(YEARS),
    script:
        "../scripts/qgis_styles.py"


rule qgis_project:
    input:
        rasters=expand("results/{year}/{name}.tif", year=YEARS, name=["carbon", "canopy", "fvc", "ndvi"]),
        sinks=[f"results/change/{y0}_{y1}/sink.tif" for y0, y1 in PAIRS],
        # the project names the final zone tables by path and reads none of them: ancient, so that a target
        # edit (rule targets rewrites them) does not rewrite the project
        tables=ancient([table for year in YEARS for table in year_zone_tables(year)]),
        change=[f"results/change/{y0}_{y1}/zones/{level}.gpkg" for y0, y1 in PAIRS for level in LEVELS],
        trend=QGIS_TREND + QGIS_TREND_TABLES + QGIS_CLASSES,
        attribution=QGIS_ATTRIBUTION + QGIS_LOST,
        zoning=QGIS_ZONING_RASTERS + QGIS_ZONING_TABLES,
        # with config scenarios: each plan's carbon map and zone tables (their difference_t scales the styles)
        scenario_carbon=[f"results/scenarios/{name}/carbon.tif" for name in SCENARIOS],
        scenario_tables=[f"results/scenarios/{name}/zones/{level}.gpkg" for name in SCENARIOS for level in LEVELS],
        styles=rules.qgis_styles.output,
        grid="results/zones/grid.json",
    output:
        "results/greensink.qgs",
        # the scenario layers' styles, written by this rule (greensink.qgis_project.write_scenario_styles)
        scenario_styles=[f"results/scenarios/{name}/carbon.qml" for name in SCENARIOS]
        + [f"results/scenarios/{name}/zones/{level}.qml" for name in SCENARIOS for level in LEVELS],
    log:
        "logs/qgis_project.log",
    conda:
        ENV
    resources:
        mem_mb=job_mem_mb,
        runtime=job_runtime,
    params:
        years=YEARS,
        pairs=PAIRS,
        levels=LEVELS,
        zoning=bool(ZONING),
        scenarios=[[name, s.label, s.baseline_year] for name, s in SCENARIOS.items()],
    script:
        "../scripts/qgis_project.py"
