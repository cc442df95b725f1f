"""Allometric equations: a tree's stem diameter (and height and wood density) → above-ground biomass,
and biomass → carbon.

Per tree, with D the stem diameter at breast height (cm), H the total height (m) and ρ the basic
wood density (oven-dry mass / green volume, g/cm³):

1. Above-ground biomass from a published equation, oven-dry kg (``agb_equation_kg``):

   * ``chave2014`` (default), Chave et al. 2014, Global Change Biology 20:3177-3190, Eq. 4,
     fitted on 4,004 destructively harvested trees with D ≥ 5 cm::

         AGB = 0.0673 × (ρ D² H)^0.976

   * ``jenkins2003``, Jenkins, Chojnacky, Heath & Birdsey 2003, Forest Science 49(1):12-35,
     Table 4, national-scale equations for ten US species groups, trees with D ≥ 2.5 cm; DBH only::

         AGB = exp(β0 + β1 ln D)

2. Urban form: ``agb_kg = agb_equation_kg × urban_factor``. Open-grown urban trees carry less
   biomass than forest equations predict for the same DBH; Nowak (1994) multiplies by 0.8 (the
   practice of Nowak & Crane 2002 and i-Tree). 1.0 turns it off.
3. Roots: ``bgb_kg = agb_kg × root_shoot`` (default 0.26, the global mean of Cairns et al. 1997).
4. Carbon: ``carbon_kg = (agb_kg + bgb_kg) × carbon_fraction`` (default 0.47, IPCC 2006 Vol. 4
   Ch. 4 Table 4.3); ``co2e_kg = carbon_kg × 44/12``.

Both equations predict **dry** mass, and the carbon fraction applies to dry mass; no fresh
(green) weight enters anywhere. The densities of ``config/allometry.yaml`` are basic densities
(green volume), the quantity Chave's ρ is defined on; densities at 12 % moisture would overstate
biomass.
"""

from __future__ import annotations

import numpy as np

from greensink.units import CO2_PER_C

# ---------------------------------------------------------------------------- published constants

#: Chave et al. 2014, Eq. 4: AGB (kg) = A × (ρ [g/cm³] × D² [cm²] × H [m]) ** B.
CHAVE2014_A = 0.0673
CHAVE2014_B = 0.976
#: Chave et al. 2014 fitted trees with D ≥ 5 cm; smaller trees are computed and flagged.
CHAVE2014_MIN_DBH_CM = 5.0

#: Jenkins et al. 2003, Table 4: AGB (kg dry) = exp(β0 + β1 ln DBH [cm]), per species group.
JENKINS2003: dict[str, tuple[float, float]] = {
    # hardwood groups
    "aspen_alder_cottonwood_willow": (-2.2094, 2.3867),
    "soft_maple_birch": (-1.9123, 2.3651),
    "mixed_hardwood": (-2.4800, 2.4835),
    "hard_maple_oak_hickory_beech": (-2.0127, 2.4342),
    # softwood groups
    "cedar_larch": (-2.0336, 2.2592),
    "douglas_fir": (-2.2304, 2.4435),
    "true_fir_hemlock": (-2.5384, 2.4814),
    "pine": (-2.5356, 2.4349),
    "spruce": (-2.0773, 2.3323),
    # woodland group
    "woodland": (-0.7152, 1.7029),  # juniper / oak / mesquite
}
#: Jenkins et al. 2003 equations are for trees with DBH ≥ 2.5 cm.
JENKINS2003_MIN_DBH_CM = 2.5

EQUATIONS = ("chave2014", "jenkins2003")


# ---------------------------------------------------------------------------- equations


def chave2014_agb_kg(wood_density_g_cm3, dbh_cm, height_m) -> np.ndarray:
    """Above-ground oven-dry biomass, kg: Chave et al. 2014 Eq. 4, ``0.0673 × (ρ D² H)^0.976``.

    ρ basic wood density (g/cm³), D diameter at 1.3 m (cm), H total height (m). NaN in, NaN out.
    """
    rho = np.asarray(wood_density_g_cm3, dtype=float)
    d = np.asarray(dbh_cm, dtype=float)
    h = np.asarray(height_m, dtype=float)
    return CHAVE2014_A * (rho * d**2 * h) ** CHAVE2014_B


def jenkins2003_agb_kg(dbh_cm, groups) -> np.ndarray:
    """Above-ground oven-dry biomass, kg: Jenkins et al. 2003 Table 4, ``exp(β0 + β1 ln D)``, D in cm.

    ``groups`` holds one species-group name of :data:`JENKINS2003` per tree (or one for all).
    """
    d = np.asarray(dbh_cm, dtype=float)
    g = np.broadcast_to(np.asarray(groups, dtype=object), d.shape)
    unknown = sorted({str(x) for x in np.unique(g.astype(str))} - set(JENKINS2003))
    if unknown:
        raise ValueError(f"Jenkins group(s) {unknown} unknown. Use one of {sorted(JENKINS2003)}.")
    b0 = np.array([JENKINS2003[x][0] for x in g.ravel()]).reshape(d.shape)
    b1 = np.array([JENKINS2003[x][1] for x in g.ravel()]).reshape(d.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.exp(b0 + b1 * np.log(d))


def biomass_to_carbon(agb_equation_kg, *, urban_factor: float, root_shoot: float, carbon_fraction: float) -> dict[str, np.ndarray]:
    """Steps 2-4 of the module docstring: ``agb_kg``, ``bgb_kg``, ``carbon_kg``, ``co2e_kg`` (all dry-mass based)."""
    agb = np.asarray(agb_equation_kg, dtype=float) * urban_factor
    bgb = agb * root_shoot
    carbon = (agb + bgb) * carbon_fraction
    return {"agb_kg": agb, "bgb_kg": bgb, "carbon_kg": carbon, "co2e_kg": carbon * CO2_PER_C}
