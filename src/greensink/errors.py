"""Exceptions raised by greensink.

Every error names what was wrong, where (file, row, column or config key), what was
received and how to fix it, in the form used across the package::

    plots.gpkg row 17: carbon_t_ha must be a number >= 0. Got 'n/a'. Remove the row or fill it.
"""

from __future__ import annotations


class GreensinkError(Exception):
    """Base class of all errors greensink raises on purpose."""


class ConfigError(GreensinkError):
    """The configuration is invalid; the message lists every problem found."""


class InputDataError(GreensinkError):
    """An input file (imagery, zones, plots, tables) cannot be used as it is."""


class ModelError(GreensinkError):
    """A carbon model cannot be fitted or applied."""


class OutputWriteError(GreensinkError):
    """An output cannot be written: the disk, the quota or the file size limit is full."""
