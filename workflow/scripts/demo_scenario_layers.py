"""Rule demo_scenario_layers: the demo city's scenario layers (greensink.scenario.demo).

Inputs: the demo's parcel and district zones and green-space polygons.
Outputs: <demo.out_dir>/scenarios/{new_park,construction,street_trees}.gpkg.
"""

from greensink import io
from greensink.logs import setup
from greensink.scenario.demo import demo_scenario_layers

log = setup(snakemake.log[0])  # noqa: F821
inp, out = snakemake.input, snakemake.output  # noqa: F821
layers = demo_scenario_layers(io.read_vector(inp.parcels), io.read_vector(inp.districts), io.read_vector(inp.greenspace))
for name, path in zip(snakemake.params.names, out, strict=True):  # noqa: F821
    io.write_table(path, layers[name], csv=False)
    log.info("%s: %d parcel(s), %.2f ha", name, len(layers[name]), layers[name].area.sum() / 1e4)
