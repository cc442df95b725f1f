"""Rule fill_gather (tiles.size_px set): the year's fill of unobserved typed land from its tiles' partial sums.

Inputs: results/{year}/tiles/fill_{tile}.json of every tile (row-major), results/{year}/model/models.json,
        results/zones/grid.json.
Outputs: results/{year}/fill.json, the file of the untiled rule fill (the same numbers up to the order of the
         additions; tile files of other models or another tiling are refused).
Description: greensink.carbon.run_fill_gather.
"""

from greensink.carbon import run_fill_gather
from greensink.logs import setup

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, p = sm.input, sm.params
run_fill_gather(list(inp.tiles), inp.models, inp.grid, sm.output[0], types=p.types, year=int(sm.wildcards.year),
                size_px=p.size_px)
