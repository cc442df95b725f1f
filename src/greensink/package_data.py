"""Package data: the files greensink needs at run time, shipped inside the package and read with
:mod:`importlib.resources`, so that an installed wheel works outside the checkout.

They live in ``greensink/data/``: the config's JSON Schema, the report template, the default tables
of the config keys ``coefficients``, ``targets`` and ``plots.trees.params``, the demo config, the
tier-1 default density table and (when shipped) the calibration benchmark's summary. The package
copy is the one that is edited; the paths users and the docs know (``workflow/schemas/``,
``config/``, ``reports/``) are relative symlinks to it in the checkout (docs/architecture.md).
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

__all__ = ["ALLOMETRY", "COEFFICIENTS", "DEMO_CONFIG", "REPORT_TEMPLATE", "SCHEMA", "TARGETS", "file_path", "read_text",
           "resource"]

SCHEMA = "config.schema.yaml"  # the config's JSON Schema (checkout: workflow/schemas/config.schema.yaml)
REPORT_TEMPLATE = "report.html.j2"  # the planner report's Jinja2 template (checkout: reports/report.html.j2)
DEMO_CONFIG = "demo_config.yaml"  # the built-in demo city's config (checkout: config/config.yaml)
COEFFICIENTS = "coefficients.csv"  # default of the config key coefficients (checkout: config/coefficients.csv)
TARGETS = "targets.yaml"  # default of the config key targets (checkout: config/targets.yaml)
ALLOMETRY = "allometry.yaml"  # default of plots.trees.params (checkout: config/allometry.yaml)


def resource(name: str) -> Traversable:
    """The package data file ``name`` of ``greensink/data/`` (it may not exist: see ``is_file()``)."""
    return resources.files("greensink").joinpath("data").joinpath(name)


def read_text(name: str) -> str:
    """The text (UTF-8) of the package data file ``name``."""
    return resource(name).read_text(encoding="utf-8")


def file_path(name: str) -> Path:
    """The file-system path of the package data file ``name``, for what needs a path rather than the text
    (a config value, a Snakemake input). A wheel installed by pip is on the file system; a package imported
    from a zip archive is not, and raises FileNotFoundError saying so."""
    res = resource(name)
    path = Path(str(res))
    if not isinstance(res, Path) or not path.is_file():
        raise FileNotFoundError(f"greensink package data {name}: no such file at {path}. Install greensink as a "
                                "regular package (pip install), not from a zip archive, or reinstall it.")
    return path
