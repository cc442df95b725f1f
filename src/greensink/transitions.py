"""Land transitions (IPCC Approach 3): where each piece of land was, and what it became, between years.

IPCC 2006 Guidelines, Vol. 4, Ch. 3 (Consistent representation of lands), §3.3.1 defines three approaches
to representing land use and its change. Approach 1 knows only the total area of each category per year;
Approach 2 adds a matrix of conversions between categories, without location; Approach 3 tracks the
conversions spatially explicitly, location by location, so that each unit of land has a category in every
year and the area of every transition is known where it happened. Here the unit of land is the pixel of the
grid and the categories are

* the vegetation class of each year (``kind`` "vegetation": none, grass, shrub, tree from
  ``results/{year}/vegetation_class.tif``), and
* where the green-space types are given per year (greenspace.path holds {year}), the green-space type
  (``kind`` "greenspace_type": the configured codes, plus ``none`` for land that is not typed green space).

Areas per zone come from the exact zone coverage matrices (zones × pixels, the covered fraction of each
pixel, :mod:`greensink.coverage`): the area of a transition in a zone is Σ coverage × transition weight of
the pixel × pixel area, so a parcel's transitions add up to its block's, and each zone's matrix adds up to
its area. The weight of a pixel's transition is

* vegetation: 1 for the pair (class in y0, class in y1) of the pixel, 0 for every other pair;
* green-space types: the pixel holds fractions of several types (polygon edges). Fractions alone do not
  say which part became what, so the **persistence-first** (minimum-change) rule allocates them: of each
  type, min(f0, f1) stays; each type's loss f0 − min goes to the gaining types in proportion to their gains
  f1 − min. This keeps the pixel's fractions of both years exactly (rows sum to y0, columns to y1), is exact
  wherever a pixel changed from one type to one other, and never invents a change a pixel did not show.

No data is its own class (``no data``), never ``none``: a pixel unobserved in a year (class NaN, type
fractions NaN) goes to the row or column ``no data`` of that year.

The carbon change attached to a transition is the stock change of the pixels in it: Σ coverage × weight ×
(carbon density y1 − carbon density y0, t C/ha, band 1 of ``results/{year}/carbon.tif``) × pixel area, t C.
A pixel's density is its whole area's (all types), so a type transition inside a mixed pixel carries the
pixel's mean change. Where the change is unknown on part of a transition's land (a carbon NaN in either
year) ``carbon_change_t`` is NaN (a partial sum is not the total); ``carbon_known_ha`` says how much of the
transition's area has a known change.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from greensink.vegetation import CLASS_GRASS, CLASS_NONE, CLASS_SHRUB, CLASS_TREE

log = logging.getLogger(__name__)

VEGETATION = "vegetation"
GREENSPACE_TYPE = "greenspace_type"
NO_DATA = "no data"
NOT_GREEN_SPACE = "none"  # land without a green-space type (observed: the polygons say so)
VEGETATION_CLASSES = {CLASS_NONE: "none", CLASS_GRASS: "grass", CLASS_SHRUB: "shrub", CLASS_TREE: "tree"}
COLUMNS = ["zone_id", "level", "y0", "y1", "kind", "from_class", "to_class", "area_ha", "carbon_change_t",
           "carbon_known_ha"]
AREA_EPS_HA = 1e-9  # 0.01 m²: coverage sums below this are float noise, not land
CHUNK_PIXELS = 65_536


def transition_pairs(years: Sequence[int]) -> list[tuple[int, int]]:
    """The year pairs of the transition tables: each consecutive pair of the sorted years and, with three or
    more years, the period pair (first, last)."""
    ys = sorted(int(y) for y in years)
    pairs = list(zip(ys[:-1], ys[1:], strict=True))
    if len(ys) >= 3:
        pairs.append((ys[0], ys[-1]))
    return pairs


def class_weights(c0: np.ndarray, c1: np.ndarray, n_classes: int) -> np.ndarray:
    """(pixels, K, K) transition weights of discrete classes 0..n_classes−1 (float, NaN no data): 1 at
    (class y0, class y1), with K = n_classes + 1 and index n_classes the class ``no data``."""
    k = n_classes + 1
    out = np.zeros((c0.size, k, k))
    i0 = np.where(np.isfinite(c0), np.nan_to_num(c0), n_classes).astype(np.int64)
    i1 = np.where(np.isfinite(c1), np.nan_to_num(c1), n_classes).astype(np.int64)
    bad = (i0 < 0) | (i0 > n_classes) | (i1 < 0) | (i1 > n_classes)
    if bad.any():
        raise ValueError(f"class codes must be 0..{n_classes - 1} or NaN. Got {sorted(set(c0[bad]) | set(c1[bad]))[:5]}.")
    out[np.arange(c0.size), i0, i1] = 1.0
    return out


def with_none(fractions: np.ndarray) -> np.ndarray:
    """(types + 1, pixels) shares of each type and, last, of land without a type (1 − Σ fractions, ≥ 0);
    NaN columns where any type fraction is NaN (no data)."""
    none = np.clip(1.0 - fractions.sum(axis=0), 0.0, None)
    return np.vstack([fractions, none[np.newaxis]])


def fraction_weights(f0: np.ndarray, f1: np.ndarray) -> np.ndarray:
    """(pixels, K, K) transition weights of class shares (classes, pixels) of two years, persistence first:
    min(f0, f1) of each class stays, the losses go to the gains in proportion to them. K = classes + 1, the
    last index ``no data`` (a pixel with a NaN share in a year is wholly no data that year)."""
    n, p = f0.shape
    k = n + 1
    out = np.zeros((p, k, k))
    ok0 = np.isfinite(f0).all(axis=0)
    ok1 = np.isfinite(f1).all(axis=0)
    a0, a1 = np.nan_to_num(f0).T, np.nan_to_num(f1).T  # (pixels, classes)
    stay = np.minimum(a0, a1)
    loss, gain = a0 - stay, a1 - stay
    total = gain.sum(axis=1)
    share = np.divide(gain, total[:, None], out=np.zeros_like(gain), where=total[:, None] > 0)
    both = ok0 & ok1
    moved = loss[:, :, None] * share[:, None, :]
    out[both, :n, :n] = moved[both]
    diag = np.arange(n)
    out[np.flatnonzero(both)[:, None], diag, diag] += stay[both]
    only1 = ~ok0 & ok1  # no data in y0: all of the pixel comes from "no data"
    out[only1, n, :n] = a1[only1]
    only0 = ok0 & ~ok1
    out[only0, :n, n] = a0[only0]
    out[~ok0 & ~ok1, n, n] = 1.0
    return out


@dataclass
class ZoneTransitions:
    """Per zone (rows) and transition (columns, from-class major: index i × K + j), sums in ha and t C."""

    area_ha: np.ndarray
    carbon_t: np.ndarray
    known_ha: np.ndarray
    names: list[str]

    def long(self, zone_ids: Sequence[str], level: str, y0: int, y1: int, kind: str) -> pd.DataFrame:
        """Long table, one row per zone and transition with area (rows of zero area left out)."""
        k = len(self.names)
        z, t = np.nonzero(self.area_ha > AREA_EPS_HA)
        area = self.area_ha[z, t]
        known = self.known_ha[z, t]
        complete = known >= area * (1 - 1e-9) - AREA_EPS_HA
        carbon = np.where(complete, self.carbon_t[z, t], np.nan)
        names = np.asarray(self.names, dtype=object)
        return pd.DataFrame({
            "zone_id": np.asarray(zone_ids, dtype=object)[z], "level": level, "y0": int(y0), "y1": int(y1), "kind": kind,
            "from_class": names[t // k], "to_class": names[t % k], "area_ha": area, "carbon_change_t": carbon,
            "carbon_known_ha": known,
        }, columns=COLUMNS)

    def matrix(self) -> pd.DataFrame:
        """Wide matrix of all zones together, ha: from-classes as rows, to-classes as columns, with totals."""
        k = len(self.names)
        m = self.area_ha.sum(axis=0).reshape(k, k)
        table = pd.DataFrame(m, index=pd.Index(self.names, name="from \\ to (ha)"), columns=self.names)
        table["total"] = table.sum(axis=1)
        table.loc["total"] = table.sum(axis=0)
        return table


def zone_transitions(matrix: sp.spmatrix, weights_of, delta_t_ha: np.ndarray, pixel_area_ha: float,
                     names: Sequence[str], chunk_pixels: int = CHUNK_PIXELS) -> ZoneTransitions:
    """Sum pixel transition weights over zones with exact coverage.

    ``matrix`` (zones × pixels) covered fractions; ``weights_of(idx)`` the (len(idx), K, K) weights of the
    flat pixel indices ``idx``; ``delta_t_ha`` (pixels,) carbon density change, NaN unknown. Streams over
    pixel chunks, so memory stays bounded by the chunk (and the zones × K² sums)."""
    k = len(names)
    csc = sp.csc_matrix(matrix)
    n_pix = csc.shape[1]
    area = np.zeros((csc.shape[0], k * k))
    carbon = np.zeros_like(area)
    known = np.zeros_like(area)
    for start in range(0, n_pix, chunk_pixels):
        idx = np.arange(start, min(start + chunk_pixels, n_pix))
        sub = csc[:, idx]
        if sub.nnz == 0:
            continue
        w = weights_of(idx).reshape(idx.size, k * k)
        d = delta_t_ha[idx]
        ok = np.isfinite(d)
        area += sub @ w
        carbon += sub @ (w * np.where(ok, d, 0.0)[:, None])
        known += sub @ (w * ok[:, None])
    return ZoneTransitions(area * pixel_area_ha, carbon * pixel_area_ha, known * pixel_area_ha, list(names))


def vegetation_names() -> list[str]:
    return [VEGETATION_CLASSES[c] for c in sorted(VEGETATION_CLASSES)] + [NO_DATA]


def type_names(types: Sequence[str]) -> list[str]:
    return [*types, NOT_GREEN_SPACE, NO_DATA]


def dominant_type(fractions: np.ndarray) -> np.ndarray:
    """Per pixel the index of the largest share among the types and, last, untyped land (index len(types):
    land without a green-space type), float32; NaN where a fraction is NaN. Ties go to the earlier type."""
    shares = with_none(fractions)
    out = np.argmax(np.nan_to_num(shares, nan=-1.0), axis=0).astype(np.float32)
    out[~np.isfinite(fractions).all(axis=0)] = np.nan
    return out


@dataclass
class TransitionProducts:
    """What rule transitions writes: the class stack, the per-level long tables and the city matrices."""

    classes: np.ndarray  # (years, rows, cols) vegetation class, NaN no data
    types: np.ndarray | None  # (years, rows, cols) dominant green-space type index, NaN no data; None: one layer
    tables: dict[str, pd.DataFrame]  # level -> long table
    matrices: dict[tuple[int, int], pd.DataFrame]  # pair -> vegetation matrix of the first level's zones
    type_matrices: dict[tuple[int, int], pd.DataFrame]  # pair -> green-space type matrix (types per year only)


@dataclass
class PairPiece:
    """One piece of the grid (the whole grid, or a tile) for a year pair: each level's coverage of its pixels
    (``matrices``, level order) and its pixels, flat, float64: vegetation classes and carbon density of y0 and
    y1 and, with types per year, the (types + 1, pixels) shares of :func:`with_none` (else None)."""

    matrices: Sequence[sp.spmatrix]
    classes0: np.ndarray
    classes1: np.ndarray
    carbon0: np.ndarray
    carbon1: np.ndarray
    shares0: np.ndarray | None = None
    shares1: np.ndarray | None = None


def add_transitions(total: ZoneTransitions | None, part: ZoneTransitions, rows: np.ndarray | None = None,
                    n_zones: int | None = None) -> ZoneTransitions:
    """The sums of two disjoint pieces of the grid together: ``part`` holds the zones ``rows`` (all zones when None)
    of the ``n_zones``; ``total`` None starts from zeros (or is ``part`` itself, all zones given)."""
    if rows is None:
        if total is None:
            return part
        rows = slice(None)
    elif total is None:
        k2 = part.area_ha.shape[1]
        total = ZoneTransitions(np.zeros((n_zones, k2)), np.zeros((n_zones, k2)), np.zeros((n_zones, k2)), part.names)
    total.area_ha[rows] += part.area_ha
    total.carbon_t[rows] += part.carbon_t
    total.known_ha[rows] += part.known_ha
    return total


def piece_transitions(matrix: sp.spmatrix, weights_of, delta_t_ha: np.ndarray, pixel_area_ha: float,
                      names: Sequence[str]) -> tuple[ZoneTransitions, np.ndarray | None]:
    """:func:`zone_transitions` of the zones a piece's coverage ``matrix`` touches (with their rows; None: every
    zone), so a tile's sums hold its own zones, not every zone of the level × K²."""
    csr = sp.csr_matrix(matrix)
    rows = np.flatnonzero(np.diff(csr.indptr) > 0)
    if rows.size == csr.shape[0]:
        return zone_transitions(csr, weights_of, delta_t_ha, pixel_area_ha, names), None
    return zone_transitions(csr[rows], weights_of, delta_t_ha, pixel_area_ha, names), rows


