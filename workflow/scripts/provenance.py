"""Rule provenance: config hash, input checksums, scenes used, package versions.

Inputs: every input file of the run, the ingest scene lists
        and every year's models.json (for the tier that produced each type's carbon).
Outputs: results/provenance.json (with carbon_tiers: per year the tiers used and each type's tier).
"""

import os

from greensink import io
from greensink.logs import setup
from greensink.provenance import record
from greensink.tiers import carbon_tiers

log = setup(snakemake.log[0])  # noqa: F821
inp = snakemake.input  # noqa: F821
files = [*inp.zones, *inp.greenspace, *inp.plots, *inp.trees, *inp.allometry, inp.coefficients, *inp.population, *inp.demo]
scenes, imagery = {}, {}
for path in inp.scenes:
    listed = io.read_json(path)
    scenes[listed["year"]] = listed["scenes"]
    imagery[listed["year"]] = {k: listed[k] for k in ("summary", "excluded_out_of_season", "excluded_no_overlap",
                                                       "failed_assets", "warnings") if k in listed}
    for s in listed["scenes"]:
        files += [f for f in (s["red"], s["nir"], s["quality"]) if f]
# remote STAC assets (http, s3 ...) are identified by their item id and href, not checksummed
local = sorted({f for f in map(str, files) if "://" not in f})
checksums = {os.path.relpath(f): io.sha256(f) for f in local}
prov = record(dict(snakemake.params.config), checksums, scenes, imagery)  # noqa: F821
prov["carbon_tiers"] = carbon_tiers(io.read_json(path) for path in inp.models)
io.write_json(snakemake.output[0], prov)  # noqa: F821
log.info("provenance: %d input files checksummed", len(checksums))
