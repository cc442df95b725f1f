"""One year of ingest: select the scenes of a year's season, check them and measure them on the grid.

:func:`ingest_year` gives the record of ``results/{year}/ingest/scenes.json``: per scene its
harmonisation, how it sits on the grid, its calibration check and how much of the area it sees
clear (:func:`scene_statistics`); for the year, the share masked and the area seen, the scenes
left out, and every warning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
from rasterio.windows import Window

from greensink.errors import InputDataError
from greensink.grid import Grid
from greensink.ingest.checks import NoOverlapError, calibration_check, check_scene, scene_alignment
from greensink.ingest.profiles import BANDS, PROFILES
from greensink.ingest.reader import held_open, read_scene_valid
from greensink.ingest.scene import Scene, in_season, season_window

log = logging.getLogger(__name__)

COVERAGE_WARN_PCT = 50.0  # warn when a year's scenes see less of the analysis area than this


def scene_statistics(scenes: Sequence[Scene], grid: Grid, block_rows: int = 512, datasets: dict | None = None) -> dict:
    """Per scene: % of grid pixels with data (``valid_pct``), seen clear (``clear_pct``) and the %
    of its observed pixels masked by its quality band (``masked_pct``); for the set: the % of all
    observations masked and the % of the area seen (clear) at least once. The band files stay open over
    the windows (``datasets``, from :func:`greensink.ingest.reader.held_open`; a dict of its own without it)."""
    if datasets is None:
        with held_open() as held:
            return scene_statistics(scenes, grid, block_rows, held)
    n = len(scenes)
    valid = np.zeros(n, dtype=np.int64)
    clear = np.zeros(n, dtype=np.int64)
    seen = seen_clear = 0
    for rows, _ in grid.windows(block_rows):
        window = Window(0, rows.start, grid.width, rows.stop - rows.start)
        any_valid = np.zeros((window.height, grid.width), dtype=bool)
        any_clear = np.zeros_like(any_valid)
        for i, s in enumerate(scenes):
            v, c = read_scene_valid(s, grid, window, datasets)
            valid[i] += int(v.sum())
            clear[i] += int(c.sum())
            any_valid |= v
            any_clear |= c
        seen += int(any_valid.sum())
        seen_clear += int(any_clear.sum())
    pixels = grid.width * grid.height
    per_scene = [{
        "valid_pct": 100.0 * int(v) / pixels,
        "clear_pct": 100.0 * int(c) / pixels,
        "masked_pct": 100.0 * int(v - c) / int(v) if v else None,
    } for v, c in zip(valid, clear, strict=True)]
    observations, clear_obs = int(valid.sum()), int(clear.sum())
    return {
        "scenes": per_scene,
        "grid_pixels": pixels,
        "observations": observations,
        "clear_observations": clear_obs,
        "masked_pct": 100.0 * (observations - clear_obs) / observations if observations else None,
        "area_seen_pct": 100.0 * seen / pixels,
        "area_seen_clear_pct": 100.0 * seen_clear / pixels,
    }



# ----------------------------------------------------------------------------- one year


def ingest_year(scenes: Sequence[Scene], grid: Grid, year: int, season: Mapping[str, str], block_rows: int = 512) -> dict:
    """Select, check and measure the scenes of one year's season; the record of ``results/{year}/ingest/scenes.json``.

    Raises InputDataError (listing every problem) when a scene file is unusable, when no scene
    is in the season or overlaps the area, or when no pixel is clear in any scene. Scenes that do
    not overlap the area are left out with a warning; warnings are logged and kept in the record."""
    start, end = season_window(year, season)
    chosen = in_season(scenes, year, season)
    next_start, _ = season_window(year + 1, season)
    out_of_season = [s.scene_id for s in scenes if s.date.year == year and s not in chosen and s.date < next_start]
    if not chosen:
        dates = f"dated {scenes[0].date} to {scenes[-1].date}" if scenes else "none listed"
        raise InputDataError(f"{year}: no scene in the season {start} to {end} ({len(scenes)} scenes, {dates}). "
                             "Add scenes of that season, or widen season.start/season.end (a start after the end wraps the new year).")
    samples: dict = {}  # each band file's check sample, decoded once for both checks
    with held_open() as datasets:  # the band files open from the checks to the statistics: each tile decoded once
        return _ingest_chosen(chosen, out_of_season, grid, year, season, block_rows, samples, datasets)


def _ingest_chosen(chosen: Sequence[Scene], out_of_season: list[str], grid: Grid, year: int, season: Mapping[str, str],
                   block_rows: int, samples: dict, datasets: dict) -> dict:
    """:func:`ingest_year` after the season's scenes are chosen (``samples``, ``datasets``: the checks' samples
    and the band files held open, :func:`greensink.ingest.checks.band_sample`)."""
    start, end = season_window(year, season)
    warnings: list[str] = []
    problems: list[str] = []
    no_overlap: list[str] = []
    usable: list[Scene] = []
    for s in chosen:
        try:
            warnings += check_scene(s, grid, samples, datasets)
        except NoOverlapError as exc:
            no_overlap.append(s.scene_id)
            warnings.append(f"{exc} It is left out of {year}.")
            continue
        except InputDataError as exc:
            problems.append(str(exc))
            continue
        if s.quality is None and PROFILES.get(s.sensor, {}).get("quality"):
            warnings.append(f"scene {s.scene_id}: no quality band, so no cloud or shadow is masked. Give its "
                            f"{PROFILES[s.sensor]['quality_column']} file if it has one.")
        usable.append(s)
    if problems:
        raise InputDataError(f"{year}: {len(problems)} scene(s) cannot be used:\n" + "\n".join(f"  - {p}" for p in problems))
    if not usable:
        raise InputDataError(
            f"{year}: none of the {len(chosen)} scene(s) in season overlaps the analysis area {tuple(round(v) for v in grid.bounds)} "
            f"({grid.crs}): {', '.join(no_overlap)}. Check that the zones and the imagery cover the same place, or add scenes.")
    checks: dict[str, dict] = {}
    for s in usable:
        aligned, w_align = scene_alignment(s, grid, datasets)
        calibrated, w_calib = calibration_check(s, samples=samples, datasets=datasets)
        checks[s.scene_id] = {**aligned, **calibrated}
        warnings += w_align + w_calib
    samples.clear()
    stats = scene_statistics(usable, grid, block_rows, datasets)
    records = []
    for s, st in zip(usable, stats["scenes"], strict=True):
        records.append({**s.to_dict(), **st, **checks[s.scene_id]})
        if st["clear_pct"] == 0:
            why = ("has no data in the area" if st["valid_pct"] == 0 else
                   f"is masked everywhere in the area by its quality band ({s.quality_rule})")
            warnings.append(f"scene {s.scene_id}: {why}; it adds nothing to the composite.")
    if stats["clear_observations"] == 0:
        raise InputDataError(
            f"{year}: no clear pixel in any of the {len(usable)} scene(s): "
            + "; ".join(f"{r['scene_id']} {r['valid_pct']:.1f} % of the area with data, masked_pct {r['masked_pct']}" for r in records)
            + ". Check the quality rule (imagery.profiles.<profile>.quality: masked vs clear values) and nodata, or add clearer scenes.")
    if stats["area_seen_pct"] < COVERAGE_WARN_PCT:
        warnings.append(f"{year}: the scenes cover only {stats['area_seen_pct']:.1f} % of the analysis area (the zones' extent); "
                        "the rest of every product is NaN (no data).")
    for w in warnings:
        log.warning(w)
    for s, r in zip(usable, records, strict=True):
        masked = "n/a" if r["masked_pct"] is None else f"{r['masked_pct']:.1f} %"
        calib = [s.calibration(b) for b in BANDS]
        (rs, ro), (ns, no) = calib
        how = (f"reflectance = DN x {rs:g} {ro:+g}" if calib[0] == calib[1] else
               f"reflectance = DN x {rs:g} {ro:+g} (red), DN x {ns:g} {no:+g} (nir)")
        log.info("scene %s %s (%s): data on %.1f %% of the area, %.1f %% clear, %s of its observed pixels masked; %s; %s",
                 r["scene_id"], r["datetime"], r["sensor"], r["valid_pct"], r["clear_pct"], masked, how,
                 "red/NIR resampled onto the grid" if r["resampled"] else "red/NIR on the grid's pixels (not resampled)")
    summary = {k: v for k, v in stats.items() if k != "scenes"}
    summary["n_scenes"] = len(usable)
    log.info("%d: %d scene(s) in season %s to %s; %.1f %% of %d observed pixels masked (cloud, shadow, quality); "
             "%.1f %% of the area seen clear at least once", year, len(usable), start, end,
             summary["masked_pct"] or 0.0, summary["observations"], summary["area_seen_clear_pct"])
    return {
        "year": year,
        "season": dict(season),
        "season_dates": [start.isoformat(), end.isoformat()],
        "scenes": records,
        "summary": summary,
        "excluded_out_of_season": out_of_season,
        "excluded_no_overlap": no_overlap,
        "warnings": warnings,
    }
