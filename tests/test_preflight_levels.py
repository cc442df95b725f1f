"""Zone levels checked for order (issue 15 item 2): a coarser level must contain its children.

greensink.zones.containment on hand-built squares whose shares are worked out in the comments and checked
against shapely's exact intersection areas; the preflight's verdicts (wrong order with the order that works,
straddling children named with their share outside) on small layers written to GeoPackages; and a 50,176-parcel
case that must stay fast.
"""

from __future__ import annotations

import time

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import box

from greensink.preflight import Findings, _containment, _order_that_works
from greensink.zones import containment

CRS = "EPSG:32650"


def test_containment_shares_by_hand():
    parents = np.array([box(0, 0, 100, 100), box(100, 0, 200, 100)], dtype=object)
    children = np.array([
        box(0, 0, 50, 50),      # inside the first, sharing two of its edges: share 1
        box(10, 10, 20, 20),    # well inside the first: 1
        box(80, 0, 120, 100),   # 20 of its 40 m in each: a tie, the first parent (lower index), share 0.5
        box(150, 50, 250, 100),  # half in the second, half outside both: 0.5
        box(300, 0, 310, 10),   # outside both: no parent, 0
        box(90, 0, 130, 10),    # 10 m in the first, 30 m in the second: the second, 0.75
    ], dtype=object)
    index, share = containment(children, parents)
    assert index.tolist() == [0, 0, 0, 1, -1, 1]
    np.testing.assert_allclose(share, [1.0, 1.0, 0.5, 0.5, 0.0, 0.75], atol=1e-12)
    # the shares are exact: the intersection area with the chosen parent over the child's area
    chosen = index >= 0
    exact = shapely.area(shapely.intersection(children[chosen], parents[index[chosen]])) / shapely.area(children[chosen])
    np.testing.assert_allclose(share[chosen], exact, atol=1e-12)


def test_containment_is_fast_for_fifty_thousand_parcels():
    # 224 × 224 parcels of 20 m in 28 × 28 blocks of 160 m, boundaries densified to 2 m / 5 m like digitised ones
    xs, ys = (a.ravel() for a in np.meshgrid(np.arange(224) * 20.0, np.arange(224) * 20.0))
    parcels = shapely.segmentize(shapely.box(xs, ys, xs + 20, ys + 20), 2.0)
    bx, by = (a.ravel() for a in np.meshgrid(np.arange(28) * 160.0, np.arange(28) * 160.0))
    blocks = shapely.segmentize(shapely.box(bx, by, bx + 160, by + 160), 5.0)
    start = time.perf_counter()
    index, share = containment(parcels, blocks)
    took = time.perf_counter() - start
    assert (share == 1.0).all()
    # parcel (row r, col c) lies in block (r // 8, c // 8)
    r, c = np.divmod(np.arange(224 * 224), 224)
    assert (index == (r // 8) * 28 + c // 8).all()
    assert took < 5.0, f"containment of 50,176 parcels took {took:.1f} s (about 0.3 s on a quiet core)"
    # moved 7 m east, the last parcel column of each block (1 in 8) has 7 of its 20 m in the next block (or outside)
    moved = shapely.transform(parcels, lambda xy: xy + [7.0, 0.0])
    _, share = containment(moved, blocks)
    np.testing.assert_allclose(np.sort(np.unique(share.round(12))), [13 / 20, 1.0])
    assert (share < 0.99).sum() == 224 * 28


def _layers(tmp_path, levels):
    """Write each (level, geometries) to a GeoPackage; return the readable list the preflight passes along."""
    out = []
    for i, (level, geoms) in enumerate(levels):
        path = tmp_path / f"{level}.gpkg"
        gpd.GeoDataFrame({"code": [f"{level[0].upper()}{k}" for k in range(len(geoms))]}, geometry=geoms,
                         crs=CRS).to_file(path, layer=level)
        out.append((i, {"level": level, "path": str(path), "layer": level, "id": "code"}))
    return out


CITY = [box(0, 0, 400, 400)]
DISTRICTS = [box(0, 0, 200, 400), box(200, 0, 400, 400)]
BLOCKS = [box(x, y, x + 100, y + 200) for x in (0, 100, 200, 300) for y in (0, 200)]


@pytest.mark.parametrize("listed, order", [
    (["block", "district", "city"], "city, district, block"),
    (["city", "block", "district"], "city, district, block"),
    (["district", "city", "block"], "city, district, block"),
])
def test_wrong_order_gives_the_order_that_works(tmp_path, listed, order):
    geoms = {"city": CITY, "district": DISTRICTS, "block": BLOCKS}
    readable = _layers(tmp_path, [(lv, geoms[lv]) for lv in listed])
    cfg = {"crs": CRS, "zones": [z for _, z in readable]}
    found = Findings()
    assert _containment(cfg, readable, found) is True
    assert found.problems and all("listed in the wrong order" in p for p in found.problems)
    assert found.problems[0].endswith(f"List the levels coarsest first: {order}.")
    from greensink.preflight import _level_geometries

    layers = [(i, z, *_level_geometries(cfg, z)) for i, z in readable]
    assert _order_that_works(layers) == order.split(", ")


def test_right_order_passes_and_straddlers_are_named(tmp_path):
    blocks = list(BLOCKS)
    blocks[2] = box(150, 0, 250, 200)  # B2 drawn across both districts: 50 of its 100 m in each → 50 % outside
    blocks[7] = box(300, 200, 404, 400)  # B7 4 m past the city's and the district's edge: 4/104 = 3.8 % outside
    readable = _layers(tmp_path, [("city", CITY), ("district", DISTRICTS), ("block", blocks)])
    cfg = {"crs": CRS, "zones": [z for _, z in readable]}
    found = Findings()
    assert _containment(cfg, readable, found) is False and not found.problems
    assert len(found.warnings) == 1, found.warnings
    w = found.warnings[0]
    assert w.startswith("zones: 2 of 8 'block' zones (zones[2], ")
    assert "do not lie within one 'district' zone" in w and "B2 (50.0 % outside), B7 (3.8 % outside)." in w
    clean = Findings()
    assert _containment(cfg, _layers(tmp_path / "..", [("city", CITY), ("district", DISTRICTS), ("block", BLOCKS)]),
                        clean) is False
    assert clean.problems == [] and clean.warnings == []
