"""Tests of greensink.config: defaults, JSON Schema validation and the checks a schema cannot do.

Every problem must come back in one ConfigError that names the key, the value found and the fix.
"""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest

from greensink import config, workflow
from greensink.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
CONFIG_YAML = ROOT / "config" / "config.yaml"

MINIMAL = {
    "years": [2023],
    "crs": "EPSG:32651",
    "resolution": 10,
    "imagery": {"source": "demo"},
    "zones": [{"level": "city", "path": "zones/city.gpkg", "id": "zone_id"}],
    "greenspace": {"path": "greenspace.gpkg", "type_column": "type"},
    "plots": {"path": "plots.gpkg"},
}


def minimal(**changes) -> dict:
    cfg = copy.deepcopy(MINIMAL)
    cfg.update(copy.deepcopy(changes))
    return cfg


def problems_of(cfg: dict) -> str:
    with pytest.raises(ConfigError) as err:
        config.validate(cfg)
    return str(err.value)


# ----------------------------------------------------------------------------- valid configs and defaults


def test_shipped_config_validates():
    cfg = config.load(CONFIG_YAML)
    assert cfg["crs"] == "EPSG:32651"
    assert cfg["imagery"]["source"] == "demo"
    assert cfg["imagery"]["block_rows"] == 512  # default filled in
    assert [z["level"] for z in cfg["zones"]] == ["city", "district", "block", "parcel"]
    years = sorted(cfg["years"])  # the demo's years: consecutive pairs, then the period pair with 3 or more
    assert workflow.change_pairs(cfg) == list(zip(years[:-1], years[1:], strict=True)) + [(years[0], years[-1])] * (len(years) > 2)
    assert config.demo_paths(cfg)["scenes"] == "resources/demo/imagery/scenes.csv"


def test_minimal_config_gets_every_default():
    cfg = config.validate(MINIMAL)
    assert cfg["model"]["min_plots"] == 10
    assert cfg["model"]["forms"] == ["linear", "logarithmic", "power", "exponential", "ensemble"]
    assert cfg["season"] == {"start": "04-01", "end": "10-31"}
    assert cfg["seed"] == 42
    assert cfg["imagery"] == {"source": "demo", "composite": "median", "block_rows": 512, "engine": "windows",
                              "dask": {"scheduler": "threads", "processes": False, "workers": None,
                                       "memory_limit": None, "timeout_s": 10}}
    assert cfg["demo"]["out_dir"] == "resources/demo"
    assert cfg["vegetation"]["ndvi_vegetation"] == 0.2
    assert cfg["vegetation"]["ndvi_soil"] is None
    assert cfg["carbon"]["interval_pct"] == 90
    assert cfg["output"]["compress"] == "zstd"
    assert cfg["greenspace"]["park_types"] == ["G1"]
    assert sorted(cfg["greenspace"]["types"]) == ["EG", "G1", "G2", "G3", "XG"]
    assert cfg["plots"]["carbon_column"] == "carbon_t_ha"
    assert cfg["coefficients"] == "config/coefficients.csv"
    assert MINIMAL["imagery"] == {"source": "demo"}  # the input is not modified


def test_partial_section_keeps_given_values_and_fills_the_rest():
    cfg = config.validate(minimal(model={"min_plots": 5}, season={"end": "09-30"}))
    assert cfg["model"]["min_plots"] == 5
    assert cfg["model"]["cv_folds"] == 5
    assert cfg["season"] == {"start": "04-01", "end": "09-30"}


def test_local_source_with_scenes_is_valid():
    cfg = config.validate(minimal(imagery={"source": "local", "scenes": "data/scenes.csv"}))
    assert cfg["imagery"]["scenes"] == "data/scenes.csv"


def test_change_pairs_are_consecutive_sorted_years_then_the_period():
    cfg = config.validate(minimal(years=[2024, 2020, 2022]))
    assert workflow.change_pairs(cfg) == [(2020, 2022), (2022, 2024), (2020, 2024)]
    # two years: the period pair is the consecutive pair, listed once; one year: no pair
    assert workflow.change_pairs(config.validate(minimal(years=[2024, 2020]))) == [(2020, 2024)]
    assert workflow.change_pairs(config.validate(minimal(years=[2024]))) == []


# ----------------------------------------------------------------------------- schema problems


