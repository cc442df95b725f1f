"""The per-pixel interval of carbon.tif's bands 2–3 in closed form (``uncertainty.pixel_interval:
tabulated``): the per-type :class:`IntervalTable` and :func:`tabulated_map`, on the quantiles of a mixture of
curve draws and normal noise (:func:`greensink.carbon.solver.mixture_quantiles`, re-exported here with the
solver's ``SOLVER_*`` constants and :func:`mixed_cdf_means`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from greensink.carbon.pixels import (
    CHUNK_PIXELS,
    Predictors,
    iter_chunks,
    model_variants,
    ndvi_gate,
    ndvi_slope,
    observed_pixels,
    pixel_function,
    predictor_layers,
    served_variants,
    type_records,
    typed_pixels,
)
from greensink.carbon.solver import (  # noqa: F401  (re-exported: importable from here as before the split)
    SOLVER_ACCEPT,
    SOLVER_BLOCK,
    SOLVER_MAX_ITER,
    SOLVER_ROWS,
    SOLVER_RTOL,
    mixed_cdf_means,
    mixture_quantiles,
)
from greensink.errors import ModelError
from greensink.model import X_MIN_LOG, predict
from greensink.uncertainty import Noise


def interval_quantiles(interval_pct: float) -> tuple[float, float]:
    """Lower and upper quantiles (0–1) of a central interval: 90 -> (0.05, 0.95)."""
    tail = (100.0 - interval_pct) / 200.0
    return tail, 1.0 - tail


# ----------------------------------------------------------------------------- tabulated per-pixel interval

INTERVAL_METHODS = ("tabulated", "exact")
"""How carbon.tif's bands 2–3 are computed (``uncertainty.pixel_interval``): ``tabulated`` (closed-form noise,
the curve draws' percentiles looked up in a per-type table) or ``exact`` (every draw at every pixel, sorted)."""
TABLE_AXES: dict[str, tuple[float, float, float]] = {
    "ndvi": (-1.0, 1.0, 0.005), "fvc": (0.0, 1.0, 0.005), "canopy": (0.0, 1.0, 0.005), "height": (0.0, 100.0, 0.25)}
"""Predictor values (first, last, step) at which a one-predictor curve's interval is tabulated; a pixel whose
value lies outside is evaluated draw by draw (:func:`mixture_quantiles`)."""
TABLE_T_NODES = 17  # nodes of t = σ/(σ + κ) in 0..1 (σ the pixel's independent noise sd, κ the draws' own spread)
TABLE_LOG_STEP = 0.01  # step of ln x for the logarithmic and power forms
TABLE_X_STRIDE = 8  # R (the noise's shape) is tabulated at every 8th predictor node: it varies slowly with x
TABLE_S_NODES = 21  # shares s of the first type at which a pair of types is tabulated (IntervalTable.pair_lookup)
PAIR_TABLE_MIN_PIXELS = 16_000_000  # grids of at least this many pixels tabulate their two-type pixels by type pair:
# a pair's tables cost up to ~0.25 s of solves (21 shares × ~30 R nodes × 16 t nodes) against ~25 µs per pixel
# solved from its own draws, so they pay from ~10⁵ two-type pixels (a grid of ~15 Mpx at 2 % of typed pixels)


