# Input functions and path lists for the rules. Plumbing only: no arithmetic.
from greensink.workflow import (
    change_pairs,
    chm_path,
    demo_paths,
    greenspace_by_year,
    greenspace_inputs,
    greenspace_of_year,
    imagery_inputs,
    lattice_inputs,
    model_notes,
)
from greensink.config import zoning_paths
from greensink.grid import Grid
from greensink import resources as job_resources
from greensink.refresh import (
    lattice_scene_digest,
    lattice_scene_red,
    plot_rows_digest,
    plots_by_year,
    plots_path,
    scene_band_files,
    scene_rows_digest,
    scenes_table,
)
from greensink.package_data import ALLOMETRY, REPORT_TEMPLATE, file_path
from greensink.tiers import VEG, VEG_NAME
from greensink.scenario import scenarios, wildcard_pattern
from greensink.transitions import transition_pairs

ENV = "../../envs/greensink.yaml"
# greensink's own files (package data; config/ and reports/ in the checkout link to them)
ALLOMETRY_TABLE = str(file_path(ALLOMETRY))
TEMPLATE = str(file_path(REPORT_TEMPLATE))
LEVELS = [z["level"] for z in config["zones"]]
ZONES = {z["level"]: z for z in config["zones"]}
OUTLINE_LEVEL = LEVELS[1] if len(LEVELS) > 1 else LEVELS[0]  # the zones outlined on pixel maps (rule report_maps)
YEARS = sorted(config["years"])
PAIRS = change_pairs(config)
# optional inputs: without green-space types one pseudo-type VEG (tier-1 default density, greensink.tiers);
# without plots every type takes the coefficient (or default) table
GREENSPACE = config.get("greenspace") or None
# green-space types given per year (greenspace.path holds {year}): rule types runs per year (see year_types)
TYPES_BY_YEAR = greenspace_by_year(config)
PLOTS = config.get("plots") or None
TYPE_NAMES = dict(GREENSPACE["types"]) if GREENSPACE else {VEG: VEG_NAME}
TYPES = list(TYPE_NAMES)
# predictor rasters the models may use (NDVI always: it marks observed pixels), in a fixed order
MODEL_NOTES = model_notes(config)
PREDICTORS = [p for p in ("ndvi", "fvc", "canopy", "height") if p == "ndvi" or p in config["model"]["predictors"]]
DEMO = config["imagery"]["source"] == "demo"
TILE_PX = config["tiles"]["size_px"]  # None: one composite job per year over the whole grid
TILED = TILE_PX is not None


wildcard_constraints:
    year=r"\d{4}",
    y0=r"\d{4}",
    y1=r"\d{4}",
    level="|".join(LEVELS),
    tile=r"r\d+c\d+",


def zone_source(wildcards):
    return [ZONES[level]["path"] for level in LEVELS]


def greenspace_source(wildcards):
    """The green-space files of the job's year (every year's files for a job without {year}, e.g. provenance)."""
    return greenspace_inputs(config, wildcards.get("year")) if GREENSPACE else []


def greenspace_params(wildcards):
    """The greenspace section with the job's year in its paths (rule types)."""
    return greenspace_of_year(config, wildcards.get("year"))


def optional_plots(wildcards):
    """The plots file, or every year's (plots.path holding {year}, greensink.refresh.plots_path)."""
    if not PLOTS:
        return []
    return [plots_path(PLOTS, year) for year in YEARS] if plots_by_year(PLOTS) else [PLOTS["path"]]


# with a tree inventory (plots.trees) the model reads the plots with carbon from rule plot_carbon, and its draws
TREES = (PLOTS or {}).get("trees") or None


def model_plots(wildcards):
    """The plots of the year's model: its plots file as ancient, so that appending another year's plots reruns
    no model; model_plots_digest reruns the year's model when its own rows change (greensink.refresh)."""
    if not PLOTS:
        return []
    if TREES:
        return ["results/plots/plots.gpkg"]
    # the demo's plots are written with its imagery (by the demo rule, build_demo) — by time, as every demo product
    return [plots_path(PLOTS, wildcards.year)] if DEMO else [ancient(plots_path(PLOTS, wildcards.year))]


