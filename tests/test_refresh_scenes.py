"""The scenes-table digests of an incremental refresh (greensink.refresh), without Snakemake: rule ingest's
digest of a year's rows and the grid's digest of the row of the scene that fixes the lattice
(tests/test_refresh.py runs them in the workflow)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import rasterio
from affine import Affine

from greensink import refresh

SEASON = {"start": "05-01", "end": "09-30"}


def band(path, x0=500_000.0):
    with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint16", crs="EPSG:32650",
                       transform=Affine(30, 0, x0, 0, -30, 3_500_000.0)) as dst:
        dst.write(np.full((1, 4, 4), 8000, np.uint16))


def row(scene, date):
    return {"scene_id": scene, "datetime": date, "sensor": "landsat-c2-l2", "red": f"{scene}_B4.tif",
            "nir": f"{scene}_B5.tif"}


def table(tmp_path, rows, x0=500_000.0):
    for r in rows:
        for key in ("red", "nir"):
            band(tmp_path / r[key], x0)
    path = tmp_path / "scenes.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return {"years": [2022, 2023], "season": SEASON, "resolution": 30, "crs": "EPSG:32650",
            "imagery": {"source": "local", "scenes": str(path)}}


R22 = [row("a22", "2022-06-15T02:30:00Z"), row("b22", "2022-08-15"), row("w22", "2022-12-01")]  # w22 out of season
R23 = [row("a23", "2023-06-14"), row("b23", "2023-08-16")]


def test_a_years_digest_ignores_other_years_and_order_but_not_its_own_rows(tmp_path):
    cfg = table(tmp_path, R22)
    d22 = refresh.scene_rows_digest(cfg, 2022)
    assert refresh.scene_rows_digest(cfg, 2023) != d22
    # appending 2023 and reordering leaves 2022's digest; an out-of-season row of 2022 is not one of its rows
    cfg = table(tmp_path, [*R23, R22[1], R22[0], {**R22[2], "sensor": "sentinel-2-l2a"}])
    assert refresh.scene_rows_digest(cfg, 2022) == d22
    # the digest is that of 2022's two season rows alone (an independent table of just them)
    alone = tmp_path / "alone"
    alone.mkdir()
    assert refresh.scene_rows_digest(table(alone, R22[:2]), 2022) == d22
    # editing one of its rows changes it
    cfg = table(tmp_path, [*R23, {**R22[1], "datetime": "2022-08-16"}, R22[0]])
    assert refresh.scene_rows_digest(cfg, 2022) != d22
    # band files of the year's season rows, resolved relative to the table's folder
    assert refresh.scene_band_files(cfg, 2023) == sorted(str((tmp_path / f"{s}_B{b}.tif").resolve())
                                                         for s in ("a23", "b23") for b in (4, 5))
    assert refresh.scene_rows_digest({**cfg, "imagery": {"source": "demo"}}, 2022) is None


def test_the_lattice_digest_is_the_first_scenes_row(tmp_path):
    cfg = table(tmp_path, R22)
    d = refresh.lattice_scene_digest(cfg)
    assert refresh.lattice_scene_red(cfg) == [str((tmp_path / "a22_B4.tif").resolve())]
    assert refresh.lattice_scene_digest(table(tmp_path, [*R22, *R23])) == d  # a later year's rows: the same scene
    # an earlier scene in a season now fixes the lattice: a new digest
    assert refresh.lattice_scene_digest(table(tmp_path, [row("z22", "2022-05-02"), *R22])) != d
    assert refresh.lattice_scene_digest({**cfg, "grid": {"align": "resolution"}}) is None
