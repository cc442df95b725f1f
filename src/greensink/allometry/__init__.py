"""Allometry: a tree inventory (species or wood-density group, DBH, height) → per-tree biomass and
carbon, and per-plot sums that can feed ``plots.carbon_t_ha``.

Per tree: above-ground biomass from a published equation (Chave et al. 2014 with wood density and
height, or Jenkins et al. 2003 from DBH alone), times an urban factor, plus roots (root:shoot
ratio), times the carbon fraction of dry mass; CO2e = C × 44/12. Wood density comes from, in
order: an inventory column, the species, the genus, the inventory's wood-density group, and last a
hardwood / softwood fallback (flagged ``density_default``). Unknown species are not an error.

The modules, in import order:

- :mod:`~greensink.allometry.equations`: the published constants and equations
  (:func:`chave2014_agb_kg`, :func:`jenkins2003_agb_kg`) and biomass → carbon (:func:`biomass_to_carbon`).
- :mod:`~greensink.allometry.taxa`: scientific, genus and group names → the table's keys (:func:`taxon_key`).
- :mod:`~greensink.allometry.params`: the parameter table ``config/allometry.yaml`` checked and converted
  (:class:`AllometryParams`, :func:`params_from_mapping`).
- :mod:`~greensink.allometry.density`: each tree's wood density, wood class and Jenkins group
  (:func:`assign_wood_density`, :func:`assign_jenkins_group`).
- :mod:`~greensink.allometry.trees`: the inventory's columns read and checked, per-tree carbon
  (:func:`tree_carbon`), per-plot sums (:func:`plot_carbon`) and quartiles (:func:`summary_stats`).

The functions are pure: DataFrames and arrays in, DataFrames and arrays out; the CLI
(``greensink allometry``) and rule plot_carbon (:mod:`greensink.inventory`) read and write the files.
Everything is re-exported here: import from ``greensink.allometry``.
"""

from __future__ import annotations

from greensink.allometry.density import assign_jenkins_group, assign_wood_density, wood_class
from greensink.allometry.equations import (
    CHAVE2014_A,
    CHAVE2014_B,
    CHAVE2014_MIN_DBH_CM,
    EQUATIONS,
    JENKINS2003,
    JENKINS2003_MIN_DBH_CM,
    biomass_to_carbon,
    chave2014_agb_kg,
    jenkins2003_agb_kg,
)
from greensink.allometry.params import AllometryParams, params_from_mapping
from greensink.allometry.taxa import genus_key, group_key, taxon_key
from greensink.allometry.trees import (
    CM_PER,
    M_PER,
    MAX_LISTED_PROBLEMS,
    MISSING_HEIGHT,
    Columns,
    plot_carbon,
    summary_stats,
    tree_carbon,
)

# the names before the split
_genus = genus_key
_norm_group = group_key

__all__ = [
    "CHAVE2014_A",
    "CHAVE2014_B",
    "CHAVE2014_MIN_DBH_CM",
    "CM_PER",
    "EQUATIONS",
    "JENKINS2003",
    "JENKINS2003_MIN_DBH_CM",
    "MAX_LISTED_PROBLEMS",
    "MISSING_HEIGHT",
    "M_PER",
    "AllometryParams",
    "Columns",
    "assign_jenkins_group",
    "assign_wood_density",
    "biomass_to_carbon",
    "chave2014_agb_kg",
    "genus_key",
    "group_key",
    "jenkins2003_agb_kg",
    "params_from_mapping",
    "plot_carbon",
    "summary_stats",
    "taxon_key",
    "tree_carbon",
    "wood_class",
]