def model_plots_digest(wildcards):
    """Digest of the year's plot rows (rule model's rerun trigger); None with a tree inventory, whose plots
    come from rule plot_carbon, and for the demo, whose plots file does not exist before build_demo runs."""
    return None if TREES or DEMO else plot_rows_digest(PLOTS, wildcards.year)


def ingest_inputs(wildcards):
    """imagery_inputs of the year; a user's scenes table as ancient, with the band files of the year's rows
    as ordinary inputs (ingest_scenes_digest reruns the year when its own rows change: greensink.refresh)."""
    found = imagery_inputs(config, int(wildcards.year))
    if scenes_table(config):
        found["table"] = [ancient(t) for t in found["table"]]
        found["images"] = sorted({*found["images"], *scene_band_files(config, wildcards.year)})
    return found


def ingest_scenes_digest(wildcards):
    """Digest of the scenes table's rows of the year (rule ingest's rerun trigger, greensink.refresh)."""
    return scene_rows_digest(config, wildcards.year)


def grid_lattice_inputs(wildcards):
    """lattice_inputs; a user's scenes table as ancient, with the red file of the scene that fixes the lattice
    (the lattice_digest param reruns the grid when that scene's row changes, not when rows are appended)."""
    table = scenes_table(config)
    found = lattice_inputs(config)
    if table and lattice_scene_digest(config) is not None:
        return [ancient(f) if f == table else f for f in found] + lattice_scene_red(config)
    return found


def plot_draws(wildcards):
    return ["results/plots/plot_carbon_draws.csv", "results/plots/plot_carbon.json"] if TREES else []


def tree_inventory(wildcards):
    return [TREES["path"]] if TREES else []


def allometry_params(wildcards):
    return [TREES.get("params") or ALLOMETRY_TABLE] if TREES else []


def optional_population(wildcards):
    return [config["population"]["path"]] if config.get("population") else []


def optional_residential(wildcards):
    return [config["residential"]["path"]] if config.get("residential") else []


def anchor_models(wildcards):
    """The first reporting year's models, whose choices later years refit (model.selection first_year)."""
    if config["model"]["selection"] == "first_year" and int(wildcards.year) != YEARS[0]:
        return [f"results/{YEARS[0]}/model/models.json"]
    return []


def year_types(year):
    """The green-space type products used for ``year``: results/types/{year}/ when greenspace.path holds {year}
    (rule types runs per year), else one set results/types/ for every year. ``year_types("{year}")`` is the
    pattern rule types writes."""
    if TYPES_BY_YEAR:
        return {
            "fractions": f"results/types/{year}/fractions.tif",
            "greenspace": f"results/types/{year}/greenspace.gpkg",
            "summary": f"results/types/{year}/summary.json",
        }
    return {
        "fractions": "results/types/fractions.tif",
        "greenspace": "results/types/greenspace.gpkg",
        "summary": "results/types/summary.json",
    }


TYPES_OUT = year_types("{year}")  # the outputs of the types rule; a {year} pattern only with types given per year
TYPES_LOG = "logs/types/{year}.log" if TYPES_BY_YEAR else "logs/types.log"


def yearly_type_fractions(wildcards):
    """Every year's type fractions when the types are given per year (rule transitions), else none."""
    return [year_types(year)["fractions"] for year in YEARS] if TYPES_BY_YEAR else []


# transitions are made for each consecutive pair and, with 3 or more years, the period (first, last)
TRANSITION_PAIRS = transition_pairs(YEARS)
# green-space type transitions only where the types are given per year
TRANSITION_TYPES_RASTER = ["results/change/trend/transitions/greenspace_types.tif"] if TYPES_BY_YEAR else []
TRANSITION_TYPE_MATRICES = [
    f"results/change/trend/transitions/greenspace_matrix_{y0}_{y1}.csv"
    for y0, y1 in (TRANSITION_PAIRS if TYPES_BY_YEAR else [])
]


def series_fractions(wildcards):
    """Every reporting year's type fractions, in year order (rule trend; the same file repeated while the types
    are one layer for all years)."""
    return [year_types(year)["fractions"] for year in YEARS]


def year_fractions(wildcards):
    return year_types(wildcards.year)["fractions"]


def year_greenspace(wildcards):
    return year_types(wildcards.year)["greenspace"]