class IntervalTable:
    """The per-pixel interval of pixels of one green-space type, by table (``uncertainty.pixel_interval:
    tabulated``, docs/method.md).

    A pixel of one type with fraction f, gate g (0/1), one-predictor curve draws v_b(x) (floored at 0) and
    noise has draws max(0, f·(v_b(x) + α(x)·F + σ·Z)) with α(x) = sd_field·v(x) (the correlated residual
    field, types fitted to plots) and σ² = (sd_nugget·v(x))² + (v′(x)·se)² + (sd_edge·v(x)/f)² (nugget,
    NDVI error, edge shift; each only where on). Its percentiles are f·Q(x, σ), floored at 0, times g.
    Per (type, model variant) the table holds the draws' mean m and κ = √(variance + α²) at nodes u_i of
    :data:`TABLE_AXES` (u = x, or ln x for the logarithmic and power forms), and R = (Q − m)/(σ + κ) at
    every ``TABLE_X_STRIDE``-th node (every node without noise) and t_j = σ/(σ + κ) of ``TABLE_T_NODES``
    nodes in 0..1, so a pixel is m(u) + (σ + κ(u))·R(u, t), each interpolated linearly; R is the
    triangular's quantile at t = 1. Nodes are computed when a pixel first needs them
    (:func:`mixture_quantiles`), each from its own u alone, so the result does not depend on strips."""

    def __init__(self, models: Mapping, types: Sequence[str], noise: Noise | None, interval_pct: float,
                 pairs: bool = False) -> None:
        if noise is not None and noise.spec.paired:
            raise ValueError("IntervalTable serves one year's carbon map; paired years draw their noise")
        from greensink.uncertainty import triangular_quantile

        self.type_models = type_records(models, types)
        self.specs = [model_variants(m) for m in self.type_models]
        self.probs = interval_quantiles(interval_pct)
        self.noise = noise if noise is not None and noise.active else None
        self.t = np.linspace(0.0, 1.0, TABLE_T_NODES) if self.noise is not None else np.zeros(1)
        self.stride = TABLE_X_STRIDE if self.noise is not None else 1
        self.z_tri = np.array([triangular_quantile(p) for p in self.probs])
        self._tables: dict[tuple, dict] = {}
        self.pairs = pairs and self.noise is not None  # two-type pixels by pair tables (:meth:`pair_lookup`)

    def on(self, k: int) -> bool:
        """Whether type k's draws vary (its curve or table source is on)."""
        spec = self.noise.spec if self.noise is not None else None
        plots = self.type_models[k].source == "plots"
        return spec is None or (spec.curve if plots else spec.table)

    def tabulable(self, k: int, i: int) -> bool:
        preds, form = self.specs[k][i][0], self.specs[k][i][1]
        return form == "constant" or (len(preds) == 1 and preds[0] in TABLE_AXES)

    def pair_tabulable(self, k1: int, i1: int, k2: int, i2: int) -> bool:
        """Whether pixels of types k1 and k2 (variants i1, i2) can share a pair table: both tabulable, their
        curves on the same predictor."""
        if not (self.tabulable(k1, i1) and self.tabulable(k2, i2)):
            return False
        preds = {self.specs[k][i][0][0] for k, i in ((k1, i1), (k2, i2)) if self.specs[k][i][1] != "constant"}
        return len(preds) <= 1

    def _parts(self, key: tuple) -> list[tuple[int, int, float]]:
        """(type, variant, weight) of a table key: (k, i) a type, weight 1; (k1, i1, k2, i2, j) a pair of
        types at share s_j = j / (TABLE_S_NODES − 1) of the first (:meth:`pair_lookup`)."""
        if len(key) == 2:
            return [(key[0], key[1], 1.0)]
        k1, i1, k2, i2, j = key
        share = j / (TABLE_S_NODES - 1)
        return [(k1, i1, share), (k2, i2, 1.0 - share)]

    def _table(self, key: tuple) -> dict:
        if key not in self._tables:
            curves = [self.specs[k][i][:2] for k, i, _ in self._parts(key) if self.specs[k][i][1] != "constant"]
            logs = [form in ("logarithmic", "power") for _, form in curves]
            logx, xmin = any(logs), -math.inf
            if not curves:
                u0, u1, step = 0.0, 1.0, 1.0
            else:
                x0, x1, step = TABLE_AXES[curves[0][0][0]]
                u0, u1 = (math.log(X_MIN_LOG), math.log(x1)) if logx else (x0, x1)
                step = TABLE_LOG_STEP if logx else step
                if logx and not all(logs):  # a curve not clamped at X_MIN_LOG shares the log axis: not below it
                    xmin = X_MIN_LOG
            n = int(math.floor((u1 - u0) / step + 1e-9)) + 1
            nr = (n - 1) // self.stride + 1
            self._tables[key] = {"u0": u0, "step": step, "n": n, "logx": logx, "done": np.zeros(n, dtype=bool),
                                 "m": np.zeros(n), "kappa": np.zeros(n), "rdone": np.zeros(nr, dtype=bool),
                                 "nr": nr, "r": np.zeros((nr, self.t.size, len(self.probs))),
                                 "zeros": np.zeros(nr, dtype=np.int64), "rf": None, "rfdone": None,
                                 "flat": not curves, "xmin": xmin}
        return self._tables[key]

    def _draws(self, key: tuple, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                             np.ndarray]:
        """(draws (nodes, B), α, m, κ, kink signature) at fine nodes: the count of draws at the floor 0 (per type
        of a pair); where it changes between two R nodes some draw reaches 0 inside the cell and R changes
        fast there (:meth:`_fine_r` for a type; a pair's pixels there are solved from their own draws)."""
        tab = self._table(key)
        u = tab["u0"] + nodes * tab["step"]
        x = np.exp(u) if tab["logx"] else u
        vals, plot_est, zeros = None, np.zeros(nodes.size), np.zeros(nodes.size, dtype=np.int64)
        for k, i, weight in self._parts(key):
            preds, form, params, boot = self.specs[k][i]
            est = np.maximum(predict(form, params, x, preds), 0.0)
            v = (np.maximum(predict(form, boot, x, preds), 0.0).T if self.on(k)
                 else np.repeat(est[:, None], boot.shape[0], axis=1))
            zeros = zeros * (boot.shape[0] + 1) + (v == 0).sum(axis=1)
            vals = weight * v if vals is None else vals + weight * v
            if self.type_models[k].source == "plots":
                plot_est += weight * est
        alpha = np.zeros(nodes.size)
        if self.noise is not None:
            alpha = self.noise.sd_field * plot_est
        # rows contiguous: a node's mean and variance are then summed in the same order whether it is computed alone
        # or with others (a transposed (B, nodes) block is reduced in another order), so the table, and a tiled run's
        # carbon.tif, do not depend on which pixels first asked for the node
        vals = np.ascontiguousarray(vals)
        m = vals.mean(axis=1)
        kappa = np.sqrt(vals.var(axis=1) + alpha * alpha)
        tiny = 1e-12 * (1.0 + np.abs(m))
        return vals, alpha, m, np.where(kappa > tiny, kappa, tiny), zeros

    def _fill(self, key: tuple, nodes: np.ndarray, rnodes: np.ndarray) -> None:
        """Compute the table's missing fine ``nodes`` (m, κ) and R nodes ``rnodes``."""
        tab = self._table(key)
        if not tab["done"][nodes.min() : nodes.max() + 1].all():
            nodes = _missing(nodes, tab["done"])
            _, _, tab["m"][nodes], tab["kappa"][nodes], _ = self._draws(key, nodes)
            tab["done"][nodes] = True
        if rnodes is None or tab["rdone"][rnodes.min() : rnodes.max() + 1].all():
            return
        rnodes = _missing(rnodes, tab["rdone"])
        vals, alpha, m, kappa, zeros = self._draws(key, rnodes * self.stride)
        tab["r"][rnodes], tab["rdone"][rnodes] = self._r(vals, alpha, m, kappa), True
        tab["zeros"][rnodes] = zeros

    def _fine_r(self, key: tuple, nodes: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """R (n, P) at the fine ``nodes`` and t nodes ``cols`` (cells where draws reach the floor at 0 between two R
        nodes: R changes fast there), solved only at the (node, t) pairs the pixels need (:meth:`_fine_cells`: a
        kink cell's pixels use a few of the 17 t nodes, so the other t are never solved)."""
        tab = self._table(key)
        nt = self.t.size
        if tab["rf"] is None:
            tab["rf"] = np.zeros((tab["n"] * nt, len(self.probs)))
            tab["rfdone"] = np.zeros(tab["n"] * nt, dtype=bool)
        flat = nodes * nt + cols
        new = _missing(flat, tab["rfdone"])
        if new.size:
            tab["rf"][new], tab["rfdone"][new] = self._fine_cells(key, *np.divmod(new, nt)), True
        return tab["rf"].take(flat, axis=0)

    def _fine_cells(self, key: tuple, nodes: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """R (n, P) at fine nodes and t nodes (pairs, each from its node's own draws alone): t = 1 the triangular's
        quantile, t = 0 and the inner t solved by :func:`mixture_quantiles` started from R of the node's two R
        nodes at the same t, linear in u (their cell's R, which the pixels' lookup has filled; R bends inside a kink
        cell but stays continuous). The start depends on the node and t alone, so the result does not depend on
        which pixels first asked for it."""
        tab = self._table(key)
        st, nr = self.stride, tab["nr"]
        out = np.empty((nodes.size, len(self.probs)))
        t = self.t[cols]
        one = t >= 1.0
        out[one] = self.z_tri
        rest = np.flatnonzero(~one)
        if rest.size == 0:
            return out
        nodes, cols, t = nodes[rest], cols[rest], t[rest]
        un, pos = np.unique(nodes, return_inverse=True)
        vals, alpha, m, kappa, _ = self._draws(key, un)
        c = np.minimum(nodes // st, nr - 1)  # the R node at or below the fine node (on it: weight 0 for the next)
        c1 = np.minimum(c + 1, nr - 1)
        w = ((nodes - c * st) / st)[:, None]
        r = tab["r"]
        rc = r[c, cols] * (1.0 - w) + r[c1, cols] * w
        kap, mm = kappa[pos], m[pos]
        sigma = kap * (t / (1.0 - t))
        scale = sigma + kap
        start = (mm[:, None] + scale[:, None] * rc).T
        q = mixture_quantiles(vals[pos], alpha[pos], sigma, self.probs, start)
        out[rest] = ((q - mm) / scale).T
        return out

    def _r(self, vals: np.ndarray, alpha: np.ndarray, m: np.ndarray, kappa: np.ndarray) -> np.ndarray:
        """R (nodes, t, P) from the nodes' draws: t = 0 (σ = 0), then the t strictly between 0 and 1 level by level
        of a bisection of the t nodes (:func:`_t_levels`: 8, then 4 and 12, then 2, 6, 10, 14, then the odd ones of
        17), one solver call per level (rows t-major); the first level's rows are started from their Cornish-Fisher
        quantile, every later row from the quadratic through its node's three nearest t already solved (R is
        smooth in t; on benchmarks/raster_floor.py's 2000² tables 1.4 noise-CDF evaluations per row and percentile
        instead of 2.1 at the R nodes, 1.8 instead of 2.8 at the fine nodes, the last level's 1.0–1.05). Each node's
        R depends on its own draws alone."""
        n, nt, n_p = m.size, self.t.size, len(self.probs)
        r = np.empty((n, nt, n_p))
        r0 = ((mixture_quantiles(vals, alpha, np.zeros(n), self.probs) - m) / kappa).T  # (nodes, P) at t = 0
        r[:, 0, :] = r0
        r[:, self.t >= 1.0, :] = self.z_tri
        if n == 0 or nt <= 2:
            return r
        known = [0, nt - 1]  # t = 0 and t = 1 (the triangular's quantile)
        for level in _t_levels(nt):
            t = self.t[level]
            sigma = (kappa[None, :] * (t / (1.0 - t))[:, None]).reshape(-1)  # (t, nodes) flattened
            scale = sigma + np.tile(kappa, level.size)
            mm = np.tile(m, level.size)
            start = None
            if len(known) >= 3:
                rs = np.empty((level.size, n, n_p))
                for li, j in enumerate(level):
                    near = sorted(known, key=lambda i, j=j: (abs(i - j), i))[:3]
                    rs[li] = 0.0
                    for a in near:
                        w = math.prod((self.t[j] - self.t[b]) / (self.t[a] - self.t[b]) for b in near if b != a)
                        rs[li] += w * r[:, a, :]
                start = (mm[:, None] + scale[:, None] * rs.reshape(-1, n_p)).T
            q = mixture_quantiles(np.tile(vals, (level.size, 1)), np.tile(alpha, level.size), sigma, self.probs,
                                  start)
            r[:, level, :] = ((q - mm) / scale).T.reshape(level.size, n, n_p).transpose(1, 0, 2)
            known = sorted(known + level.tolist())
        return r

    def lookup(self, k: int, i: int, x: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(quantiles (P, n) of v_b(x) + α(x)F + σZ, mask of the pixels inside the table); NaN outside."""
        return self.lookup_key((k, i), x, sigma)

    def pair_lookup(self, k1: int, i1: int, k2: int, i2: int, x: np.ndarray, share: np.ndarray,
                    sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(quantiles (P, n), mask inside) of a pixel of two types per unit of their summed fraction F: the draws
        s·v1_b(x) + (1 − s)·v2_b(x) (s = ``share``, type k1's part of F), the field α = sd_field × the same mix
        of the plot types' curves, and independent noise of sd ``sigma`` (the pixel's σ / F); NaN outside.

        Per share node s_j (``TABLE_S_NODES`` in 0..1) the pair has a table over x and t like a type's. At the
        pixel's s the mean m is linear in s and κ² quadratic (a variance of a weighted sum), so both are exact
        from the nodes (linear, and quadratic through three nodes); the shape R is interpolated linearly in s
        between the two nearest nodes, each at the pixel's own t = σ/(σ + κ(s))."""
        share = np.asarray(share, dtype=np.float64)
        x = np.asarray(x, dtype=np.float64)
        sigma = np.broadcast_to(np.asarray(sigma, dtype=np.float64), share.shape)
        last = TABLE_S_NODES - 1
        pos = np.clip(share, 0.0, 1.0) * last
        js = np.minimum(np.floor(pos).astype(np.int64), last - 1)
        out = np.full((len(self.probs), share.size), np.nan)
        inside = np.zeros(share.size, dtype=bool)
        for j in np.unique(js):
            j = int(j)
            sel = np.flatnonzero(js == j)
            key = (k1, i1, k2, i2)
            nodes = (j, j + 1, j + 2) if j + 2 <= last else (j - 1, j, j + 1)
            located = {jj: self._locate((*key, jj), x[sel], shape=jj in (j, j + 1)) for jj in nodes}
            ok = located[j][0] & located[j + 1][0] & located[nodes[0]][0] & located[nodes[2]][0]
            for jj in (j, j + 1):  # a draw of either type reaching 0 inside the cell: left to the pixel's own draws
                inside_jj, cell = located[jj]
                if inside_jj.any():
                    zeros = self._table((*key, jj))["zeros"]
                    ok[np.flatnonzero(inside_jj)[zeros[cell["jr"]] != zeros[cell["jr1"]]]] = False
            if not ok.any():
                continue
            sel, s = sel[ok], pos[sel][ok]
            parts = {jj: self._subset(located[jj], ok) for jj in nodes}
            w = s - j
            m = parts[j]["m"] * (1.0 - w) + parts[j + 1]["m"] * w  # exact: the mean is linear in s
            n0, n1, n2 = nodes  # Lagrange through three nodes: exact for κ², quadratic in s
            l0 = (s - n1) * (s - n2) / ((n0 - n1) * (n0 - n2))
            l1 = (s - n0) * (s - n2) / ((n1 - n0) * (n1 - n2))
            l2 = (s - n0) * (s - n1) / ((n2 - n0) * (n2 - n1))
            k2sq = l0 * parts[n0]["kappa"] ** 2 + l1 * parts[n1]["kappa"] ** 2 + l2 * parts[n2]["kappa"] ** 2
            kappa = np.sqrt(np.maximum(k2sq, 0.0))
            sg = sigma[sel]
            with np.errstate(divide="ignore", invalid="ignore"):
                t = np.where(sg + kappa > 0, sg / (sg + kappa), 0.0)
            rv = self._shape((*key, j), parts[j], t) * (1.0 - w)[:, None]
            rv += self._shape((*key, j + 1), parts[j + 1], t) * w[:, None]
            out[:, sel] = (m[:, None] + (sg + kappa)[:, None] * rv).T
            inside[sel] = True
        return out, inside

    @staticmethod
    def _subset(cell: tuple, ok: np.ndarray) -> dict:
        """The pixels ``ok`` (of the inside ones' mask ``cell[0]``) of a :meth:`_locate` result."""
        inside, found = cell
        keep = ok[inside]
        return {k: (v[keep] if np.ndim(v) else v) for k, v in found.items()}

    def _locate(self, key: tuple, x: np.ndarray, shape: bool = True) -> tuple[np.ndarray, dict]:
        """(mask of the pixels inside the table, their cells: fine nodes ix, ix1 and weight wx, R nodes jr, jr1
        and weight wr, m and κ interpolated); fills the nodes they need (the R nodes only with ``shape``)."""
        tab = self._table(key)
        x = np.asarray(x, dtype=np.float64)
        below = x < tab["xmin"]
        if tab["flat"]:
            x = np.zeros_like(x)
        elif tab["logx"]:
            with np.errstate(divide="ignore", invalid="ignore"):
                x = np.log(np.maximum(x, X_MIN_LOG))
        pos = (x - tab["u0"]) / tab["step"]
        n, nr, st = tab["n"], tab["nr"], self.stride
        top = (nr - 1) * st  # the last fine node with an R node
        inside = np.isfinite(pos) & (pos >= 0) & (pos <= top) & ~below
        if not inside.any():
            return inside, {}
        pos = pos[inside]
        ix = np.minimum(np.floor(pos).astype(np.int64), max(n - 2, 0))
        ix1 = np.minimum(ix + 1, n - 1)
        wx = pos - ix
        rpos = pos / st
        jr = np.minimum(np.floor(rpos).astype(np.int64), max(nr - 2, 0))
        jr1 = np.minimum(jr + 1, nr - 1)
        wr = (rpos - jr)[:, None]
        self._fill(key, np.concatenate([ix, ix1]), np.concatenate([jr, jr1]) if shape else None)
        m = tab["m"][ix] * (1 - wx) + tab["m"][ix1] * wx
        kappa = tab["kappa"][ix] * (1 - wx) + tab["kappa"][ix1] * wx
        return inside, {"ix": ix, "ix1": ix1, "wx": wx, "jr": jr, "jr1": jr1, "wr": wr, "m": m, "kappa": kappa}

    def _shape(self, key: tuple, cell: dict, t: np.ndarray) -> np.ndarray:
        """R (n, P) of the table ``key`` at the located pixels ``cell`` (:meth:`_locate`) and their t."""
        tab = self._table(key)
        jr, jr1, wr, ix, ix1, wx = cell["jr"], cell["jr1"], cell["wr"], cell["ix"], cell["ix1"], cell["wx"]
        nt, st = self.t.size, self.stride
        r = tab["r"]
        if nt == 1:
            return r[jr, 0] * (1 - wr) + r[jr1, 0] * wr
        tt = t * (nt - 1)
        jt = np.minimum(np.floor(tt).astype(np.int64), nt - 2)
        wt = (tt - jt)[:, None]
        # R (n, P) at the cell's two R nodes (a, b) and the pixel's two t nodes (0, 1), gathered as rows of the
        # (R node × t, P) table (``take`` of flat row numbers: a third of the time of a two-index gather)
        flat = r.reshape(-1, r.shape[2])
        ia, ib = jr * nt + jt, jr1 * nt + jt
        a0, a1, b0, b1 = flat.take(ia, axis=0), flat.take(ia + 1, axis=0), flat.take(ib, axis=0), flat.take(ib + 1, axis=0)
        kink = tab["zeros"][jr] != tab["zeros"][jr1]
        if st > 1 and kink.any():  # some draws reach 0 inside the cell: the fine nodes instead, at the pixels' t nodes
            kk = np.flatnonzero(kink)
            ja, na, nb = jt[kk], ix[kk], ix1[kk]
            fr = self._fine_r(key, np.concatenate([na, na, nb, nb]), np.concatenate([ja, ja + 1, ja, ja + 1]))
            a0[kk], a1[kk], b0[kk], b1[kk] = np.split(fr, 4)
            wr = np.where(kink[:, None], wx[:, None], wr)
        return (a0 * (1 - wr) + b0 * wr) * (1 - wt) + (a1 * (1 - wr) + b1 * wr) * wt

    def lookup_key(self, key: tuple, x: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`lookup` of a table key (:meth:`_parts`)."""
        x = np.asarray(x, dtype=np.float64)
        inside, cell = self._locate(key, x)
        if not inside.any():
            return np.full((len(self.probs), x.size), np.nan), inside
        kappa = cell["kappa"]
        whole = inside.all()
        if np.ndim(sigma):
            s = np.asarray(sigma, dtype=np.float64)
            s = s if whole else s[inside]
        else:
            s = np.full(kappa.size, float(sigma))
        rv = self._shape(key, cell, s / (s + kappa))
        if whole:  # the (P, n) view of the (n, P) result: no masked copy
            return (cell["m"][:, None] + (s + kappa)[:, None] * rv).T, inside
        out = np.full((len(self.probs), x.size), np.nan)
        out[:, inside] = (cell["m"][:, None] + (s + kappa)[:, None] * rv).T
        return out, inside


def _missing(nodes: np.ndarray, done: np.ndarray) -> np.ndarray:
    """The distinct ``nodes`` not yet ``done`` (ascending, as ``np.unique``), by a mask over the table's nodes."""
    want = np.zeros(done.size, dtype=bool)
    want[nodes] = True
    want &= ~done
    return np.flatnonzero(want)


def _t_levels(nt: int) -> list[np.ndarray]:
    """The inner t nodes 1..nt−2 in levels of bisection between the end nodes 0 and nt−1: for 17 nodes
    [8], [4, 12], [2, 6, 10, 14], [1, 3, …, 15]."""
    levels, have = [], [0, nt - 1]
    while True:
        level = sorted({(a + b) // 2 for a, b in zip(have, have[1:], strict=False) if b - a > 1})
        if not level:
            return levels
        levels.append(np.array(level, dtype=np.int64))
        have = sorted(have + level)


def _same_types(frac: np.ndarray, ndvi: np.ndarray | None, idx: np.ndarray) -> list[np.ndarray]:
    """The pixels ``idx`` in groups of the same types present and the same NDVI observation (finite or not), each
    ascending: a chunk of one group is served whole by each of its types' models, so the pixel function sums
    its draws over whole (B, chunk) blocks instead of masked columns. A pixel's values do not depend on its chunk."""
    present = frac[:, idx] > 0
    if ndvi is not None:
        present = np.vstack([present, np.isfinite(ndvi[idx])[None]])
    order = np.lexsort(present[::-1])  # stable: ascending pixels within a group
    pattern = present[:, order]
    cut = np.flatnonzero((pattern[:, 1:] != pattern[:, :-1]).any(axis=0)) + 1
    return np.split(idx[order], cut)


def _pair_pixels(models: dict, types: Sequence[str], fractions: np.ndarray, layers: dict[str, np.ndarray],
                 table: IntervalTable, noise: Noise, two: np.ndarray, out: np.ndarray,
                 chunk_pixels: int = CHUNK_PIXELS, uses=None) -> np.ndarray:
    """Fill ``out`` (3, pixels) at the pixels ``two`` of exactly two types from their pair tables
    (:meth:`IntervalTable.pair_lookup`) where both types are served by their model (not its NDVI-only
    companion), pass their NDVI gates and are tabulable on one predictor; the estimate, α and σ are
    :func:`pixel_function`'s closed form (the estimate bit for bit). Returns the pixels left to the draws
    (sorted by type pair)."""
    if two.size == 0:
        return two
    n_types = len(types)
    frac = fractions.reshape(n_types, -1)
    present = frac[:, two] > 0
    code = np.argmax(present, axis=0) * n_types + (n_types - 1 - np.argmax(present[::-1], axis=0))
    ndvi = layers.get("ndvi")
    fn = pixel_function(models, types, fractions, layers, noise=noise, closed_form=True, moments_only=True, uses=uses)
    rest = []
    for c in np.unique(code):
        a, b = divmod(int(c), n_types)
        sel = two[code == c]
        if not table.pair_tabulable(a, 0, b, 0):
            rest.append(sel)
            continue
        for idx in iter_chunks(sel, chunk_pixels):
            ok = np.ones(idx.size, dtype=bool)
            seen = observed_pixels(layers, idx)
            x = np.zeros(idx.size)
            for k in (a, b):
                preds, form = table.specs[k][0][:2]
                tm = table.type_models[k]
                gate = ndvi_gate(tm, ndvi, idx)
                if not np.isscalar(gate):
                    ok &= gate == 1.0
                if form == "constant" and tm.ndvi_min is None:
                    continue  # an ungated constant serves the pixel, seen or not (served_variants)
                xk = layers[preds[0]][idx]
                ok &= np.isfinite(xk) & seen
                if form != "constant":
                    x = xk
            rest.append(idx[~ok])
            idx, x = idx[ok], x[ok]
            if idx.size == 0:
                continue
            est, _, _, sigma = fn(idx)
            fa, fb = frac[a, idx].astype(np.float64), frac[b, idx].astype(np.float64)
            total = fa + fb
            q, inside = table.pair_lookup(a, 0, b, 0, x, fa / total, sigma / total)
            out[0, idx] = est
            out[1:, idx[inside]] = np.maximum(total[inside] * q[:, inside], 0.0)
            rest.append(idx[~inside])
    return np.concatenate(rest) if rest else two[:0]


def tabulated_map(models: dict, types: Sequence[str], fractions: np.ndarray, predictors: Predictors,
                  table: IntervalTable, noise: Noise | None = None, row0: int = 0,
                  chunk_pixels: int = CHUNK_PIXELS, col0: int = 0, grid_width: int | None = None,
                  active: np.ndarray | None = None, out: np.ndarray | None = None, uses=None) -> np.ndarray:
    """(3, rows, cols) float32 like :func:`density_map` of :func:`pixel_function`, its bands 2–3 the
    percentiles of the draws' distribution in closed form (``uncertainty.pixel_interval: tabulated``):
    pixels of one type through ``table`` (:class:`IntervalTable`); with ``table.pairs`` (grids of at least
    :data:`PAIR_TABLE_MIN_PIXELS`, noise on) pixels of two types through their pair's tables
    (:meth:`IntervalTable.pair_lookup`); other pixels of several types, of a model with several predictors or
    with a predictor outside the table, from their curve and table draws and the noise's closed form
    (:func:`pixel_function` ``closed_form``, :func:`mixture_quantiles`). The estimate band is
    :func:`density_map`'s, bit for bit. ``uses`` (:class:`greensink.carbon.stats.UseCodes`): every model value
    evaluated is recorded there (carbon.json's use counts from this pass)."""
    n_types = len(types)
    shape = fractions.shape[1:]
    frac = fractions.reshape(n_types, -1)
    layers = predictor_layers(predictors)
    ndvi, ndvi_se = layers.get("ndvi"), layers.get("ndvi_se")
    spec = noise.spec if noise is not None and noise.active else None
    if spec is not None and spec.ndvi and ndvi_se is None:
        raise ModelError("the NDVI error source needs the 'ndvi_se' raster (results/{year}/ndvi_se.tif). "
                         "Got none. Pass it, or set uncertainty.ndvi.enabled: false.")
    # float32 as written (rounding is monotone: the clamp below is the same); ``out``: a (3, pixels) float32 buffer to fill
    if out is None:
        out = np.zeros((3, frac.shape[1]), dtype=np.float32)
    else:
        out.fill(0.0)
    active = typed_pixels(fractions) if active is None else active
    # per pixel of the block: the number of types present and the sum of their numbers (a one-type pixel's type),
    # by row-wise passes over the block (cheaper than gathering the typed pixels' fractions of every type)
    # in one byte per pixel where the sum of every type's number fits (up to 23 types; a quarter of the memory)
    small = np.uint8 if n_types * (n_types - 1) // 2 <= np.iinfo(np.uint8).max else np.int32
    count, code = np.zeros(frac.shape[1], dtype=small), np.zeros(frac.shape[1], dtype=small)
    here = np.empty(frac.shape[1], dtype=bool)
    for k in range(n_types):
        np.greater(frac[k], 0, out=here)
        count += here
        if k:
            np.add(code, k, out=code, where=here)
    n_of = count[active]
    if table.pairs:  # pixels of two types through pair tables
        slow = [active[n_of > 2], _pair_pixels(models, types, fractions, layers, table, noise, active[n_of == 2], out,
                                               chunk_pixels, uses)]
    else:
        slow = [active[n_of > 1]]
    single = active[n_of == 1]
    owner = code[single]
    sd_edge = noise.edge_sd_frac() if spec is not None and spec.position_sd_m > 0 else 0.0
    for k in range(n_types):
        tm = table.type_models[k]
        plots = tm.source == "plots"
        for idx in iter_chunks(single[owner == k], chunk_pixels):
            f = frac[k, idx].astype(np.float64)
            est = np.zeros(idx.size)
            band = np.full((2, idx.size), np.nan)
            todo = np.ones(idx.size, dtype=bool)
            gate = ndvi_gate(tm, ndvi, idx)
            for i, (preds, form, params, _boot), use, xu in served_variants(table.specs[k], layers, idx, todo, observed_pixels(layers, idx),
                                                                  tm.ndvi_min is not None):
                if not use.any():
                    continue
                whole = use.all()  # one variant serves the whole chunk: no masked copies
                iu, fu = (idx, f) if whole else (idx[use], f[use])
                g = gate if np.isscalar(gate) else gate[use]
                raw = predict(form, params, xu, preds)
                if uses is not None:
                    uses.record(k, i, iu, preds, xu, raw)
                v = g * np.maximum(raw, 0.0)
                if whole:
                    est += fu * v
                else:
                    est[use] += fu * v
                if not table.tabulable(k, i):
                    slow.append(iu)
                    continue
                sig2 = np.zeros(v.size)
                if spec is not None:
                    if plots:
                        sig2 += (noise.sd_nugget * v) ** 2
                    if spec.ndvi and "ndvi" in preds and form != "constant":
                        sig2 += (ndvi_slope(form, params, xu, preds, g) * np.nan_to_num(ndvi_se[iu])) ** 2
                    if sd_edge > 0:
                        cut = (fu > 1e-6) & (fu < 1 - 1e-6)
                        sig2 += np.where(cut, (sd_edge * v / np.where(cut, fu, 1.0)) ** 2, 0.0)
                q, inside = table.lookup(k, i, xu, np.sqrt(sig2))
                if whole:
                    band = g * np.maximum(fu * q, 0.0)
                else:
                    band[:, use] = g * np.maximum(fu * q, 0.0)
                if not inside.all():
                    slow.append(iu[~inside])
            est[todo] = np.nan
            out[0, idx] = est
            out[1:, idx] = band
    slow_idx = np.sort(np.concatenate(slow))
    if slow_idx.size:
        fn = pixel_function(models, types, fractions, predictors, noise=noise, row0=row0, closed_form=True, col0=col0,
                            grid_width=grid_width, uses=uses)
        for group in _same_types(frac, ndvi, slow_idx):
            for idx in iter_chunks(group, min(chunk_pixels, SOLVER_ROWS)):  # (B, chunk) arrays of a few MB
                est, draws, alpha, sigma = fn(idx)
                out[0, idx] = est
                ok = np.isfinite(est)
                if ok.all():  # no masked copies of the (B, chunk) draws
                    out[1:, idx] = np.maximum(mixture_quantiles(draws.T, alpha, sigma, table.probs), 0.0)
                    continue
                band = np.full((2, idx.size), np.nan)
                if ok.any():
                    band[:, ok] = np.maximum(mixture_quantiles(draws[:, ok].T, alpha[ok], sigma[ok], table.probs),
                                             0.0)
                out[1:, idx] = band
    # the table's interpolation (within its stated tolerance) can put a bound a hair past an estimate that sits on
    # it (e.g. a floored curve at 0): the band holds the estimate, as the exact path's percentiles of draws do
    known = np.isfinite(out[1])
    np.minimum(out[1], out[0], out=out[1], where=known)  # in place where known (no masked copies)
    np.maximum(out[2], out[0], out=out[2], where=known)
    return out.reshape(3, *shape)
