# Targets: the final zone tables of a year, its indicators against the plan's targets (config targets).
# Apart from rule aggregate so that editing a target reruns this and the report only.


rule targets:
    input:
        indicators=expand("results/{{year}}/zones/{level}.indicators.parquet", level=LEVELS),
        targets=config["targets"],
    output:
        gpkg=expand("results/{{year}}/zones/{level}.gpkg", level=LEVELS),
        csv=report(
            expand("results/{{year}}/zones/{level}.csv", level=LEVELS),
            caption="../report/zone_table.rst",
            category="分区统计表 Zone tables",
            subcategory="{year}",
        ),
        parquet=expand("results/{{year}}/zones/{level}.parquet", level=LEVELS),
    log:
        "logs/targets/{year}.log",
    conda:
        ENV
    resources:
        mem_mb=job_mem_mb,
        runtime=job_runtime,
    params:
        levels=LEVELS,
    script:
        "../scripts/targets.py"
