"""How the fitted models served the typed pixels of a carbon map (carbon.json's per-type statistics):
counts of disjoint parts of a grid add up, so a streamed map's statistics are the whole grid's."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from greensink.carbon.pixels import Predictors, model_variants, predictor_layers, served_variants, type_records
from greensink.model import predict


def model_use_stats(models: dict, types: Sequence[str], fractions: np.ndarray, predictors: Predictors) -> dict:
    """Per type: typed pixels; shares (%) of the observed typed pixels outside the plots' range of
    the model's predictors, floored at 0, and (for a model with an NDVI-only companion) served by
    the companion because a chosen predictor had no value."""
    return use_stats_from_counts(model_use_counts(models, types, fractions, predictors))


def model_use_counts(models: dict, types: Sequence[str], fractions: np.ndarray, predictors: Predictors) -> dict:
    """The pixel counts behind :func:`model_use_stats`, per type: ``pixels`` (typed), ``observed``
    (typed with finite NDVI), ``outside`` (observed and outside the plots' predictor range of the
    model that served them), ``floored`` (model value < 0), ``served`` (observed pixels served by
    the model and by its NDVI-only companion, one count per variant) and ``unserved`` (observed,
    no usable model). Counts of disjoint parts of a grid add up (:func:`add_use_counts`)."""
    frac = fractions.reshape(len(types), -1)
    layers = predictor_layers(predictors)
    ndvi = layers["ndvi"]
    counts = {}
    for k, (t, m) in enumerate(zip(types, type_records(models, types), strict=True)):
        variants = model_variants(m)
        typed = frac[k] > 0
        idx = np.flatnonzero(typed & np.isfinite(ndvi))
        row = {"pixels": int(typed.sum()), "observed": int(idx.size), "outside": 0, "floored": 0,
               "served": [0] * len(variants), "unserved": 0}
        counts[t] = row
        if idx.size == 0:
            continue
        ranges = [m.predictor_ranges or ({"ndvi": m.x_range} if m.x_range else {}),
                  (m.ndvi_only.predictor_ranges if m.ndvi_only is not None else None) or {}]
        todo = np.ones(idx.size, dtype=bool)
        outside = np.zeros(idx.size, dtype=bool)
        floored = np.zeros(idx.size, dtype=bool)
        for i, (preds, form, params, _boot), use, xu in served_variants(variants, layers, idx, todo, None,
                                                                m.ndvi_min is not None):
            floored[use] = predict(form, params, xu, preds) < 0
            for j, q in enumerate(preds):
                if q in ranges[i]:
                    v = xu if len(preds) == 1 else xu[j]
                    outside[use] |= (v < ranges[i][q][0]) | (v > ranges[i][q][1])
            row["served"][i] = int(use.sum())
        row["outside"], row["floored"], row["unserved"] = int(outside.sum()), int(floored.sum()), int(todo.sum())
    return counts


class UseCodes:
    """The :func:`model_use_counts` of a block (a strip of the carbon map) recorded by the map's own pass:
    where a map function evaluates a type's model (or companion) at the pixels it serves, it hands the values
    to :meth:`record`, which keeps one code per type and pixel (the variant that served it, whether a
    predictor is outside the plots' range, whether the model value is < 0) at the observed pixels (finite
    NDVI). A pixel evaluated twice (a tabulated pixel solved again from its draws) writes the same code
    again, so nothing is counted twice; :meth:`counts` gives the counts of :func:`model_use_counts`, the
    curve evaluated once per pixel for the map and the counts together."""

    SERVED, OUTSIDE, FLOORED = 3, 4, 8  # bits of a code: variant + 1, outside the range, floored

    def __init__(self, models: dict, types: Sequence[str], ndvi: np.ndarray, codes: np.ndarray | None = None):
        ndvi = np.asarray(ndvi).reshape(-1)
        self.types = list(types)
        self.observed = np.isfinite(ndvi)
        self.ranges, self.n_variants = [], []
        for m in type_records(models, self.types):
            self.ranges.append([m.predictor_ranges or ({"ndvi": m.x_range} if m.x_range else {}),
                                (m.ndvi_only.predictor_ranges if m.ndvi_only is not None else None) or {}])
            self.n_variants.append(len(model_variants(m)))
        shape = (len(self.types), ndvi.size)
        if codes is None or codes.shape != shape or codes.dtype != np.uint8:
            codes = np.zeros(shape, dtype=np.uint8)
        else:  # a reused buffer
            codes.fill(0)
        self.codes = codes

    def record(self, k: int, i: int, pixels: np.ndarray, preds: Sequence[str], xu: np.ndarray,
               raw: np.ndarray) -> None:
        """Type ``k``'s variant ``i`` (0 the model, 1 its NDVI-only companion) served the flat ``pixels`` with
        predictor values ``xu`` (as :func:`~greensink.carbon.pixels.served_variants` gives them) and model
        values ``raw`` (before the floor at 0 and the NDVI gate)."""
        code = np.full(pixels.size, i + 1, dtype=np.uint8)
        rng = self.ranges[k][i]
        outside = np.zeros(pixels.size, dtype=bool)
        for j, q in enumerate(preds):
            if q in rng:
                v = xu if len(preds) == 1 else xu[j]
                outside |= (v < rng[q][0]) | (v > rng[q][1])
        code[outside] |= self.OUTSIDE
        code[raw < 0] |= self.FLOORED
        seen = self.observed[pixels]
        if not seen.all():  # an ungated constant serves unobserved pixels too: they are not counted
            pixels, code = pixels[seen], code[seen]
        self.codes[k, pixels] = code

    def counts(self, fractions: np.ndarray) -> dict:
        """:func:`model_use_counts` of the block (``fractions`` its (types, ...) fractions)."""
        frac = fractions.reshape(len(self.types), -1)
        out = {}
        bits = np.empty(self.codes.shape[1], dtype=np.uint8)  # one scratch row, reused
        for k, t in enumerate(self.types):
            typed = frac[k] > 0
            n_typed = int(np.count_nonzero(typed))
            typed &= self.observed
            observed = int(np.count_nonzero(typed))
            codes = self.codes[k]
            np.bitwise_and(codes, self.SERVED, out=bits)
            served = [int(np.count_nonzero(bits == i + 1)) for i in range(self.n_variants[k])]
            np.bitwise_and(codes, self.OUTSIDE, out=bits)
            outside = int(np.count_nonzero(bits))
            np.bitwise_and(codes, self.FLOORED, out=bits)
            out[t] = {"pixels": n_typed, "observed": observed, "outside": outside,
                      "floored": int(np.count_nonzero(bits)), "served": served, "unserved": observed - sum(served)}
        return out


def add_use_counts(total: dict, counts: dict) -> dict:
    """Add the :func:`model_use_counts` of another part of the grid into ``total`` (in place); returns it."""
    for t, row in counts.items():
        acc = total.setdefault(t, {"pixels": 0, "observed": 0, "outside": 0, "floored": 0,
                                   "served": [0] * len(row["served"]), "unserved": 0})
        for key in ("pixels", "observed", "outside", "floored", "unserved"):
            acc[key] += row[key]
        acc["served"] = [a + b for a, b in zip(acc["served"], row["served"], strict=True)]
    return total


def use_stats_from_counts(counts: dict) -> dict:
    """The per-type statistics of :func:`model_use_stats` from (summed) :func:`model_use_counts`:
    a type with no observed typed pixel is ``{"pixels": 0}``."""
    stats = {}
    for t, c in counts.items():
        n = c["observed"]
        if n == 0:
            stats[t] = {"pixels": 0}
            continue
        # the same float operations as a boolean mask's mean (count / n, in float64), so the
        # shares are the same bits whether the counts come from one array or from strips
        row = {
            "pixels": c["pixels"],
            "outside_plot_predictor_range_pct": float(100.0 * (c["outside"] / n)),
            "floored_at_zero_pct": float(100.0 * (c["floored"] / n)),
        }
        if len(c["served"]) > 1:
            row["ndvi_only_pct"] = float(100.0 * c["served"][1] / n)
        if c["unserved"]:
            row["no_usable_model_pct"] = float(100.0 * (c["unserved"] / n))
        stats[t] = row
    return stats
