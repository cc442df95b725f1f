"""Quick-look PNG maps for Snakemake's report (rule report_maps, greensink.report.quicklooks)."""

from __future__ import annotations

import base64
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from PIL import Image
from shapely.geometry import box

from greensink import io
from greensink.grid import Grid
from greensink.report.quicklooks import png_bytes, run_report_maps

CRS = "EPSG:32651"
X0, Y0 = 500_000.0, 3_500_000.0


def test_png_bytes_decodes_a_data_uri_and_names_anything_else() -> None:
    data = b"\x89PNG\r\n\x1a\nabc"
    assert png_bytes("data:image/png;base64," + base64.b64encode(data).decode()) == data
    with pytest.raises(ValueError, match="PNG data URI"):
        png_bytes("data:image/jpeg;base64,AAAA")


def test_run_report_maps_one_scale_per_quantity(tmp_path: Path) -> None:
    g = Grid(crs=CRS, transform=Affine(10.0, 0.0, X0, 0.0, -10.0, Y0 + 100.0), width=10, height=10)
    grid_json = io.write_json(tmp_path / "grid.json", g.to_dict())
    a = np.arange(100, dtype=np.float32).reshape(10, 10)  # 0 .. 99 t C/ha
    a[0, 0] = np.nan  # no observation: left out of the scale
    b = np.full((10, 10), 10.0, np.float32)
    carbon = [io.write_raster(tmp_path / "c0.tif", a, g), io.write_raster(tmp_path / "c1.tif", b, g)]
    sink = np.linspace(-4.0, 1.0, 100, dtype=np.float32).reshape(10, 10)
    sinks = [io.write_raster(tmp_path / "s.tif", sink, g)]
    zones = tmp_path / "d.gpkg"
    gpd.GeoDataFrame({"zone_id": ["A", "B"]}, geometry=[box(X0, Y0, X0 + 50, Y0 + 100), box(X0 + 50, Y0, X0 + 100, Y0 + 100)],
                     crs=CRS).to_file(zones, driver="GPKG")
    out_c, out_s = [tmp_path / "2023.png", tmp_path / "2024.png"], [tmp_path / "2023_2024.png"]
    limits = run_report_maps(carbon=carbon, sinks=sinks, grid=grid_json, boundaries=zones, out_carbon=out_c,
                             out_sinks=out_s, years=[2023, 2024], pairs=[(2023, 2024)])
    # 99th percentile (linear) of 1..99 and 100 × 10: numpy is the independent reference here
    values = np.concatenate([np.arange(1, 100), np.full(100, 10.0)])
    assert limits["carbon_t_ha_max"] == pytest.approx(float(np.percentile(values, 99)), rel=1e-6)
    # 98th percentile of |sink|: the top of |linspace(-4, 1, 100)| is 4, then 4 - 5/99, ...
    assert limits["sink_t_ha_yr_max"] == pytest.approx(float(np.percentile(np.abs(sink), 98)), rel=1e-6)
    assert 3.8 < limits["sink_t_ha_yr_max"] < 4.0
    for path in out_c + out_s:
        with Image.open(path) as im:
            assert im.format == "PNG" and im.size == (700, 600)  # greensink.report.maps FIG_SIZE_IN × DPI


def test_run_report_maps_needs_one_output_per_year(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="one input and one output per entry"):
        run_report_maps(carbon=["a.tif"], sinks=[], grid=tmp_path / "g.json", boundaries=None, out_carbon=[],
                        out_sinks=[], years=[2023], pairs=[])
