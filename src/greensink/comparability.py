"""Comparability: may two years' products be differenced?

A stock change is only a change of the land if both years were measured the same way. NDVI from two
sensors (Sentinel-2 MSI and Landsat OLI have different red and near-infrared bands) or read with
different harmonisation settings (scale, offset or offset rule of the sensor profile, imagery.profiles)
differ by more than many years of growth, so a difference across them is mostly the instrument.

Each year's ingest record (results/{year}/ingest/scenes.json) holds the year's ``products``
(:func:`year_products`): the sensors of the scenes used and each sensor's harmonisation settings. Rule
``comparability`` compares the two years of a change pair (:func:`compare`) and, by
``change.incompatible``, refuses the pair (``refuse``, the default: the run stops with a message
naming the years, what differs and the fix) or lets it through flagged (``flag``: the change zone
tables carry ``comparable`` False and a ``comparability_note``). Pairs of the same products are
comparable; the per-scene scale and offset a sensor's rule fixes from the scene's date (Sentinel-2's
processing baseline) are harmonisation applied, not a difference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from greensink import io as gio
from greensink.errors import GreensinkError
from greensink.ingest.profiles import resolve_profiles

__all__ = ["HARMONISATION_KEYS", "MODES", "IncompatibleProductsError", "add_columns", "check", "compare", "run_comparability",
           "year_products"]

MODES = ("refuse", "flag")
"""Values of change.incompatible."""
HARMONISATION_KEYS = ("scale", "offset", "offset_rule")
"""The sensor-profile keys that turn digital numbers into reflectance (greensink.ingest.profiles)."""


class IncompatibleProductsError(GreensinkError):
    """Two years' imagery came from different sensors or harmonisation settings (change.incompatible refuse)."""


def year_products(scenes: Sequence[Mapping], profiles: Mapping[str, Mapping]) -> dict:
    """The products of one year: ``sensors`` (sorted names of the profiles of ``scenes``, the year's scenes
    used) and ``harmonisation`` ({sensor: its profile's :data:`HARMONISATION_KEYS`}) from the resolved
    ``profiles`` (:func:`greensink.ingest.resolve_profiles`). A sensor missing from ``profiles`` gets the
    scale and offset its scenes were read with (the first scene's)."""
    sensors = sorted({str(s["sensor"]) for s in scenes})
    harmonisation = {}
    for name in sensors:
        profile = profiles.get(name)
        if profile is None:
            first = next(s for s in scenes if str(s["sensor"]) == name)
            profile = {"scale": first.get("scale"), "offset": first.get("offset"), "offset_rule": "as read"}
        harmonisation[name] = {k: profile.get(k) for k in HARMONISATION_KEYS}
    return {"sensors": sensors, "harmonisation": harmonisation}


def compare(products0: Mapping, products1: Mapping, y0: int, y1: int) -> dict:
    """Compare the ``products`` of two years. Returns {"years", "comparable" (bool), "note" (what differs,
    in words; "" when comparable), "products" (both records)}. A year without a products record (an ingest
    record of an older greensink) is not known to be comparable: comparable False, said in the note."""
    notes = []
    if not products0 or not products1:
        missing = [str(y) for y, p in ((y0, products0), (y1, products1)) if not p]
        notes.append(f"the ingest record of {' and '.join(missing)} does not say which sensors were used (made by an "
                     "older greensink): rerun its ingest")
    else:
        s0, s1 = list(products0["sensors"]), list(products1["sensors"])
        if s0 != s1:
            notes.append(f"sensors differ: {y0} {', '.join(s0) or 'none'}; {y1} {', '.join(s1) or 'none'}")
        for name in sorted(set(s0) & set(s1)):
            h0, h1 = products0["harmonisation"].get(name), products1["harmonisation"].get(name)
            if h0 != h1:
                diff = [f"{k} {h0.get(k)!r} -> {h1.get(k)!r}" for k in HARMONISATION_KEYS if h0.get(k) != h1.get(k)]
                notes.append(f"harmonisation of {name} differs between {y0} and {y1}: {', '.join(diff)}")
    return {"years": [int(y0), int(y1)], "comparable": not notes, "note": "; ".join(notes),
            "products": {str(y0): products0 or None, str(y1): products1 or None}}


def check(record: Mapping, mode: str) -> dict:
    """``record`` from :func:`compare`, with ``mode`` (change.incompatible) added; raises
    IncompatibleProductsError for an incomparable pair under ``refuse``."""
    if mode not in MODES:
        raise GreensinkError(f"change.incompatible must be one of {list(MODES)}. Got {mode!r}.")
    y0, y1 = record["years"]
    if not record["comparable"] and mode == "refuse":
        raise IncompatibleProductsError(
            f"change {y0}-{y1}: the two years' imagery is not comparable ({record['note']}), so their difference "
            "would mostly measure the instrument, not the land. Use imagery of the same sensor and sensor profile "
            "(imagery.files profile, imagery.profiles) for both years, or set change.incompatible: flag to compute "
            "the change anyway with comparable = False and this note in its zone tables.")
    return {**record, "mode": mode}


def add_columns(table: pd.DataFrame, record: Mapping) -> pd.DataFrame:
    """``table`` (a change zone table) with ``comparable`` (bool, the same for every zone) and
    ``comparability_note`` (what differs; "" when comparable) from a :func:`check` record."""
    out = table.copy()
    out["comparable"] = bool(record["comparable"])
    out["comparability_note"] = str(record.get("note") or "")
    return out


def run_comparability(scenes0: str, scenes1: str, out: str, *, mode: str) -> dict:
    """Rule comparability: compare the ingest records (scenes.json) of a change pair's two years, write the
    :func:`check` record to ``out`` (results/change/{y0}_{y1}/comparability.json) and return it; raises
    IncompatibleProductsError under ``refuse`` when they differ."""
    r0, r1 = gio.read_json(scenes0), gio.read_json(scenes1)
    # a record of an older greensink has no products: its scenes' sensors with the built-in profiles
    p0, p1 = (r.get("products") or year_products(r["scenes"], resolve_profiles(None)) for r in (r0, r1))
    record = check(compare(p0, p1, int(r0["year"]), int(r1["year"])), mode)
    gio.write_json(out, record)
    return record
