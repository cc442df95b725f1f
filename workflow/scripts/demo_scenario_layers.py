"""Rule demo_scenario_layers: the demo city's scenario layers (greensink.scenario.demo).

Inputs: the demo's parcel and district zones and green-space polygons.
Outputs: <demo.out_dir>/scenarios/{new_park,construction,street_trees}.gpkg.
Description: greensink.scenario.run.run_demo_scenario_layers.
"""

from greensink.logs import setup
from greensink.scenario.run import run_demo_scenario_layers

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp = sm.input
run_demo_scenario_layers(inp.parcels, inp.districts, inp.greenspace, list(sm.output), names=sm.params.names)
