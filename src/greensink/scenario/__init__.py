"""Planning scenarios (情景模拟): named planned states of a baseline year, through the same models and
zonal engine, compared with the baseline with paired intervals and re-evaluated against the targets.

* :mod:`greensink.scenario.plan` – the config section as :class:`Scenario` / :class:`Change` records,
  its checks and the change layers;
* :mod:`greensink.scenario.burn` – the changes burned into copies of the baseline's rasters and exact
  type fractions;
* :mod:`greensink.scenario.tables` – zone tables, differences from paired draws, the summary of targets;
* :mod:`greensink.scenario.files` – the layers of a landscape read from and written to the run's files;
* :mod:`greensink.scenario.run` – one runner per scenario rule (what the rule scripts call).

The package re-exports only :mod:`~greensink.scenario.plan` (what the config checks need, without the
raster stack); import the others from their modules.

Method: docs/method.md, "12. Scenarios"; outputs: docs/outputs.md, results/scenarios/.
"""

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

__all__ = [
    "KINDS", "Change", "Scenario", "config_problems", "input_paths", "layer_problems", "pseudo_code", "read_change_layer",
    "scenario_of", "scenarios", "wildcard_pattern",
]
