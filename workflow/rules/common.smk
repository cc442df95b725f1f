# Input functions and path lists for the rules. Plumbing only: no arithmetic.
from greensink.config import change_pairs, demo_paths, greenspace_inputs

ENV = "../../envs/greensink.yaml"
LEVELS = [z["level"] for z in config["zones"]]
ZONES = {z["level"]: z for z in config["zones"]}
YEARS = sorted(config["years"])
PAIRS = change_pairs(config)
TYPES = list(config["greenspace"]["types"])
DEMO = config["imagery"]["source"] == "demo"


wildcard_constraints:
    year=r"\d{4}",
    y0=r"\d{4}",
    y1=r"\d{4}",
    level="|".join(LEVELS),


def zone_source(wildcards):
    return [ZONES[level]["path"] for level in LEVELS]


def greenspace_source(wildcards):
    return greenspace_inputs(config)


def optional_population(wildcards):
    return [config["population"]["path"]] if config.get("population") else []


def optional_residential(wildcards):
    return [config["residential"]["path"]] if config.get("residential") else []


def year_zone_tables(year):
    return [f"results/{year}/zones/{level}.gpkg" for level in LEVELS]


def demo_manifest(wildcards):
    return [demo_paths(config)["manifest"]] if DEMO else []


def final_outputs():
    out = []
    for year in YEARS:
        out += [f"results/{year}/{name}.tif" for name in ("ndvi", "fvc", "canopy", "carbon")]
        out += [f"results/{year}/model/models.json"]
        out += year_zone_tables(year)
    for y0, y1 in PAIRS:
        out += [f"results/change/{y0}_{y1}/sink.tif"]
        out += [f"results/change/{y0}_{y1}/zones/{level}.gpkg" for level in LEVELS]
    out += ["results/report.html", "results/provenance.json"]
    out += [f"results/{year}/carbon.qml" for year in YEARS]  # QGIS styles (rule qgis_styles)
    return out
