"""Taxon names → the keys of the parameter table: ``Platanus × acerifolia 'Bloodgood'`` →
``("platanus x acerifolia", "platanus")``; genus and wood-density group names in one form."""

from __future__ import annotations

import math
import re

_CULTIVAR = re.compile(r"'[^']*'|\"[^\"]*\"")
_RANK = {"var.", "subsp.", "ssp.", "f.", "cv.", "cvs.", "cv", "var", "subsp"}
_HYBRID = {"x", "×"}


def genus_key(name: str) -> str:
    """A genus name as the table's key: stripped, lower case (``" Acer "`` → ``"acer"``)."""
    return str(name).strip().lower()


def group_key(name: str) -> str:
    """A group name as the table's key: lower case, spaces, ``/`` and ``-`` as ``_`` (``"Soft maple/birch"`` → ``"soft_maple_birch"``)."""
    return re.sub(r"[\s/\-]+", "_", str(name).strip().lower())


def taxon_key(name: object) -> tuple[str, str]:
    """``(species key, genus key)`` in lower case from a scientific name, for table look-ups.

    Cultivars in quotes, ranks below species (``var.``, ``subsp.``) and ``sp.`` / ``spp.`` are
    dropped; a hybrid sign is kept (``Platanus x acerifolia`` → ``platanus x acerifolia``).
    ``Malus sp.`` → ``("", "malus")``; a missing name → ``("", "")``.
    """
    if name is None or (isinstance(name, float) and math.isnan(name)):
        return "", ""
    tokens = _CULTIVAR.sub(" ", str(name)).lower().replace("×", " x ").split()
    if not tokens:
        return "", ""
    genus, rest = tokens[0], tokens[1:]
    epithet = ""
    if rest and rest[0] in _HYBRID and len(rest) > 1:
        epithet = f"x {rest[1]}"
    elif rest and rest[0] not in _RANK and rest[0] not in {"sp.", "spp.", "sp", "spp"}:
        epithet = rest[0]
    return (f"{genus} {epithet}" if epithet else ""), genus
