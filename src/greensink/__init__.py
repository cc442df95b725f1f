"""greensink: satellite imagery to green-space carbon accounts for planners."""

from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str):
    """``greensink.open_results`` without importing xarray and geopandas with the package (the CLI stays fast)."""
    if name == "open_results":
        from greensink.results import open_results

        return open_results
    raise AttributeError(f"module 'greensink' has no attribute {name!r}")
