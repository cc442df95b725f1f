"""Planning scenarios (情景模拟): named planned states of a baseline year, through the same models and
zonal engine, compared with the baseline with paired intervals and re-evaluated against the targets.

* :mod:`greensink.scenario.plan` – the config section as :class:`Scenario` / :class:`Change` records,
  its checks and the change layers;
* :mod:`greensink.scenario.burn` – the changes burned into copies of the baseline's rasters and exact
  type fractions;
* :mod:`greensink.scenario.tables` – zone tables, differences from paired draws, the summary of targets;
* :mod:`greensink.scenario.files` – the layers of a landscape read from and written to the run's files.

Method: docs/method.md, "Scenarios"; outputs: docs/outputs.md, results/scenarios/.
"""

from greensink.scenario.burn import Burned, Landscape, Thresholds, burn, growth_map, mix, scenario_models
from greensink.scenario.plan import (
    KINDS,
    Change,
    Scenario,
    config_problems,
    input_paths,
    layer_problems,
    pseudo_code,
    read_change_layer,
    scenario_of,
    scenarios,
    wildcard_pattern,
)
from greensink.scenario.tables import Setting, scenario_tables, summary_table

__all__ = [
    "KINDS", "Burned", "Change", "Landscape", "Scenario", "Setting", "Thresholds", "burn", "config_problems", "growth_map",
    "input_paths", "layer_problems", "mix", "pseudo_code", "read_change_layer", "scenario_models", "scenario_of",
    "scenario_tables", "scenarios", "summary_table", "wildcard_pattern",
]