def transition_tables(years: Sequence[int], levels: Sequence[str], zone_ids: Mapping[str, Sequence[str]],
                      pixel_area_ha: float, pieces: Callable[[int, int, bool], Iterable[PairPiece]],
                      types: Sequence[str] = (), typed: bool = False,
                      ) -> tuple[dict[str, pd.DataFrame], dict[tuple[int, int], pd.DataFrame], dict[tuple[int, int], pd.DataFrame]]:
    """The long tables per level and the city matrices (vegetation; green-space types with ``typed``) of every
    pair of :func:`transition_pairs`, summed over the pieces ``pieces(y0, y1, with_shares)`` yields (the whole
    grid, or the tiles of a tiled run: the sums of disjoint pieces add up). Each pair and kind streams over the
    pieces once, holding one piece and the levels' zone sums."""
    veg_names, n_veg = vegetation_names(), len(VEGETATION_CLASSES)
    tnames = type_names(types)
    rows: dict[str, list[pd.DataFrame]] = {level: [] for level in levels}
    city: dict[tuple[int, int], pd.DataFrame] = {}
    city_types: dict[tuple[int, int], pd.DataFrame] = {}
    for y0, y1 in transition_pairs(years):
        kinds = [(VEGETATION, veg_names, lambda p: lambda idx: class_weights(p.classes0[idx], p.classes1[idx], n_veg))]
        if typed:
            kinds.append((GREENSPACE_TYPE, tnames,
                          lambda p: lambda idx: fraction_weights(p.shares0[:, idx], p.shares1[:, idx])))
        for kind, names, weights_of in kinds:
            sums: list[ZoneTransitions | None] = [None] * len(levels)
            for piece in pieces(y0, y1, kind == GREENSPACE_TYPE):
                delta = piece.carbon1 - piece.carbon0
                for i, m in enumerate(piece.matrices):
                    part, touched = piece_transitions(m, weights_of(piece), delta, pixel_area_ha, names)
                    sums[i] = add_transitions(sums[i], part, touched, m.shape[0])
            for i, level in enumerate(levels):
                rows[level].append(sums[i].long(zone_ids[level], level, y0, y1, kind))
                if i == 0:
                    (city if kind == VEGETATION else city_types)[(y0, y1)] = sums[i].matrix()
            log.info("%s transitions %d-%d, largest changes in the city: %s", kind, y0, y1, ", ".join(
                f"{a}->{b} {v:.2f} ha" for (a, b), v in _changed(city if kind == VEGETATION else city_types, y0, y1))
                or "none")
    tables = {level: pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)
              for level, parts in rows.items()}
    return tables, city, city_types