def fractions_y0(wildcards):
    return year_types(wildcards.y0)["fractions"]


def fractions_y1(wildcards):
    return year_types(wildcards.y1)["fractions"]


def optional_chm(wildcards):
    return [chm_path(config, wildcards.year)] if config["vegetation"].get("chm") else []


def year_zone_tables(year):
    return [f"results/{year}/zones/{level}.gpkg" for level in LEVELS]


def year_indicator_tables(year):
    """The zone tables before the targets, made by the aggregate rule. What reads no target column depends on
    these, so a target edit reruns only the targets rule and the report."""
    return [f"results/{year}/zones/{level}.indicators.parquet" for level in LEVELS]


def tile_ids():
    """Ids of the composite tiles, in mosaic order. The grid is made at run time from the zones,
    so this waits for checkpoint prepare_zones (Snakemake re-evaluates the DAG once it has run)."""
    grid = Grid.read(checkpoints.prepare_zones.get().output.grid)
    return [tile.id for tile in grid.tiles(TILE_PX)]


def job_mem_mb(wildcards, threads, attempt, rulename):
    """Every rule's resources mem_mb: from its tile or grid size (greensink.resources), evaluated again when
    the job is ready, once the grid exists; more on a retry. A tiled run's gathers ask at least for their zones x
    draws, once the zone layers exist (greensink.resources.job_mem_mb)."""
    return job_resources.job_mem_mb(rulename, config, dict(wildcards.items()), threads, attempt)


def job_runtime(wildcards, attempt, rulename):
    """Every rule's resources runtime (minutes), as job_mem_mb."""
    mpx = job_resources.job_mpx(config, dict(wildcards.items()))
    return job_resources.runtime_min(job_resources.cost_rule(rulename, config), mpx, attempt)


def composite_tiles(wildcards):
    return expand("results/{year}/tiles/composite_{tile}.tif", year=wildcards.year, tile=tile_ids())


def year_tiles(product, ext="tif"):
    """An input function: results/{year}/tiles/<product>_{tile}.<ext> of every tile, in mosaic order
    (the tile files of a tiled per-pixel stage, rules vegetation_mosaic and carbon_mosaic)."""

    def tiles(wildcards):
        return expand(f"results/{wildcards.year}/tiles/{product}_{{tile}}.{ext}", tile=tile_ids())

    return tiles


def pair_tiles(product, ext="tif"):
    """An input function: results/change/{y0}_{y1}/tiles/<product>_{tile}.<ext> of every tile, in mosaic order
    (the change_tile files rule change gathers in a tiled run)."""

    def tiles(wildcards):
        return expand(
            f"results/change/{wildcards.y0}_{wildcards.y1}/tiles/{product}_{{tile}}.{ext}",
            tile=tile_ids(),
        )

    return tiles


def trend_tiles(product, ext="tif"):
    """An input function: results/change/trend/tiles/<product>_{tile}.<ext> of every tile, in mosaic order
    (the trend_tile files rule trend gathers in a tiled run)."""

    def tiles(wildcards):
        return expand(f"results/change/trend/tiles/{product}_{{tile}}.{ext}", tile=tile_ids())

    return tiles


def level_coverage(wildcards):
    """The zone coverage that rules transitions and zoning_* stream over: each level's whole-grid
    matrix, or in a tiled run every tile's (results/zones/tiles/{level}_coverage_{tile}.npz, level-major, tiles
    in mosaic order; greensink.tiling.coverage_pieces), so the job holds one tile's matrices at a time."""
    if TILED:
        return expand("results/zones/tiles/{level}_coverage_{tile}.npz", level=LEVELS, tile=tile_ids())
    return expand("results/zones/{level}_coverage.npz", level=LEVELS)


def demo_manifest(wildcards):
    return [demo_paths(config)["manifest"]] if DEMO else []


# zoning (rules zoning_*): off with zoning: null; its user layers and user-raster factors (greensink.config.zoning_paths)
ZONING = config.get("zoning") or None


def zoning_open_land(wildcards):
    return [path for key, path in zoning_paths(config) if key.startswith("zoning.open_land.")]


def zoning_masks(wildcards):
    return [path for key, path in zoning_paths(config) if key.split(".")[1] in ("construction", "cropland", "red_line")]


