"""A year's zone draw sums (:func:`zone_draw_sums`) and their typed record written by rule aggregate (:class:`ZoneDraws`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from greensink import io as gio
from greensink.carbon import PixelFn, iter_chunks
from greensink.errors import InputDataError
from greensink.uncertainty import settings as uncertainty_settings


def zone_draw_sums(
    matrices: Sequence[sp.csr_matrix], fn: PixelFn, active: np.ndarray, pixel_area_ha: float,
    chunk_pixels: int = 32_768, progress: Callable[[int, int], None] | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each coverage matrix, (estimate sums (Z,), draw sums (Z, B)) of fn's t C/ha × area, in t C.

    NaN pixels (no clear observation) contribute nothing, to the estimate and to every draw alike.
    Where ``fn`` also returns its per-source contributions ({source: (B, n)}, see
    :func:`greensink.carbon.pixel_function` ``sources``), each item is (estimate, draws, {source:
    (Z, B)}): the zone sums of every source from the same draws, in the same chunk loop."""
    stacked = sp.vstack(matrices).tocsc() if len(matrices) > 1 else matrices[0].tocsc()
    sizes = np.cumsum([0] + [m.shape[0] for m in matrices])
    est_sum = np.zeros(stacked.shape[0])
    draw_sum: np.ndarray | None = None
    part_sums: dict[str, np.ndarray] | None = None
    chunks = list(iter_chunks(active, chunk_pixels))
    for i, idx in enumerate(chunks):
        est, draws, *rest = fn(idx)
        sub = stacked[:, idx]
        est_sum += sub @ np.nan_to_num(est)
        part = sub @ np.nan_to_num(draws).T
        draw_sum = part if draw_sum is None else draw_sum + part
        if rest:
            if part_sums is None:
                part_sums = {k: np.zeros((stacked.shape[0], v.shape[0])) for k, v in rest[0].items()}
            for k, v in rest[0].items():
                part_sums[k] += sub @ np.nan_to_num(v).T
        if progress:
            progress(i + 1, len(chunks))
    if draw_sum is None:
        draw_sum = np.zeros((stacked.shape[0], 1))
    est_sum *= pixel_area_ha
    draw_sum *= pixel_area_ha
    bounds = list(zip(sizes[:-1], sizes[1:], strict=True))
    if part_sums is not None:
        return [(est_sum[a:b], draw_sum[a:b], {k: v[a:b] * pixel_area_ha for k, v in part_sums.items()})
                for a, b in bounds]
    return [(est_sum[a:b], draw_sum[a:b]) for a, b in bounds]



ZONE_DRAWS_FORMAT = 1  # the layout of a .draws.npz (ZoneDraws); a reader refuses another