def test_misspelt_key_is_named_with_the_allowed_keys():
    cfg = minimal()
    cfg["resolutoin"] = cfg.pop("resolution")
    msg = problems_of(cfg)
    assert "'resolutoin'" in msg
    assert "unknown key" in msg
    assert "Allowed keys here:" in msg
    allowed = msg.split("Allowed keys here:")[1].split(".")[0]
    for key in ("resolution", "crs", "years", "imagery", "zones"):
        assert key in allowed
    assert "resolution: required key is missing" in msg


def test_misspelt_nested_key_is_named_at_its_place():
    msg = problems_of(minimal(imagery={"source": "demo", "compsite": "median"}))
    assert "imagery: unknown key(s) 'compsite'" in msg
    assert "Allowed keys here: block_rows, composite, dask, engine, files, profiles, scenes, source" in msg


@pytest.mark.parametrize(
    ("changes", "key", "value"),
    [
        ({"resolution": -5}, "resolution", "-5"),
        ({"resolution": 0}, "resolution", "0"),
        ({"imagery": {"source": "ftp"}}, "imagery.source", "'ftp'"),
        ({"years": []}, "years", "[]"),
        ({"years": [1900]}, "years[0]", "1900"),
        ({"output": {"compress": "jpeg"}}, "output.compress", "'jpeg'"),
        ({"zones": [{"level": "City Level", "path": "c.gpkg", "id": "zone_id"}]}, "zones[0].level", "'City Level'"),
        ({"season": {"start": "4-1", "end": "10-31"}}, "season.start", "'4-1'"),
    ],
)
def test_wrong_value_names_key_and_value(changes, key, value):
    msg = problems_of(minimal(**changes))
    line = next(line for line in msg.splitlines() if line.strip().startswith(f"- {key}:"))
    assert f"got {value}" in line
    assert "Fix:" in line  # the key's schema description tells what is expected


def test_missing_required_key_is_named_with_its_description():
    cfg = minimal()
    del cfg["crs"]
    msg = problems_of(cfg)
    assert "crs: required key is missing" in msg
    assert "Projected CRS in metres" in msg


def test_several_problems_are_reported_in_one_error():
    cfg = minimal(resolution=-5, imagery={"source": "ftp"}, years=[])
    cfg["resolutoin"] = 10
    msg = problems_of(cfg)
    lines = [line for line in msg.splitlines() if line.startswith("  - ")]
    assert len(lines) == 4
    for fragment in ("'resolutoin'", "resolution: got -5", "imagery.source: got 'ftp'", "years: got []"):
        assert fragment in msg


# ----------------------------------------------------------------------------- checks beyond the schema


def test_geographic_crs_is_refused():
    msg = problems_of(minimal(crs="EPSG:4326"))
    assert "crs:" in msg and "EPSG:4326" in msg
    assert "geographic" in msg and "projected" in msg


def test_impossible_season_day_is_refused():
    msg = problems_of(minimal(season={"start": "02-30", "end": "10-31"}))
    assert "season.start" in msg and "'02-30'" in msg
    assert "MM-DD" in msg


def test_local_source_without_scenes_is_refused():
    msg = problems_of(minimal(imagery={"source": "local"}))
    assert "imagery.scenes" in msg and "local" in msg


def test_unknown_park_type_is_refused():
    msg = problems_of(minimal(greenspace={"path": "g.gpkg", "type_column": "type", "park_types": ["G1", "P9"]}))
    assert "greenspace.park_types" in msg and "'P9'" in msg
    assert "G1" in msg  # lists the configured types
    assert "'G1' is not a type" not in msg


def test_duplicate_zone_level_is_refused():
    zones = [
        {"level": "city", "path": "a.gpkg", "id": "zone_id"},
        {"level": "city", "path": "b.gpkg", "id": "zone_id"},
    ]
    msg = problems_of(minimal(zones=zones))
    assert "zones" in msg and "'city'" in msg


def test_several_semantic_problems_are_reported_in_one_error():
    # '04-31' matches the MM-DD pattern of the schema but is not a calendar day
    msg = problems_of(minimal(crs="EPSG:4326", season={"start": "02-30", "end": "04-31"}, imagery={"source": "local"}))
    lines = [line for line in msg.splitlines() if line.startswith("  - ")]
    assert len(lines) == 4
    assert "crs:" in msg and "season.start" in msg and "season.end" in msg and "imagery.scenes" in msg