def transitions(years: Sequence[int], classes: Mapping[int, np.ndarray], carbon: Mapping[int, np.ndarray],
                matrices: Mapping[str, sp.spmatrix], zone_ids: Mapping[str, Sequence[str]], pixel_area_ha: float,
                fractions: Mapping[int, np.ndarray] | None = None, types: Sequence[str] = ()) -> TransitionProducts:
    """Land transitions of every pair of :func:`transition_pairs`, per level (``matrices`` and ``zone_ids``
    in level order, coarsest first: its zones together make the city matrices).

    ``classes`` year -> (rows, cols) vegetation class (0 none, 1 grass, 2 shrub, 3 tree, NaN no data);
    ``carbon`` year -> (rows, cols) carbon density, t C/ha, NaN unknown; ``fractions`` year -> (types, rows,
    cols) green-space type fractions when the types are given per year (None: vegetation classes only)."""
    years = sorted(int(y) for y in years)
    levels = list(matrices)
    flat_cls = {y: np.asarray(classes[y], dtype=np.float64).ravel() for y in years}
    flat_c = {y: np.asarray(carbon[y], dtype=np.float64).ravel() for y in years}
    flat_frac = ({y: with_none(np.asarray(fractions[y], dtype=np.float64).reshape(len(types), -1)) for y in years}
                 if fractions else None)

    def whole(y0: int, y1: int, shares: bool) -> list[PairPiece]:
        return [PairPiece([matrices[lv] for lv in levels], flat_cls[y0], flat_cls[y1], flat_c[y0], flat_c[y1],
                          flat_frac[y0] if shares else None, flat_frac[y1] if shares else None)]

    tables, city, city_types = transition_tables(years, levels, zone_ids, pixel_area_ha, whole, types,
                                                 typed=flat_frac is not None)
    stack = np.stack([np.asarray(classes[y], dtype=np.float32) for y in years])
    type_stack = (np.stack([dominant_type(np.asarray(fractions[y], dtype=np.float32)) for y in years])
                  if fractions else None)
    return TransitionProducts(stack, type_stack, tables, city, city_types)


