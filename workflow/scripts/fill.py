"""Rule fill (untiled): the fill of one year's unobserved typed land over the whole grid.

Inputs: results/{year}/model/models.json, results/{year}/{predictor}.tif (those the models use are read),
        results/types/fractions.tif (or the year's fractions).
Outputs: results/{year}/fill.json: each type's fill density (t C/ha of its land), between-pixel sd, observed land
         and fill draws, with the year, the seed and the models.json digest (readers refuse a stale file).
Description: greensink.carbon.run_fill.
"""

from greensink.carbon import run_fill
from greensink.logs import setup

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, p = sm.input, sm.params
run_fill(inp.models, dict(zip(p.predictors, inp.predictors, strict=True)), inp.fractions, sm.output[0], types=p.types,
         year=int(sm.wildcards.year))