def test_load_reports_invalid_yaml_with_the_path(tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text("years: [2023\ncrs: EPSG:32651\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="config.yaml: not valid YAML"):
        config.load(bad)


def test_load_of_an_empty_file_lists_the_required_keys(tmp_path):
    empty = tmp_path / "config.yaml"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        config.load(empty)
    for key in ("years", "crs", "resolution", "imagery", "zones"):
        assert f"{key}: required key is missing" in str(err.value)
    for key in ("greenspace", "plots"):  # optional: carbon then comes from a table (tier 1 or 2)
        assert f"{key}: required key is missing" not in str(err.value)


# ----------------------------------------------------------------------------- the schema documents itself


def _property_schemas(node, path="") -> list[tuple[str, dict]]:
    """Every (dotted path, schema) of a named property, recursively through objects and array items."""
    found: list[tuple[str, dict]] = []
    if not isinstance(node, dict):
        return found
    for name, sub in node.get("properties", {}).items():
        here = f"{path}.{name}" if path else name
        found.append((here, sub))
        found += _property_schemas(sub, here)
    if isinstance(node.get("items"), dict):
        found += _property_schemas(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found += _property_schemas(node["additionalProperties"], f"{path}.*")
    for keyword in ("anyOf", "oneOf", "allOf"):
        for option in node.get(keyword, []):
            found += _property_schemas(option, path)
    return found


def test_every_schema_property_has_a_description():
    schema = config.load_schema()
    props = _property_schemas(schema)
    assert len(props) > 40  # the walk reached nested sections and zones[] items
    assert "zones[].level" in dict(props)
    undocumented = [p for p, sub in props if not str(sub.get("description", "")).strip()]
    assert undocumented == [], f"schema properties without a description: {undocumented}"


def test_every_schema_default_is_valid_against_its_own_property():
    # a default that breaks its own schema would make every config that omits the key fail
    schema = config.load_schema()
    with_default = [(p, sub) for p, sub in _property_schemas(schema) if "default" in sub]
    assert len(with_default) > 20
    bad = [p for p, sub in with_default if not jsonschema.Draft202012Validator(sub).is_valid(sub["default"])]
    assert bad == []


def test_schema_and_semantic_problems_are_reported_together():
    # a misspelt key (schema) and a geographic CRS (semantic check) in one config: both named at once
    cfg = minimal(crs="EPSG:4326")
    cfg["resolutoin"] = 10
    text = problems_of(cfg)
    assert "resolutoin" in text
    assert "crs" in text and "geographic" in text


def test_greenspace_needs_polygons_or_a_raster_with_its_class_table():
    both = minimal(greenspace={"path": "g.gpkg", "type_column": "type", "raster": "lc.tif", "class_table": "c.csv"})
    assert "not both" in problems_of(both)
    assert "not neither" in problems_of(minimal(greenspace={"type_column": "type"}))
    assert "class_table" in problems_of(minimal(greenspace={"raster": "lc.tif"}))
    cfg = config.validate(minimal(greenspace={"raster": "lc.tif", "class_table": "c.csv"}))
    assert workflow.greenspace_inputs(cfg) == ["lc.tif", "c.csv"]


# ----------------------------------------------------------------------------- values from snakemake --config


def test_command_line_mapping_and_list_are_read_as_yaml():
    # snakemake --config reads tiles='{size_px: 128}' with YAML's base loader: a mapping of strings;
    # a value that base loader cannot read arrives as the whole string. Both validate like the file would.
    from snakemake.cli import parse_config

    given = parse_config(["tiles={size_px: 128}", "years=[2023, 2024]", "model={n_bootstrap: 60, min_plots: 4}"])
    assert given["tiles"] == {"size_px": "128"} and given["years"] == ["2023", "2024"]  # what Snakemake passes
    cfg = config.validate({**MINIMAL, **given})
    assert cfg["tiles"] == {"size_px": 128} and cfg["years"] == [2023, 2024]
    assert cfg["model"]["n_bootstrap"] == 60 and cfg["model"]["min_plots"] == 4
    cfg = config.validate(minimal(tiles="{size_px: 128}", years="[2023]", seed="7"))  # whole strings, e.g. from the API
    assert cfg["tiles"] == {"size_px": 128} and cfg["years"] == [2023] and cfg["seed"] == 7
    assert config.validate(minimal(tiles={"size_px": "null"}))["tiles"] == {"size_px": None}


def test_strings_are_kept_where_the_schema_takes_strings_or_the_yaml_has_another_type():
    cfg = config.validate(minimal(season={"start": "04-01", "end": "10-31"}, crs="EPSG:32651"))
    assert cfg["season"] == {"start": "04-01", "end": "10-31"}
    parsed, problems = config.parse_strings({"tiles": "128", "years": "2023", "crs": "[1]", "imagery": {"stac": {
        "profile": "{default: x}"}}}, config.load_schema())
    assert parsed["tiles"] == "128" and parsed["years"] == "2023"  # YAML of another type: left for the schema error
    assert parsed["crs"] == "[1]" and parsed["imagery"]["stac"]["profile"] == "{default: x}"  # string allowed there
    assert problems == {}
    msg = problems_of(minimal(tiles="128"))
    assert "tiles: got '128'; it is not of type 'object'" in msg


def test_command_line_value_that_is_not_yaml_is_named_once_with_the_fix():
    msg = problems_of(minimal(tiles="{size_px: 128", years="[2023"))
    lines = [line for line in msg.splitlines() if line.startswith("  - ")]
    assert len(lines) == 2  # one line per key, no second schema error for the same value
    tiles = next(line for line in lines if line.startswith("  - tiles:"))
    assert "got '{size_px: 128', which is not valid YAML" in tiles and "Give a YAML mapping" in tiles
    assert "--config tiles='{size_px: 2048}'" in tiles
    assert any(line.startswith("  - years: got '[2023', which is not valid YAML") and "YAML list" in line for line in lines)


@pytest.mark.workflow
def test_snakemake_dry_run_takes_tiles_from_the_command_line(tmp_path):
    from test_workflow import small_config, snakemake

    small_config(tmp_path)
    assert "mosaic" not in snakemake(tmp_path, "-n").stdout  # untiled by default
    dry = snakemake(tmp_path, "-n", "--config", "tiles={size_px: 128}", "years=[2023, 2024]")
    assert "mosaic" in dry.stdout  # tiled: the composite is a mosaic of tiles
    bad = snakemake(tmp_path, "-n", "--config", "tiles={size_px: 128", check=False)
    assert bad.returncode != 0
    assert "tiles: got '{size_px: 128', which is not valid YAML" in bad.stdout + bad.stderr


# ----------------------------------------------------------------------------- model predictors and the CHM


def test_height_predictor_needs_a_canopy_height_model():
    msg = problems_of(minimal(model={"predictors": ["ndvi", "height"]}))
    assert "model.predictors lists height, but vegetation.chm is not set" in msg
    ok = config.validate(minimal(model={"predictors": ["ndvi", "height"]}, vegetation={"chm": {"path": "chm.tif"}}))
    assert ok["model"]["predictors"] == ["ndvi", "height"] and ok["model"]["bootstrap"] == "plots"


def test_chm_path_per_year_and_the_static_chm_note():
    one = config.validate(minimal(years=[2023, 2024], model={"predictors": ["ndvi", "height"]},
                                  vegetation={"chm": {"path": "data/chm.tif"}}))
    assert workflow.chm_path(one, 2024) == "data/chm.tif"
    (note,) = workflow.model_notes(one)
    assert "one canopy height model for every year" in note and "chm_{year}.tif" in note
    per_year = config.validate(minimal(years=[2023, 2024], model={"predictors": ["ndvi", "height"]},
                                       vegetation={"chm": {"path": "data/chm_{year}.tif"}}))
    assert workflow.chm_path(per_year, 2024) == "data/chm_2024.tif" and workflow.model_notes(per_year) == []
    # one year, or height not a predictor: nothing to warn about
    assert workflow.model_notes(config.validate(minimal(vegetation={"chm": {"path": "c.tif"}}))) == []
    assert workflow.model_notes(config.validate(minimal(years=[2023, 2024], vegetation={"chm": {"path": "c.tif"}}))) == []
    assert workflow.chm_path(config.validate(minimal()), 2023) is None


def test_static_chm_note_names_canopy_too():
    cfg = config.validate(minimal(years=[2023, 2024], model={"predictors": ["ndvi", "canopy"]},
                                  vegetation={"chm": {"path": "data/chm.tif"}}))
    (note,) = workflow.model_notes(cfg)
    assert note.startswith("canopy comes from one canopy height model for every year")
    cfg["model"]["predictors"] = ["ndvi", "canopy", "height"]
    assert workflow.model_notes(cfg)[0].startswith("height and canopy come from one canopy height model")