def _changed(mats: Mapping[tuple[int, int], pd.DataFrame], y0: int, y1: int, top: int = 4) -> list:
    m = mats[(y0, y1)].drop(index="total", columns="total")
    s = m.stack()
    s = s[np.array([a != b for a, b in s.index]) & (s.to_numpy() > AREA_EPS_HA)].sort_values(ascending=False)
    return list(s.head(top).items())


def transition_record(res: TransitionProducts, years: Sequence[int], levels: Sequence[str],
                      types: Sequence[str] = ()) -> dict:
    """transitions.json: what the tables hold, how they were made, and the first level's totals per pair."""

    def totals(m: pd.DataFrame) -> dict:
        inner = m.drop(index="total", columns="total")
        diag = sum(float(inner.loc[c, c]) for c in inner.index)
        no_data = float(inner.loc[NO_DATA].sum() + inner[NO_DATA].sum() - inner.loc[NO_DATA, NO_DATA])
        return {"total_ha": float(m.loc["total", "total"]), "unchanged_ha": diag,
                "changed_ha": float(m.loc["total", "total"]) - diag - no_data + float(inner.loc[NO_DATA, NO_DATA]),
                "no_data_ha": no_data}

    pairs = transition_pairs(years)
    return {
        "method": "IPCC 2006 Guidelines Vol. 4 Ch. 3 Approach 3: spatially explicit land transitions, pixel by pixel; "
                  "zone areas from exact coverage; green-space type fractions allocated persistence first",
        "years": [int(y) for y in years], "pairs": [list(p) for p in pairs], "levels": list(levels),
        "kinds": [VEGETATION, *([GREENSPACE_TYPE] if types else [])],
        "classes": {VEGETATION: vegetation_names(), **({GREENSPACE_TYPE: type_names(types)} if types else {})},
        "city_level": levels[0] if levels else None,
        "city": {f"{y0}_{y1}": {VEGETATION: totals(res.matrices[(y0, y1)]),
                                **({GREENSPACE_TYPE: totals(res.type_matrices[(y0, y1)])} if types else {})}
                 for y0, y1 in pairs},
    }