def content_sha256(obj: object) -> str:
    """SHA-256 of ``obj`` as canonical JSON (sorted keys): the same for a dict read back from its JSON file."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")).hexdigest()



@dataclass(frozen=True)
class ZoneDraws:
    """One year's zone sums of the carbon draws at one level, as rule aggregate drew them: the record the
    scenario rules read for their baseline instead of drawing the baseline again (docs/method.md, "Draws
    written once"). Written to results/{year}/zones/{level}.draws.npz (:meth:`write`, :meth:`read`).

    ``estimate`` (Z,) and ``draws`` (Z, B) are t C per zone (float64), the sums over the year's typed pixels of
    the filled pixel function (:func:`zone_draw_sums`, no per-source parts), in the order of ``zone_ids``. The
    identity of the draws' streams: ``seed``, ``year``, ``n_draws`` (B), the SHA-256 of the uncertainty
    settings with their defaults (``uncertainty_sha256``) and of the year's models.json
    (``models_sha256``, which holds the bootstrap and the residual field); :meth:`check` refuses a record
    whose identity differs from the reader's run."""

    level: str
    year: int
    zone_ids: np.ndarray
    estimate: np.ndarray
    draws: np.ndarray
    seed: int
    n_draws: int
    uncertainty_sha256: str
    models_sha256: str
    path: str = ""  # the file it was read from ("" when built in memory); not part of the identity

    @staticmethod
    def identity(*, seed: int, year: int, n_draws: int, uncertainty: Mapping | None, models_sha256: str) -> dict:
        """The identity a run expects of its records: seed, year, number of draws, the digest of the uncertainty
        settings (defaults filled in, so a left-out key and its default agree) and ``models_sha256``, the
        :func:`content_sha256` of the year's models.json as read."""
        return {"seed": int(seed), "year": int(year), "n_draws": int(n_draws),
                "uncertainty_sha256": content_sha256(uncertainty_settings(uncertainty)), "models_sha256": models_sha256}

    @classmethod
    def from_sums(cls, level: str, zone_ids: Sequence, sums: tuple[np.ndarray, ...], identity: Mapping) -> ZoneDraws:
        """The record of one level's :func:`zone_draw_sums` item (estimate, draws[, parts]; parts are not kept)."""
        est, draws = np.asarray(sums[0], dtype=np.float64), np.asarray(sums[1], dtype=np.float64)
        n = int(identity["n_draws"])
        if draws.shape[1] != n:  # no typed pixel at all: zone_draw_sums gives one column of zeros
            draws = np.broadcast_to(draws, (draws.shape[0], n)).copy()
        return cls(level=level, zone_ids=np.asarray(zone_ids).astype(str), estimate=est, draws=draws, **identity)

    def write(self, path: str | Path) -> Path:
        meta = {"format": ZONE_DRAWS_FORMAT, "level": self.level, "year": self.year, "seed": self.seed,
                "n_draws": self.n_draws, "uncertainty_sha256": self.uncertainty_sha256,
                "models_sha256": self.models_sha256, "units": "t C"}
        return gio.write_arrays(path, {"zone_ids": self.zone_ids.astype(str), "estimate_t": self.estimate,
                                       "draws_t": self.draws}, meta)

    @classmethod
    def read(cls, path: str | Path) -> ZoneDraws:
        """The record in ``path``; an InputDataError naming the file when it is not one of this format."""
        arrays, meta = gio.read_arrays(path, "zone draws file (.draws.npz)")
        fix = f"Delete {path} and run rule aggregate again (snakemake --forcerun aggregate)."
        if meta.get("format") != ZONE_DRAWS_FORMAT:
            raise InputDataError(f"{path}: zone draws format must be {ZONE_DRAWS_FORMAT}. Got {meta.get('format')!r}. {fix}")
        missing = sorted({"zone_ids", "estimate_t", "draws_t"} - set(arrays))
        if missing:
            raise InputDataError(f"{path}: zone draws file lacks {', '.join(missing)}. {fix}")
        ids, est, draws = arrays["zone_ids"], arrays["estimate_t"], arrays["draws_t"]
        z = ids.shape[0]
        if est.shape != (z,) or draws.shape != (z, int(meta["n_draws"])):
            raise InputDataError(f"{path}: zone draws shapes must be estimate ({z},) and draws ({z}, {meta['n_draws']}) "
                                 f"for {z} zones. Got {est.shape} and {draws.shape}. {fix}")
        return cls(level=str(meta["level"]), year=int(meta["year"]), zone_ids=ids.astype(str),
                   estimate=est.astype(np.float64, copy=False), draws=draws.astype(np.float64, copy=False),
                   seed=int(meta["seed"]), n_draws=int(meta["n_draws"]), uncertainty_sha256=str(meta["uncertainty_sha256"]),
                   models_sha256=str(meta["models_sha256"]), path=str(path))

    def check(self, *, level: str, zone_ids: Sequence, identity: Mapping) -> None:
        """Refuse (InputDataError naming the file, the field, what it holds and what the run expects) a record of
        another level, zone list or draw identity (:meth:`identity`) than the reader's."""
        where = self.path or f"zone draws of {self.level} {self.year}"
        fix = (f"The record was drawn for other settings or inputs: delete it and run rule aggregate for {self.year} "
               "again (snakemake --forcerun aggregate), so the baseline's draws match this run.")
        expected = {"level": level, **identity}
        for name, want in expected.items():
            got = getattr(self, name)
            if got != want:
                raise InputDataError(f"{where}: {name} must be {want!r} for this run. Got {got!r}. {fix}")
        ids = np.asarray(zone_ids).astype(str)
        if ids.shape != self.zone_ids.shape or not np.array_equal(ids, self.zone_ids):
            raise InputDataError(f"{where}: zone_ids must be the {ids.size} zones of results/zones/{level}.gpkg in their "
                                 f"order. Got {self.zone_ids.size} zones, not the same. {fix}")
