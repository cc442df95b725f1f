"""Rule ingest: the scenes of one year's season, checked, with their harmonisation and masked share.

Inputs: the scenes table (CSV, if any), the band files found by imagery.files, results/zones/grid.json;
for source stac the items are searched here (imagery.stac), and the record also holds the search,
the STAC item ids used and the assets that failed (failed_assets).
Outputs: results/{year}/ingest/scenes.json: the scenes used (files, band indexes, reflectance scale
and offset, quality rule) with % of the area with data / clear and % of observed pixels masked; the
year's summary (masked_pct, area_seen_clear_pct); scenes left out; warnings.
Description: greensink.ingest.run.run_ingest.
"""

from greensink.ingest.run import run_ingest
from greensink.logs import setup

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, p = sm.input, sm.params
run_ingest(inp.grid, sm.output[0], year=int(sm.wildcards.year), source=p.source, season=p.season,
           block_rows=p.block_rows, files=p.files, profiles=p.profiles, stac=p.stac,
           table=inp.table)