def write_class_rasters(out: Mapping[str, Any], grid, years: Sequence[int], classes: Sequence[str | Path],
                        fractions: Sequence[str | Path], types: Sequence[str], typed: bool, compress: str = "zstd",
                        block_rows: int = 512) -> None:
    """``out["classes"]`` (each year's vegetation class, one band per year) and, with ``typed``, ``out["types"][0]``
    (each year's :func:`dominant_type`), written strip by strip: memory one strip of ``block_rows`` rows."""
    from rasterio.windows import Window

    from greensink import io

    names = [str(y) for y in years]
    with contextlib.ExitStack() as stack:
        cls_out = stack.enter_context(io.raster_writer(
            out["classes"], grid, len(years), band_names=names, compress=compress,
            tags={f"class_{k}": VEGETATION_CLASSES[k] for k in sorted(VEGETATION_CLASSES)}))
        type_out = stack.enter_context(io.raster_writer(
            out["types"][0], grid, len(years), band_names=names, compress=compress,
            tags={f"class_{k}": name for k, name in enumerate([*types, NOT_GREEN_SPACE])})) if typed else None
        for rows, _ in grid.windows(block_rows):
            window = Window(0, rows.start, grid.width, rows.stop - rows.start)
            cls_out.write(np.stack([io.read_raster(p, window=window) for p in classes]), rows.start)
            if type_out is not None:
                type_out.write(np.stack([dominant_type(io.read_raster(p, bands=list(range(1, len(types) + 1)), window=window))
                                         for p in fractions]), rows.start)