def zoning_factor_rasters(wildcards):
    return [path for key, path in zoning_paths(config) if key.startswith("zoning.importance.")]


def zoning_outputs(year):
    """The zoning products of a year (rules zoning_canopy_gap, zoning_importance, zoning_potential)."""
    out = [f"results/{year}/zoning/{name}.json" for name in ("canopy_gap", "importance", "potential")]
    out += [f"results/{year}/zoning/{name}.{ext}" for name in ("importance", "potential") for ext in ("tif", "qml")]
    out += [
        f"results/{year}/zoning/{name}_{level}.gpkg"
        for name in ("canopy_gap", "importance", "potential")
        for level in LEVELS
    ]
    return out


def report_trend(wildcards):
    """The trend products the report shows (rule trend, made with 2 or more years); none with one year."""
    if len(YEARS) < 2:
        return []
    zones = [f"results/change/trend/zones/{level}.gpkg" for level in LEVELS]
    return zones + ["results/change/trend/trend.tif", "results/change/trend/trend.json"]


def report_transitions(wildcards):
    """The city transition matrices of every pair and the first level's transition table (rule transitions)."""
    if not TRANSITION_PAIRS:
        return []
    matrices = [f"results/change/trend/transitions/matrix_{y0}_{y1}.csv" for y0, y1 in TRANSITION_PAIRS]
    return matrices + [f"results/change/trend/transitions/{LEVELS[0]}.csv"]


def report_zoning(wildcards):
    """The last year's zoning products the report shows (the first two levels' tables); none with zoning: null."""
    if not ZONING:
        return []
    year = YEARS[-1]
    names = ["importance.tif", "potential.tif", "importance.json", "potential.json", "canopy_gap.json"]
    tables = [
        f"results/{year}/zoning/{product}_{level}.csv"
        for product in ("importance", "potential", "canopy_gap")
        for level in LEVELS[:2]
    ]
    return [f"results/{year}/zoning/{name}" for name in names] + tables


# the QGIS project's layers beyond the years' and pairs' maps (rules qgis_styles, qgis_project): the trend and the
# transitions' vegetation classes (2 or more years), each pair's attribution and lost patches, each year's zoning
QGIS_TREND = ["results/change/trend/trend.tif"] if len(YEARS) >= 2 else []
QGIS_TREND_TABLES = [f"results/change/trend/zones/{level}.gpkg" for level in LEVELS] if QGIS_TREND else []
QGIS_CLASSES = ["results/change/trend/transitions/classes.tif"] if TRANSITION_PAIRS else []
QGIS_ATTRIBUTION = [f"results/change/{y0}_{y1}/attribution.tif" for y0, y1 in PAIRS]
QGIS_LOST = [f"results/change/{y0}_{y1}/lost_patches.gpkg" for y0, y1 in PAIRS]
QGIS_ZONING_TABLES = [
    f"results/{year}/zoning/{product}_{level}.gpkg"
    for year in YEARS
    for product in ("importance", "potential", "canopy_gap")
    for level in LEVELS
    if ZONING
]
# the zoning rasters come with their own .qml (rules zoning_importance, zoning_potential)
QGIS_ZONING_RASTERS = [
    f"results/{year}/zoning/{name}.{ext}"
    for year in YEARS
    for name in ("importance", "potential")
    for ext in ("tif", "qml")
    if ZONING
]


def qml(paths):
    """The .qml style beside each of ``paths`` (QGIS's default style of a layer)."""
    return [path.rsplit(".", 1)[0] + ".qml" for path in paths]


# scenarios (config scenarios): one {scenario} per plan, on the products of its baseline year
SCENARIOS = {s.name: s for s in scenarios(config)}
SCENARIO_CONFIG = {s["name"]: s for s in config.get("scenarios") or []}
SCENARIO_PATTERN = wildcard_pattern(SCENARIOS)
SCENARIO_YEARS = sorted({s.baseline_year for s in SCENARIOS.values()})


def scenario_changes(wildcards):
    return [c.path for c in SCENARIOS[wildcards.scenario].changes]


def scenario_year(wildcards):
    return SCENARIOS[wildcards.scenario].baseline_year


