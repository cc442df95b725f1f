"""Rule change in a tiled run (tiles.size_px set): the outputs of the untiled rule change from its change_tile jobs.

Inputs: the tiles' sink, attribution and parts files (results/change/{y0}_{y1}/tiles/), zones, grid, both years'
        models (uncertainty.json) and indicator tables, the pair's comparability record.
Outputs: as the untiled rule change: sink.tif and attribution.tif (mosaics, byte for byte the untiled files), the zone
         tables (the tiles' partial sums added), lost_patches.gpkg/.csv (patches over the whole grid), uncertainty.json.
Description: greensink.change.run_change_gather.
"""

from greensink.change import run_change_gather
from greensink.logs import setup

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
p = sm.params
run_change_gather(sm.input, sm.output, size_px=p.size_px, y0=int(sm.wildcards.y0), y1=int(sm.wildcards.y1),
                  levels=p.levels, interval_pct=p.interval_pct, uncertainty=p.uncertainty, compress=p.compress,
                  no_net_loss_tolerance_pixels=p.no_net_loss_tolerance_pixels, min_observed_pct=p.min_observed_pct)
