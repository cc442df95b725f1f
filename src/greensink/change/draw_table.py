"""A year's curve and table draws tabulated on predictor nodes (``change.draws: analytic``, docs/method.md §8
"Tabulated curve draws").

A type's draws at a pixel are f·g·max(v_b(x), 0) (fraction f, NDVI gate g, bootstrap curve v_b of one predictor x),
f·g·max(c_b, 0) for a constant density, f·d_b on filled land. A curve's draws depend on x alone, so they are
evaluated once per predictor node u_j (x, or ln x for the logarithmic and power forms) and draw: the table T (nodes ×
draws). A pixel's draw is the linear interpolation between its two nodes, so the pixel is a sparse row of weights
over the table's rows (:meth:`YearDrawTable.weights`: two per curve type, one per constant or filled type) and

* a zone's sum of draws is (coverage @ weights) @ T: per pixel O(1) work, the draws enter only through the table;
* a block of pixels' draws (the pixel band) is the sparse rows @ T.

The interpolation's error is h²/8·max|v_b''| inside a cell of width h (at most h/4·|v_b'| in a cell where the draw
reaches the floor at 0); linear and logarithmic curves on their axis are exact. Pixels a table cannot serve (a model
of several predictors, a predictor value outside the axis) get their draws evaluated per pixel (``fallback``), as
:func:`greensink.carbon.pixel_function` does. Types whose draws are switched off (``uncertainty.curve``/``table``)
count their estimate in every draw, exactly (a row of ones weighted by the pixel's estimate)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from greensink.carbon.interval import TABLE_AXES
from greensink.carbon.pixels import (
    model_variants,
    ndvi_gate,
    observed_pixels,
    predictor_layers,
    served_variants,
    type_records,
)
from greensink.model import X_MIN_LOG, predict

#: Nodes per step of the carbon stage's interval tables (:data:`greensink.carbon.interval.TABLE_AXES`): NDVI, FVC and
#: canopy every 0.001, height every 0.05 m.
SUBDIVIDE = 5
#: Step of ln x for the logarithmic and power forms (from ln :data:`~greensink.model.X_MIN_LOG` to ln of the axis' end).
LOG_STEP = 0.004
#: Row sources (:attr:`YearDrawTable.source`): the curve (types fitted to plots) and the table (coefficient or default
#: density table) parts of ``var_share_curve_pct`` / ``var_share_table_pct``.
CURVE, TABLE = 0, 1


@dataclasses.dataclass
class _Block:
    """The rows of one (type, model variant) in the table: ``offset`` its first row, ``n`` its rows, the axis' nodes
    j at u = ``u0`` + j·``step`` (x = e^u where ``logx``, ``axis_n`` nodes) that the type's pixels use, node j in row
    ``offset`` + ``row_of[j]`` (−1: not tabulated); ``n`` = 1 for a constant density."""

    offset: int
    n: int
    u0: float = 0.0
    step: float = 1.0
    logx: bool = False
    axis_n: int = 0
    row_of: np.ndarray | None = None


@dataclasses.dataclass
class PixelWeights:
    """What :meth:`YearDrawTable.weights` gives for a block of pixels: the sparse weights ``rows`` (n, table rows)
    (csr), ``fallback`` {source: (B, n) or None} the draws of the terms no table serves, ``missing`` (n,) the pixels
    with a typed fraction no model or fill serves (the pixel function's NaN)."""

    rows: sp.csr_matrix
    fallback: dict[int, np.ndarray | None]
    missing: np.ndarray

    def draws(self, table: np.ndarray) -> np.ndarray:
        """(n, B) the pixels' draws: interpolated from ``table`` plus the fallback terms."""
        out = np.asarray(self.rows @ table)
        for fb in self.fallback.values():
            if fb is not None:
                out += fb.T
        return out


class YearDrawTable:
    """A year's curve and table draws (:func:`greensink.carbon.pixel_function`'s closed-form draws, every noise
    source off) as a table of node draws and per-pixel weights. ``models``, ``types``, ``fractions``, ``layers`` and
    ``fill`` as the pixel function takes them; ``curve`` / ``table`` the spec's switches (False: that source's types
    count their estimate in every draw); ``n_draws`` B."""

    def __init__(self, models: Mapping, types: Sequence[str], fractions: np.ndarray, layers, n_draws: int, *,
                 fill: Mapping | None = None, curve: bool = True, table: bool = True,
                 subdivide: int = SUBDIVIDE, log_step: float = LOG_STEP) -> None:
        self.frac = fractions.reshape(len(types), -1)
        self.layers = predictor_layers(layers)
        self.type_models = type_records(models, types)
        self.specs = [model_variants(m) for m in self.type_models]
        self.n_draws = int(n_draws)
        self.plots = [tm.source == "plots" for tm in self.type_models]
        self.on = [curve if p else table for p in self.plots]
        fills = [(fill or {}).get(t) for t in types]
        rows: list[np.ndarray] = [np.ones((1, self.n_draws)), np.ones((1, self.n_draws))]  # ONE rows: curve, table
        source = [CURVE, TABLE]
        self.blocks: list[list[_Block | None]] = []
        self.fill_rows: list[int | None] = []
        self.fills = fills
        offset = 2
        for k, variants in enumerate(self.specs):
            src = CURVE if self.plots[k] else TABLE
            blocks: list[_Block | None] = []
            for preds, form, _params, boot in variants:
                block, vals = None, None
                if not self.on[k]:
                    pass  # the estimate in every draw: the ONE row
                elif form == "constant":
                    block = _Block(offset, 1)
                    vals = np.maximum(predict(form, boot, np.zeros(1), preds), 0.0).T  # (1, B)
                elif len(preds) == 1 and preds[0] in TABLE_AXES:
                    x0, x1, step = TABLE_AXES[preds[0]]
                    logx = form in ("logarithmic", "power")
                    if logx:
                        u0, u1, h = math.log(X_MIN_LOG), math.log(x1), float(log_step)
                    else:
                        u0, u1, h = x0, x1, step / subdivide
                    axis_n = int(math.floor((u1 - u0) / h + 1e-9)) + 1
                    nodes = self._nodes(k, preds[0], logx, u0, h, axis_n)
                    if nodes.size:  # the axis' nodes u0 + j·h around the type's values
                        row_of = np.full(axis_n, -1, dtype=np.int64)
                        row_of[nodes] = np.arange(nodes.size)
                        block = _Block(offset, nodes.size, u0, h, logx, axis_n, row_of)
                        u = u0 + h * nodes
                        x = np.exp(u) if logx else u
                        vals = np.ascontiguousarray(np.maximum(predict(form, boot, x, preds), 0.0).T)  # (n, B)
                if block is not None:
                    rows.append(vals)
                    source += [src] * block.n
                    offset += block.n
                blocks.append(block)
            self.blocks.append(blocks)
            if fills[k] is not None and self.on[k]:
                rows.append(np.asarray(fills[k][1], dtype=np.float64)[None, :])
                source.append(src)
                self.fill_rows.append(offset)
                offset += 1
            else:
                self.fill_rows.append(None)
        #: (rows, B) the node draws; row 0 and 1 are ones (a switched-off type's estimate, curve and table)
        self.table = np.ascontiguousarray(np.vstack(rows))
        #: (rows,) CURVE or TABLE per row
        self.source = np.asarray(source, dtype=np.int8)

    def _nodes(self, k: int, pred: str, logx: bool, u0: float, h: float, axis_n: int) -> np.ndarray:
        """The nodes (ascending, of the axis u0 + j·h, ``axis_n`` nodes) that type k's pixels' values of ``pred``
        inside the axis fall between (:meth:`weights`' interpolation, the same arithmetic); none without such a value
        (the type's pixels are then served per pixel, if any)."""
        layer = self.layers.get(pred)
        if layer is None:
            return np.zeros(0, dtype=np.int64)
        x = layer[self.frac[k] > 0]
        x = x[np.isfinite(x)]
        if logx:
            x = np.log(np.maximum(x, X_MIN_LOG))
        pos = (x - u0) / h
        pos = pos[(pos >= 0) & (pos <= axis_n - 1)]
        j = np.minimum(np.floor(pos).astype(np.int64), axis_n - 2)
        used = np.zeros(axis_n, dtype=bool)
        used[j] = True
        used[j + 1] = True
        return np.flatnonzero(used)

    @property
    def n_rows(self) -> int:
        return self.table.shape[0]

    def weights(self, idx: np.ndarray) -> PixelWeights:
        """The pixels ``idx``' weights over the table's rows, with the pixel function's choice of model (the model,
        then its NDVI-only companion), gate, fill and missing pixels."""
        n = idx.size
        ndvi = self.layers.get("ndvi")
        observed = observed_pixels(self.layers, idx)
        missing = np.zeros(n, dtype=bool)
        ri: list[np.ndarray] = []
        ci: list[np.ndarray] = []
        vi: list[np.ndarray] = []
        fallback: dict[int, np.ndarray | None] = {CURVE: None, TABLE: None}
        for k, (variants, tm) in enumerate(zip(self.specs, self.type_models, strict=True)):
            f = self.frac[k, idx].astype(np.float64)
            todo = f > 0
            if not todo.any():
                continue
            src = CURVE if self.plots[k] else TABLE
            gate = ndvi_gate(tm, ndvi, idx)
            for i, (preds, form, params, boot), use, xu in served_variants(variants, self.layers, idx, todo, observed,
                                                                          tm.ndvi_min is not None):
                if not use.any():
                    continue
                pos = np.flatnonzero(use)
                g = gate if np.isscalar(gate) else gate[use]
                w = f[use] * g
                block = self.blocks[k][i]
                if not self.on[k]:  # the estimate in every draw
                    ri.append(pos)
                    ci.append(np.full(pos.size, src))
                    vi.append(w * np.maximum(predict(form, params, xu, preds), 0.0))
                    continue
                out = np.ones(pos.size, dtype=bool)
                if block is not None and block.n == 1:
                    ri.append(pos)
                    ci.append(np.full(pos.size, block.offset))
                    vi.append(w * np.ones(pos.size))
                    out[:] = False
                elif block is not None:
                    x = np.asarray(xu, dtype=np.float64)
                    with np.errstate(divide="ignore", invalid="ignore"):
                        u = np.log(np.maximum(x, X_MIN_LOG)) if block.logx else x
                    p = (u - block.u0) / block.step
                    inside = np.isfinite(p) & (p >= 0) & (p <= block.axis_n - 1)
                    j = np.minimum(np.floor(p[inside]).astype(np.int64), block.axis_n - 2)
                    ra, rb = block.row_of[j], block.row_of[j + 1]
                    here = (ra >= 0) & (rb >= 0)  # always, for the type's own pixels (:meth:`_nodes`)
                    inside[inside] = here
                    j, ra, rb = j[here], ra[here], rb[here]
                    t = p[inside] - j
                    wi = w[inside]
                    ri += [pos[inside], pos[inside]]
                    ci += [block.offset + ra, block.offset + rb]
                    vi += [wi * (1.0 - t), wi * t]
                    out = ~inside
                if out.any():  # no table serves these terms: their draws, per pixel
                    xo = xu[..., out]
                    go = g if np.isscalar(g) else g[out]
                    vb = go * np.maximum(predict(form, boot, xo, preds), 0.0)
                    if fallback[src] is None:
                        fallback[src] = np.zeros((self.n_draws, n))
                    fallback[src][:, pos[out]] += f[use][out] * vb
            if self.fills[k] is not None and todo.any():
                pos = np.flatnonzero(todo)
                ri.append(pos)
                if self.fill_rows[k] is not None:
                    ci.append(np.full(pos.size, self.fill_rows[k]))
                    vi.append(f[todo])
                else:  # the fill's estimate in every draw
                    ci.append(np.full(pos.size, src))
                    vi.append(f[todo] * float(self.fills[k][0]))
            else:
                missing |= todo
        if ri:
            rows = sp.csr_matrix((np.concatenate(vi), (np.concatenate(ri), np.concatenate(ci))),
                                 shape=(n, self.n_rows))
        else:
            rows = sp.csr_matrix((n, self.n_rows))
        return PixelWeights(rows, fallback, missing)
