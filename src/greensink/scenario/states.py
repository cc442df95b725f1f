"""The baseline means a scenario's planned states are taken from, over the whole grid, read strip by strip.

A change without a given state burns in the baseline's typical pixel (:func:`greensink.scenario.burn.change_state`):
per layer, the weighted mean Σ w v / Σ w over the observed pixels (finite NDVI) with a positive weight, where the
weight is a type's fraction (greenspace), the canopy (planting), or bare untyped land (construction), falling back
to the vegetated or bare pixels. These means are over the whole grid, so a tiled run's rule scenario_plan needs
them before any tile is burned; this module computes them from strips of rows of the baseline's files
(:func:`greensink.scenario.files.landscape_strips`) with memory bounded by the strip, not the grid.

The sums are those of the whole-grid formula bit for bit: numpy adds a float64 array by pairwise summation
(blocks of at most 128 values with eight accumulators, larger ranges split at ``n // 2`` rounded down to a
multiple of 8), whose result depends only on the values in order and their count. :class:`StreamSum` is given
the count first (pass 1 over the strips), then the values in grid order (pass 2); it splits the count as numpy
does down to ranges of at most :data:`SEGMENT` values, adds each such range with ``np.sum`` itself as its values
arrive, and adds the ranges' sums up the same tree: ``np.sum`` of the whole masked array, with at most
:data:`SEGMENT` values held at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from greensink.scenario.plan import Change

SEGMENT = 1 << 16  # values per range added by np.sum at once (≥ 128, numpy's pairwise block)
LAYERS = ("ndvi", "fvc", "canopy", "height", "vegetation", "tree_shrub")  # greensink.scenario.burn.LAYERS
Block = tuple[Mapping[str, np.ndarray], np.ndarray]  # (layers {name: (rows, cols)}, fractions (types, rows, cols))


def _split(n: int) -> tuple[int, int]:
    """numpy's pairwise split of a range of n > 128 values: n // 2 rounded down to a multiple of 8, and the rest."""
    n2 = n // 2
    n2 -= n2 % 8
    return n2, n - n2


def segments(n: int, segment: int = SEGMENT) -> list[int]:
    """The lengths, in order, of the ranges numpy's pairwise summation of n values splits into, stopping at ranges
    of at most ``segment`` values (each then added by ``np.sum`` as a whole)."""
    if n <= segment:
        return [n]
    left, right = _split(n)
    return segments(left, segment) + segments(right, segment)


def _combine(n: int, sums: Iterable[float], segment: int) -> float:
    it = iter(sums)

    def node(m: int) -> float:
        if m <= segment:
            return next(it)
        left, right = _split(m)
        a = node(left)  # left first: the ranges' sums come in grid order
        return a + node(right)

    return float(node(n))


class StreamSum:
    """``np.sum`` of ``n`` float64 values given in order in pieces (:meth:`add`), bit for bit (module docstring).
    Memory: at most ``segment`` values and one sum per range."""

    def __init__(self, n: int, segment: int = SEGMENT) -> None:
        if segment < 128:
            raise ValueError(f"segment must be at least 128 (numpy's pairwise block). Got {segment} instead.")
        self.n, self.segment = int(n), segment
        self._lengths = segments(self.n, segment)
        self._sums: list[float] = []
        self._pending: list[np.ndarray] = []
        self._held = 0
        self._seen = 0

    def add(self, values: np.ndarray) -> None:
        """The next values of the stream (float64, 1-D, in order)."""
        values = np.asarray(values, dtype=np.float64).ravel()
        self._seen += values.size
        if self._seen > self.n:
            raise ValueError(f"StreamSum of {self.n} values was given {self._seen}.")
        while values.size:
            need = self._lengths[len(self._sums)] - self._held
            take, values = values[:need], values[need:]
            self._held += take.size
            if self._held < self._lengths[len(self._sums)]:
                self._pending.append(take.copy())  # a copy: a view would keep the caller's whole array alive
                continue
            chunk = np.concatenate([*self._pending, take]) if self._pending else take
            self._sums.append(np.sum(chunk))
            self._pending, self._held = [], 0

    def total(self) -> float:
        """The sum (``np.sum`` of the n values as one array); raises when fewer than n were given."""
        if self._seen != self.n:
            raise ValueError(f"StreamSum of {self.n} values was given {self._seen}.")
        if self.n == 0:
            return 0.0
        return _combine(self.n, self._sums, self.segment)


