"""Rule provenance: config hash, input checksums, scenes used, package versions.

Inputs: every input file of the run, the ingest scene lists
        and every year's models.json (for the tier that produced each type's carbon).
Outputs: results/provenance.json (with carbon_tiers: per year the tiers used and each type's tier). The config
         comes without its scenarios (params, greensink.provenance.recorded_config): each plan's record is
         results/scenarios/{scenario}/inputs.json.
Description: greensink.provenance.run_provenance.
"""

from greensink.logs import setup
from greensink.provenance import run_provenance

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
run_provenance(dict(sm.input.items()), sm.output[0], config=sm.params.config)
