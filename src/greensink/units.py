"""Units: the conversions and constants of greensink, in one place.

Every quantity carries its unit in its name (``area_m2``, ``area_ha``, ``carbon_t``,
``co2e_t``); a value changes unit only through a name defined here, so a reader finds each
factor once, with where it comes from:

* areas: 1 ha = 100 m × 100 m = 10 000 m² (:data:`M2_PER_HA`; :func:`m2_to_ha`, :func:`ha_to_m2`);
* masses: 1 t = 1000 kg (:data:`KG_PER_T`; :func:`kg_to_t`);
* carbon to CO2 equivalent: t CO2e = t C × 44/12, the ratio of the molar masses of CO2
  (44.01 g/mol) and C (12.01 g/mol), as the IPCC guidelines write it (:data:`CO2_PER_C`;
  :func:`c_to_co2e`);
* lengths in messages: :func:`format_m` writes metres as a reader types them.

The helpers work on numbers and NumPy arrays (and pandas columns) alike.
"""

from __future__ import annotations

from typing import Any

M2_PER_HA = 10_000.0  # m² per hectare (100 m × 100 m)
CO2_PER_C = 44.0 / 12.0  # t CO2e per t C (molar masses of CO2 and C)
KG_PER_T = 1000.0  # kg per tonne


def m2_to_ha(area_m2: Any) -> Any:
    """Square metres to hectares: ``area_m2`` / 10 000."""
    return area_m2 / M2_PER_HA


def ha_to_m2(area_ha: Any) -> Any:
    """Hectares to square metres: ``area_ha`` × 10 000."""
    return area_ha * M2_PER_HA


def kg_to_t(mass_kg: Any) -> Any:
    """Kilograms to tonnes: ``mass_kg`` / 1000."""
    return mass_kg / KG_PER_T


def c_to_co2e(carbon_t: Any) -> Any:
    """Tonnes of carbon to tonnes of CO2 equivalent: ``carbon_t`` × 44/12."""
    return carbon_t * CO2_PER_C


def format_m(value: float) -> str:
    """A coordinate or distance in metres as written (690015, 3520815, 12.5), never in exponent notation."""
    return f"{value:.6f}".rstrip("0").rstrip(".")
