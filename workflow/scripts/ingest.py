"""Rule ingest: the scenes of one year's season, checked, with their harmonisation and masked share.

Inputs: the scenes table (CSV, if any), the band files found by imagery.files, results/zones/grid.json;
for source stac the items are searched here (imagery.stac), and the record also holds the search,
the STAC item ids used and the assets that failed (failed_assets).
Outputs: results/{year}/ingest/scenes.json: the scenes used (files, band indexes, reflectance scale
and offset, quality rule) with % of the area with data / clear and % of observed pixels masked; the
year's summary (masked_pct, area_seen_clear_pct); scenes left out; warnings.
"""

from greensink import io
from greensink.grid import Grid
from greensink.ingest import ingest_year, load_scenes, resolve_profiles
from greensink.logs import setup

log = setup(snakemake.log[0])  # noqa: F821
inp, p = snakemake.input, snakemake.params  # noqa: F821
year = int(snakemake.wildcards.year)  # noqa: F821
imagery = {"source": p.source, "files": p.files, "profiles": p.profiles}
if p.source == "stac":
    from greensink.stac import ingest_stac_year

    record = ingest_stac_year(p.stac, resolve_profiles(p.profiles), Grid.read(inp.grid), year, p.season, p.block_rows)
    listed = record["stac"]["items_found"]
    log.info("%d: STAC %s: %d items found, %d used, %d failed assets", year, record["stac"]["catalog"],
             record["stac"]["items_found"], len(record["scenes"]), len(record["failed_assets"]))
else:
    scenes = load_scenes(imagery, inp.table[0] if len(inp.table) else None)
    record = ingest_year(scenes, Grid.read(inp.grid), year, p.season, p.block_rows)
    listed = len(scenes)
io.write_json(snakemake.output[0], record)  # noqa: F821
s = record["summary"]
log.info("%d: %d scenes used of %d listed; %.1f %% of observed pixels masked; %.1f %% of the area seen clear; %d warnings",
         year, s["n_scenes"], listed, s["masked_pct"] or 0.0, s["area_seen_clear_pct"], len(record["warnings"]))
