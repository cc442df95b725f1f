"""Rule carbon's runner: :func:`run_carbon`, the year's carbon map and carbon.json from its files."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from greensink import io as gio
from greensink import logs
from greensink.carbon.maps import carbon_map_streamed
from greensink.uncertainty import noise_spec, settings

log = logging.getLogger(__name__)


def run_carbon(models_json: str | Path, predictors: Mapping[str, str | Path], fractions: str | Path,
               ndvi_se: str | Path | None, carbon_out: str | Path, stats_out: str | Path, *, types: Sequence[str],
               year: int, seed: int, interval_pct: float = 90.0, uncertainty: Mapping | None = None,
               compress: str = "zstd", strip_rows: int | None = None) -> dict:
    """Rule carbon: the carbon map of ``year`` (:func:`carbon_map_streamed`) from the year's models.json
    ``models_json``, the ``predictors`` rasters (name → path) and the type fractions ``fractions`` (one band
    per type of ``types``), written to ``carbon_out``; its bands 2–3 hold every error source of the
    ``uncertainty`` config (:func:`greensink.uncertainty.noise_spec` of ``seed`` and ``year``; the NDVI source
    reads ``ndvi_se``). carbon.json (the statistics, returned) is written to ``stats_out``. The bands'
    method is ``uncertainty.pixel_interval`` (:data:`INTERVAL_METHODS`, default tabulated)."""
    models = gio.read_json(models_json)
    grid = gio.read_grid(fractions)
    noise = noise_spec(uncertainty, models, seed=seed, year=int(year), resolution_m=grid.resolution_m)
    method = str(settings(uncertainty)["pixel_interval"])
    stats = carbon_map_streamed(models, types, fractions, predictors, carbon_out, interval_pct=interval_pct,
                                compress=compress, strip_rows=strip_rows, progress=logs.progress(log, "carbon"),
                                noise=noise, ndvi_se_path=ndvi_se, interval_method=method)
    gio.write_json(stats_out, stats)
    log.info("carbon: %.0f t C over %d typed pixels", stats["total_t"], stats["typed_pixels"])
    return stats
