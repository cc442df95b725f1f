"""Each tree's wood density and Jenkins et al. 2003 species group from its taxon.

Wood density comes from, in order: an inventory column, the species, the genus (mean of its
species in the table), the inventory's wood-density group, and last a hardwood / softwood
fallback, which is flagged ``density_default``. Unknown species are not an error.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from greensink.allometry.equations import JENKINS2003
from greensink.allometry.params import AllometryParams
from greensink.allometry.taxa import group_key, taxon_key


def wood_class(genus: str, params: AllometryParams, group: str = "") -> str:
    """``palm``, ``softwood`` or ``hardwood`` for a genus key (or, without one, a group name)."""
    if genus in params.palm_genera:
        return "palm"
    if genus in params.softwood_genera:
        return "softwood"
    if not genus and group_key(group) in ("softwood", "conifer"):
        return "softwood"
    return "hardwood"


def assign_wood_density(species: pd.Series, groups: pd.Series | None, params: AllometryParams,
                        given: pd.Series | None = None) -> pd.DataFrame:
    """Columns ``wood_density_g_cm3``, ``wood_density_source`` (input, species, genus, group,
    default), ``wood_class`` (hardwood, softwood, palm) and ``flags`` for each tree.

    ``given`` holds densities measured for the tree (NaN where none); they win over the table.
    """
    n = len(species)
    keys = [taxon_key(s) for s in species] if n else []
    grp = [(group_key(g) if isinstance(g, str) and g.strip() else "") for g in (groups if groups is not None else [""] * n)]
    given_arr = np.full(n, np.nan) if given is None else np.asarray(given, dtype=float)
    rho = np.full(n, np.nan)
    source = np.empty(n, dtype=object)
    klass = np.empty(n, dtype=object)
    flags: list[list[str]] = [[] for _ in range(n)]
    for i, ((sp, genus), g) in enumerate(zip(keys, grp, strict=True)):
        klass[i] = wood_class(genus, params, g)
        if klass[i] == "palm":
            flags[i].append("palm")
        if np.isfinite(given_arr[i]):
            rho[i], source[i] = given_arr[i], "input"
        elif sp in params.species_density:
            rho[i], source[i] = params.species_density[sp], "species"
        elif genus in params.genus_density:
            rho[i] = params.genus_density[genus][0]
            source[i] = f"genus mean (n={params.genus_density[genus][1]})"
        elif g in params.group_density:
            rho[i], source[i] = params.group_density[g], "group"
        else:
            fallback = "softwood" if klass[i] == "softwood" else "hardwood"
            rho[i], source[i] = params.default_density[fallback], f"default {fallback}"
            flags[i].append("density_default")
    return pd.DataFrame({"wood_density_g_cm3": rho, "wood_density_source": source, "wood_class": klass,
                         "flags": [";".join(f) for f in flags]}, index=species.index)


def assign_jenkins_group(species: pd.Series, groups: pd.Series | None, wood_classes: Sequence[str],
                         params: AllometryParams) -> tuple[np.ndarray, list[str]]:
    """Jenkins et al. 2003 group per tree and a flag (``jenkins_group_default`` or ``""``).

    Order: species override, genus table, the inventory's group column when it names a Jenkins
    group, then the default of the parameter table: ``mixed_hardwood`` for hardwoods (Jenkins'
    catch-all hardwood group, not flagged) and ``pine`` for softwoods outside Jenkins' groups
    (e.g. *Cedrus*, *Podocarpus*; flagged ``jenkins_group_default``).
    """
    n = len(species)
    out = np.empty(n, dtype=object)
    flag = [""] * n
    grp = list(groups) if groups is not None else [""] * n
    for i, (name, g, k) in enumerate(zip(species, grp, wood_classes, strict=True)):
        sp, genus = taxon_key(name)
        gn = group_key(g) if isinstance(g, str) else ""
        if sp in params.jenkins_species:
            out[i] = params.jenkins_species[sp]
        elif genus in params.jenkins_genus:
            out[i] = params.jenkins_genus[genus]
        elif gn in JENKINS2003:
            out[i] = gn
        elif k == "softwood":
            out[i] = params.jenkins_default["softwood"]
            flag[i] = "jenkins_group_default"
        else:
            # Jenkins' mixed-hardwood group is by definition the hardwoods outside the other three
            # hardwood groups, so an unlisted hardwood genus belongs there: no flag.
            out[i] = params.jenkins_default["hardwood"]
    return out, flag