def run_transitions(zones: Sequence[str | Path], coverage: Sequence[str | Path], grid_json: str | Path,
                    classes: Sequence[str | Path], carbon: Sequence[str | Path], fractions: Sequence[str | Path],
                    out: Mapping[str, Any], *, years: Sequence[int], levels: Sequence[str], types: Sequence[str],
                    types_by_year: bool, compress: str = "zstd", size_px: int | None = None) -> dict:
    """Rule transitions: read each level's zones and coverage matrix, each year's vegetation classes, carbon
    (band 1) and, with ``types_by_year``, type fractions (one band per type of ``types``); compute the tables of
    :func:`transitions`; write ``out["classes"]`` (and ``out["types"]``: a list, empty without types per
    year), the long tables ``out["csv"]`` (one per level, with Parquet twins), the city matrices
    ``out["matrices"]`` and ``out["type_matrices"]`` (one per pair of :func:`transition_pairs`) and the record
    ``out["summary"]``, which is returned.

    The class rasters are written strip by strip (:func:`write_class_rasters`). The zone sums stream over the
    pieces of :func:`greensink.tiling.coverage_pieces`: the whole grid with the whole-grid matrices ``coverage``,
    or with ``size_px`` (a tiled run) each tile with its tiles' matrices (``coverage``:
    results/zones/tiles/{level}_coverage_{tile}.npz, level-major) and its windows of the rasters, so memory is
    one tile's pixels and matrices plus the zone sums; the tables equal the untiled ones to rounding."""
    from greensink import io
    from greensink.grid import Grid
    from greensink.tiling import coverage_pieces

    grid = Grid.read(grid_json)
    years = [int(y) for y in years]
    cls_of, c_of = dict(zip(years, classes, strict=True)), dict(zip(years, carbon, strict=True))
    frac_of = dict(zip(years, fractions, strict=True)) if types_by_year else {}
    zone_ids = {level: io.read_vector(path)["zone_id"].astype(str).tolist() for level, path in zip(levels, zones, strict=True)}
    bands = list(range(1, len(types) + 1))

    def flat(piece, path: str | Path, b: int | list[int] | None = None) -> np.ndarray:
        return np.asarray(piece.read(path, bands=b), dtype=np.float64).ravel()

    def pieces(y0: int, y1: int, shares: bool) -> Iterator[PairPiece]:
        tiles = coverage if size_px is not None else None
        for p in coverage_pieces(grid, levels, coverage, tiles, size_px):
            s0 = s1 = None
            if shares:
                s0, s1 = (with_none(flat(p, frac_of[y], bands).reshape(len(types), -1)) for y in (y0, y1))
            yield PairPiece(p.matrices, flat(p, cls_of[y0]), flat(p, cls_of[y1]), flat(p, c_of[y0], 1),
                            flat(p, c_of[y1], 1), s0, s1)

    typed = bool(types_by_year)
    tables, city, city_types = transition_tables(years, levels, zone_ids, grid.pixel_area_ha, pieces, types, typed=typed)
    write_class_rasters(out, grid, years, classes, fractions if typed else [], types, typed, compress)
    # the class rasters are on disk already: the record and the tables need the sums alone
    res = TransitionProducts(np.empty((len(years), 0, 0), np.float32), None, tables, city, city_types)
    for level, path in zip(levels, out["csv"], strict=True):
        io.write_table(path, res.tables[level], parquet=True)
    pairs = transition_pairs(years)
    for pair, path in zip(pairs, out["matrices"], strict=True):
        io.write_csv(path, res.matrices[pair].reset_index())
    for pair, path in zip(pairs if typed else [], out["type_matrices"], strict=True):
        io.write_csv(path, res.type_matrices[pair].reset_index())
    record = transition_record(res, years, levels, types if typed else [])
    io.write_json(out["summary"], record)
    for level in levels:
        log.info("%s: %d transition rows over %d pairs", level, len(res.tables[level]), len(pairs))
    return record
