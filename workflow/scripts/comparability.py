"""Rule comparability: whether a change pair's two years' imagery may be differenced.

Inputs: results/{y0}/ingest/scenes.json and results/{y1}/ingest/scenes.json (their products: sensors and
        harmonisation settings).
Outputs: results/change/{y0}_{y1}/comparability.json (comparable, note, both years' products, mode).
Description: greensink.comparability.run_comparability (change.incompatible refuse: stops on a difference).
"""

from greensink.comparability import run_comparability
from greensink.logs import setup

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
log = setup(sm.log[0])
record = run_comparability(sm.input.scenes0, sm.input.scenes1, sm.output[0], mode=sm.params.mode)
log.info("change %s-%s: %s", *record["years"], "comparable" if record["comparable"] else f"NOT comparable ({record['note']})")