def scenario_baseline(name):
    """An input function: results/{year}/<name> of the scenario's baseline year."""

    def baseline_file(wildcards):
        return f"results/{scenario_year(wildcards)}/{name}"

    return baseline_file


def scenario_fractions(wildcards):
    return year_types(scenario_year(wildcards))["fractions"]


def scenario_greenspace(wildcards):
    return year_types(scenario_year(wildcards))["greenspace"]


def scenario_baseline_tables(wildcards):
    return year_zone_tables(scenario_year(wildcards))


def scenario_baseline_draws(wildcards):
    """The baseline year's zone draws, one per level, as the aggregate job wrote them; the scenario reads them."""
    return [f"results/{scenario_year(wildcards)}/zones/{level}.draws.npz" for level in LEVELS]


def scenario_params(wildcards):
    return SCENARIO_CONFIG[wildcards.scenario]


def scenario_years(wildcards):
    """The scenario's baseline year as the years its scripts resolve it against (greensink.scenario.scenarios
    takes the last year when baseline_year is not given, which then is this one): adding a year reruns no
    scenario of an earlier baseline year."""
    return [scenario_year(wildcards)]


def scenario_types(wildcards):
    return SCENARIOS[wildcards.scenario].types(TYPES)


def scenario_tiles(product, ext="tif"):
    """An input function: results/scenarios/{scenario}/tiles/<product>_{tile}.<ext> of every tile, in mosaic order
    (the tile files of a tiled scenario stage, rules scenario_carbon_mosaic and scenario_inputs_mosaic)."""

    def tiles(wildcards):
        return expand(f"results/scenarios/{wildcards.scenario}/tiles/{product}_{{tile}}.{ext}", tile=tile_ids())

    return tiles


def report_scenarios(wildcards):
    """The scenario products the report compares: the summary and each scenario's zone tables of the first
    two levels (rules scenario_summary, scenario_zones); none without config scenarios."""
    if not SCENARIOS:
        return []
    tables = [f"results/scenarios/{name}/zones/{level}.csv" for name in SCENARIOS for level in LEVELS[:2]]
    return ["results/scenarios/summary.csv"] + tables


def scenario_outputs():
    out = [f"results/scenarios/{name}/carbon.tif" for name in SCENARIOS]
    out += [f"results/scenarios/{name}/zones/{level}.gpkg" for name in SCENARIOS for level in LEVELS]
    return out + ["results/scenarios/summary.csv"] if SCENARIOS else []


def final_outputs():
    # the demo's truth of every year: a year added to the config is missing there, so build_demo reruns
    # (Snakemake skips its params trigger while an output has no metadata yet)
    out = [f"{config['demo']['out_dir']}/truth/carbon_{year}.tif" for year in YEARS] if DEMO else []
    for year in YEARS:
        out += [f"results/{year}/{name}.tif" for name in ("ndvi", "fvc", "canopy", "carbon")]
        out += [f"results/{year}/model/models.json"]
        out += year_zone_tables(year)
    for y0, y1 in PAIRS:
        out += [f"results/change/{y0}_{y1}/sink.tif"]
        out += [f"results/change/{y0}_{y1}/zones/{level}.gpkg" for level in LEVELS]
    out += ["results/report.html", "results/provenance.json"]
    out += [f"results/{year}/carbon.png" for year in YEARS]  # quick-look maps for snakemake --report (rule report_maps)
    out += [f"results/change/{y0}_{y1}/sink.png" for y0, y1 in PAIRS]
    out += [f"results/{year}/carbon.qml" for year in YEARS]  # QGIS styles (rule qgis_styles)
    out += ["results/greensink.qgs"]  # QGIS project of every layer above (rule qgis_project)
    if len(YEARS) >= 2:  # the trend over every year (rule trend); with two years it is the pair's sink
        out += ["results/change/trend/trend.tif", "results/change/trend/trend.json"]
        out += [f"results/change/trend/zones/{level}.gpkg" for level in LEVELS]
    out += ["results/change/trend/transitions/transitions.json"]  # land transitions (rule transitions)
    if ZONING:  # canopy gap, importance classes, potential space (rules zoning_*)
        out += [path for year in YEARS for path in zoning_outputs(year)]
    out += scenario_outputs()  # only with config scenarios (rules in scenarios.smk)
    return out