def weight_specs(change: Change) -> tuple[str, ...]:
    """The weights whose baseline means a change's state takes (:func:`greensink.scenario.burn.change_state`), the
    first and its fallback: ``type:<code>`` and ``vegetation`` (greenspace), ``canopy`` and ``vegetation``
    (planting), ``bare_untyped`` and ``bare`` (construction); none for a conversion."""
    if change.kind == "construction":
        return ("bare_untyped", "bare")
    if change.kind == "planting":
        return ("canopy", "vegetation")
    if change.kind == "greenspace":
        return (f"type:{change.type}", "vegetation")
    return ()


def weight(spec: str, layers: Mapping[str, np.ndarray], fractions: np.ndarray, types: Sequence[str]) -> np.ndarray:
    """The weight ``spec`` (:func:`weight_specs`) on a block of pixels, as the whole-grid rule makes it: a type's
    fraction, the canopy with NaN as 0, the vegetation layer, bare land (vegetation ≤ 0: 1.0, else 0.0), or bare
    land without any green-space type (fractions summing to ≤ 0)."""
    if spec.startswith("type:"):
        return fractions[list(types).index(spec[5:])]
    if spec == "canopy":
        return np.nan_to_num(layers["canopy"])
    if spec == "vegetation":
        return layers["vegetation"]
    bare = (layers["vegetation"] <= 0).astype(np.float32)
    if spec == "bare":
        return bare
    if spec == "bare_untyped":
        return bare * (fractions.sum(axis=0) <= 0)
    raise ValueError(f"unknown weight {spec!r}: expected type:<code>, canopy, vegetation, bare or bare_untyped.")


def _pieces(spec: str, layers: Mapping[str, np.ndarray], fractions: np.ndarray, types: Sequence[str]):
    """Per layer, the block's weights and weighted values over the pixels the mean takes (observed NDVI, weight > 0,
    the layer finite), float64 in grid order."""
    w_all = weight(spec, layers, fractions, types)
    ok = np.isfinite(layers["ndvi"]) & (w_all > 0)
    w = w_all[ok].astype(np.float64)
    for name in LAYERS:
        v = layers[name][ok].astype(np.float64)
        good = np.isfinite(v)
        yield name, w[good], w[good] * v[good]


@dataclass(frozen=True)
class BaselineMeans:
    """What a scenario's states take from the whole baseline: ``means`` {weight spec: {layer: mean} or None}
    (:func:`weighted_means`) and whether the height layer has a finite pixel anywhere (``has_height``)."""

    means: dict[str, dict[str, float] | None]
    has_height: bool

    def __getitem__(self, spec: str) -> dict[str, float] | None:
        return self.means[spec]


def weighted_means(blocks: Callable[[], Iterable[Block]], types: Sequence[str], specs: Iterable[str]) -> BaselineMeans:
    """The means of every weight of ``specs`` over the pixels of ``blocks`` (a function giving the grid's strips of
    rows in order, each (layers, fractions); called twice: counts, then sums): per layer Σ w v / Σ w over the
    observed pixels (finite NDVI) with w > 0 where the layer is finite (NaN where it is finite nowhere there), None
    where no observed pixel has w > 0. Bit for bit the whole grid's numpy sums (module docstring)."""
    specs = list(dict.fromkeys(specs))
    counts = {(s, name): 0 for s in specs for name in LAYERS}
    observed = dict.fromkeys(specs, 0)
    has_height = False
    for layers, fractions in blocks():
        has_height = has_height or bool(np.isfinite(layers["height"]).any())
        for s in specs:
            w_all = weight(s, layers, fractions, types)
            ok = np.isfinite(layers["ndvi"]) & (w_all > 0)
            observed[s] += int(ok.sum())
            for name in LAYERS:
                counts[s, name] += int(np.count_nonzero(np.isfinite(layers[name][ok])))
        del layers, fractions  # a strip may be a view of a larger read: let it go before the next
    sums = {key: (StreamSum(n), StreamSum(n)) for key, n in counts.items()}
    for layers, fractions in blocks():
        for s in specs:
            for name, w, wv in _pieces(s, layers, fractions, types):
                sums[s, name][0].add(w)
                sums[s, name][1].add(wv)
        del layers, fractions
    out: dict[str, dict[str, float] | None] = {}
    for s in specs:
        if not observed[s]:  # the weights are > 0 where taken, so their sum is 0 only when none is taken
            out[s] = None
            continue
        out[s] = {name: float(sums[s, name][1].total() / sums[s, name][0].total()) if counts[s, name] else float("nan")
                  for name in LAYERS}
    return BaselineMeans(out, has_height)
