"""Rule ingest: the scenes of one year's season, checked, with their harmonisation and clear share.

Inputs: the scenes table (CSV), results/zones/grid.json.
Outputs: results/{year}/ingest/scenes.json.
"""

from greensink import io
from greensink.grid import Grid
from greensink.ingest import check_scene, in_season, read_scenes_table, scene_clear_fraction
from greensink.logs import setup

log = setup(snakemake.log[0])  # noqa: F821
year = int(snakemake.wildcards.year)  # noqa: F821
grid = Grid.read(snakemake.input.grid)  # noqa: F821
scenes = read_scenes_table(snakemake.input.scenes)  # noqa: F821
chosen = in_season(scenes, year, snakemake.params.season)  # noqa: F821
records = []
for s in chosen:
    check_scene(s, grid)
    clear = scene_clear_fraction(s, grid, snakemake.params.block_rows)  # noqa: F821
    records.append({**s.to_dict(), "clear_pct": 100.0 * clear})
    log.info("scene %s %s: %.1f %% of the area clear, reflectance = DN x %g %+g", s.scene_id, s.datetime, 100 * clear, s.scale, s.offset)
if not chosen:
    log.error("no scene of %d in the season %s", year, snakemake.params.season)  # noqa: F821
io.write_json(snakemake.output[0], {"year": year, "season": snakemake.params.season, "scenes": records,  # noqa: F821
                                     "excluded_out_of_season": [s.scene_id for s in scenes if s.date.year == year and s not in chosen]})
log.info("%d: %d scenes in season of %d listed", year, len(chosen), len(scenes))
