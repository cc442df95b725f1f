"""Tests of greensink.io: COG rasters, GeoPackage + CSV tables, JSON, sparse matrices,
atomic writes and deterministic output.

Rasters use a 6 × 8 grid of 10 m pixels in UTM 51N whose top-left corner is (350000, 3460060).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import scipy.sparse as sp
from affine import Affine
from rasterio.windows import Window
from shapely.geometry import Point, box

from greensink import io
from greensink.errors import InputDataError
from greensink.grid import Grid

GRID = Grid("EPSG:32651", Affine(10.0, 0.0, 350000.0, 0.0, -10.0, 3460060.0), width=8, height=6)


def sample(seed: int = 0, bands: int | None = None) -> np.ndarray:
    """Float64 values with NaNs, the way a product array arrives at write_raster."""
    rng = np.random.default_rng(seed)
    shape = GRID.shape if bands is None else (bands, *GRID.shape)
    arr = rng.uniform(-1.0, 1.0, size=shape)
    arr[..., 0, 0] = np.nan
    arr[..., 5, 7] = np.nan
    return arr


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ----------------------------------------------------------------------------- rasters


def test_raster_round_trip_float_to_float32_with_nan_nodata(tmp_path):
    data = sample()
    path = io.write_raster(tmp_path / "ndvi.tif", data, GRID, band_names=["ndvi"], tags={"units": "1", "year": 2023})
    with rasterio.open(path) as src:
        assert src.dtypes == ("float32",)
        assert np.isnan(src.nodata)
        assert src.crs.to_epsg() == 32651
        assert src.transform == GRID.transform
        assert (src.height, src.width) == GRID.shape
        assert src.descriptions == ("ndvi",)
        assert src.tags()["units"] == "1"
        assert src.tags()["year"] == "2023"  # tag values are stored as text
    out = io.read_raster(path, bands=1)
    assert out.dtype == np.float32 and out.shape == GRID.shape
    np.testing.assert_array_equal(out, data.astype(np.float32))  # NaNs in the same places
    assert np.isnan(out[0, 0]) and np.isnan(out[5, 7])
    assert io.read_grid(path) == GRID
    assert io.band_names(path) == ["ndvi"]
    # nothing but the product is left in the folder (no temp file, no .aux.xml sidecar)
    assert listing(tmp_path) == ["ndvi.tif"]


def test_raster_multiband_descriptions_band_tags_and_window(tmp_path):
    data = sample(1, bands=3)
    path = io.write_raster(
        tmp_path / "carbon.tif", data, GRID,
        band_names=["carbon_t_ha", "carbon_t_ha_lo", "carbon_t_ha_hi"],
        band_tags=[{"units": "t C/ha"}, {"units": "t C/ha"}, {"units": "t C/ha"}],
    )
    assert io.band_names(path) == ["carbon_t_ha", "carbon_t_ha_lo", "carbon_t_ha_hi"]
    with rasterio.open(path) as src:
        assert src.count == 3
        assert src.tags(2)["units"] == "t C/ha"
    out = io.read_raster(path)
    assert out.shape == (3, *GRID.shape)
    np.testing.assert_array_equal(out, data.astype(np.float32))
    np.testing.assert_array_equal(io.read_raster(path, bands=[3]), data[2:3].astype(np.float32))
    part = io.read_raster(path, bands=2, window=Window(2, 1, 3, 4))  # col 2, row 1, 3 wide, 4 high
    np.testing.assert_array_equal(part, data[1, 1:5, 2:5].astype(np.float32))


def test_band_names_default_when_description_is_missing(tmp_path):
    path = io.write_raster(tmp_path / "x.tif", sample(bands=2), GRID, band_names=["first"])
    assert io.band_names(path) == ["first", "band_2"]


def test_raster_is_a_tiled_cog_with_512_blocks(tmp_path):
    path = io.write_raster(tmp_path / "small.tif", sample(), GRID)
    with rasterio.open(path) as src:
        assert src.driver == "GTiff"
        assert src.profile["tiled"] is True
        assert src.profile["blockxsize"] == 512 and src.profile["blockysize"] == 512
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"


def test_big_raster_gets_overviews(tmp_path):
    # 1100 × 1100 px is bigger than one 512 block, so "overviews: auto" builds 1/2 and 1/4 levels
    big = Grid("EPSG:32651", Affine(10.0, 0.0, 350000.0, 0.0, -10.0, 3460000.0), width=1100, height=1100)
    data = np.zeros(big.shape, dtype=np.float32)
    data[:550] = 1.0
    path = io.write_raster(tmp_path / "big.tif", data, big)
    with rasterio.open(path) as src:
        assert src.overviews(1) == [2, 4]
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        # average resampling: the coarsest level keeps the values 1 and 0 of the two halves
        ov = src.read(1, out_shape=(275, 275))
        assert ov[0, 0] == 1.0 and ov[-1, -1] == 0.0
    np.testing.assert_array_equal(io.read_raster(path, bands=1), data)


@pytest.mark.parametrize("codec", sorted(io.COMPRESS_OPTIONS))
def test_every_codec_round_trips_exactly(tmp_path, codec):
    data = sample(2)
    path = io.write_raster(tmp_path / f"{codec}.tif", data, GRID, compress=codec)
    np.testing.assert_array_equal(io.read_raster(path, bands=1), data.astype(np.float32))
    expected = io.COMPRESS_OPTIONS[codec]["compress"]
    with rasterio.open(path) as src:
        assert src.tags(ns="IMAGE_STRUCTURE").get("COMPRESSION", "NONE") == expected


@pytest.mark.parametrize("codec", sorted(io.COMPRESS_OPTIONS))
def test_every_codec_keeps_integer_dtype_and_nodata(tmp_path, codec):
    data = np.arange(48, dtype=np.uint8).reshape(GRID.shape)
    data[0, 0] = 255
    path = io.write_raster(tmp_path / "classes.tif", data, GRID, compress=codec, nodata=255)
    with rasterio.open(path) as src:
        assert src.dtypes == ("uint8",)
        assert src.nodata == 255
        np.testing.assert_array_equal(src.read(1), data)
    out = io.read_raster(path, bands=1)  # read_raster turns nodata into NaN
    assert np.isnan(out[0, 0])
    np.testing.assert_array_equal(out.ravel()[1:], np.arange(1, 48, dtype=np.float32))


def test_write_raster_refuses_a_shape_that_is_not_the_grid(tmp_path):
    with pytest.raises(ValueError, match=r"does not match grid \(6, 8\)"):
        io.write_raster(tmp_path / "bad.tif", np.zeros((5, 8)), GRID)
    assert listing(tmp_path) == []


def test_rewriting_a_raster_gives_identical_values(tmp_path):
    data = sample(3)
    a = io.read_raster(io.write_raster(tmp_path / "a.tif", data, GRID), bands=1)
    b = io.read_raster(io.write_raster(tmp_path / "a.tif", data, GRID), bands=1)
    np.testing.assert_array_equal(a, b)


def test_open_raster_names_a_missing_file(tmp_path):
    missing = tmp_path / "nope.tif"
    with pytest.raises(InputDataError, match="nope.tif"):
        io.read_raster(missing)


# ----------------------------------------------------------------------------- atomic writes


def test_atomic_path_leaves_nothing_when_the_block_raises(tmp_path):
    target = tmp_path / "out" / "table.csv"
    with pytest.raises(RuntimeError, match="interrupted"):
        with io.atomic_path(target) as tmp:
            assert tmp.parent == target.parent and tmp != target
            tmp.write_text("half a file")
            raise RuntimeError("interrupted")
    assert not target.exists()
    assert listing(target.parent) == []  # no temp file either


def test_atomic_path_keeps_the_old_file_when_a_rewrite_fails(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("complete old version\n")
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "complete old version\n"
    assert listing(tmp_path) == ["table.csv"]


def test_atomic_path_renames_on_success(tmp_path):
    target = tmp_path / "new" / "a.txt"
    with io.atomic_path(target) as tmp:
        tmp.write_text("done")
        assert not target.exists()  # nothing visible under the final name until the block ends
    assert target.read_text() == "done"
    assert listing(target.parent) == ["a.txt"]


def test_failed_raster_write_leaves_no_file(tmp_path):
    # the data are written, then naming a second band of a one-band raster fails inside the block
    with pytest.raises(IndexError):
        io.write_raster(tmp_path / "ndvi.tif", sample(), GRID, band_names=["ndvi", "no such band"])
    assert listing(tmp_path) == []


# ----------------------------------------------------------------------------- tables


def zones_table() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "zone_id": ["b2", "b1"],
            "name": ["东区 <east>", "West, \"old\" town"],
            "area_ha": [1.0, 0.25],
            "carbon_t": [12.3456789012345, np.nan],
        },
        geometry=[box(350000, 3460000, 350100, 3460100), box(350100, 3460000, 350150, 3460050)],
        crs="EPSG:32651",
    )


def test_write_table_writes_gpkg_and_csv_twin(tmp_path):
    table = zones_table()
    path = io.write_table(tmp_path / "block.gpkg", table)
    assert path == tmp_path / "block.gpkg"
    assert listing(tmp_path) == ["block.csv", "block.gpkg"]
    back = io.read_vector(path)
    assert list(back["zone_id"]) == ["b2", "b1"]  # row order kept
    assert list(back["name"]) == list(table["name"])
    assert back.crs.to_epsg() == 32651
    assert back.geometry.iloc[0].equals(table.geometry.iloc[0])
    import pyogrio

    assert [name for name, _ in pyogrio.list_layers(path)] == ["block"]  # one layer named after the file
    csv = pd.read_csv(tmp_path / "block.csv")
    assert list(csv.columns) == ["zone_id", "name", "area_ha", "carbon_t"]  # no geometry column
    assert csv["carbon_t"].iloc[0] == pytest.approx(12.3456789, rel=1e-9)  # %.10g
    assert np.isnan(csv["carbon_t"].iloc[1])


def test_write_table_layer_name_and_no_csv(tmp_path):
    import pyogrio

    path = io.write_table(tmp_path / "zones.gpkg", zones_table(), layer="parcel", csv=False)
    assert [name for name, _ in pyogrio.list_layers(path)] == ["parcel"]
    assert listing(tmp_path) == ["zones.gpkg"]


def test_writing_the_same_table_twice_is_byte_identical(tmp_path):
    table = zones_table()
    path = tmp_path / "block.gpkg"
    io.write_table(path, table)
    gpkg_1, csv_1 = path.read_bytes(), (tmp_path / "block.csv").read_bytes()
    os.utime(path, (0, 0))
    io.write_table(path, table)
    assert path.read_bytes() == gpkg_1  # fixed OGR_CURRENT_DATE: no run timestamp inside
    assert (tmp_path / "block.csv").read_bytes() == csv_1
    # and a table written to another folder (another run) is byte-identical too
    other = tmp_path / "run2" / "block.gpkg"
    io.write_table(other, table)
    assert other.read_bytes() == gpkg_1


def test_csv_uses_unix_newlines_and_no_index(tmp_path):
    io.write_csv(tmp_path / "t.csv", pd.DataFrame({"a": [1, 2], "b_t_ha": [0.5, 1 / 3]}))
    assert (tmp_path / "t.csv").read_bytes() == b"a,b_t_ha\n1,0.5\n2,0.3333333333\n"


def test_read_vector_missing_path_names_it(tmp_path):
    missing = tmp_path / "zones" / "parcels.gpkg"
    with pytest.raises(InputDataError) as err:
        io.read_vector(missing)
    assert str(missing) in str(err.value)
    assert "not found" in str(err.value)


def test_read_vector_unreadable_file_names_it(tmp_path):
    bad = tmp_path / "plots.gpkg"
    bad.write_text("this is not a geopackage")
    with pytest.raises(InputDataError, match="plots.gpkg"):
        io.read_vector(bad)


def test_read_vector_reads_any_gdal_format(tmp_path):
    gdf = gpd.GeoDataFrame({"plot_id": ["p1"]}, geometry=[Point(350005, 3460005)], crs="EPSG:32651")
    gdf.to_file(tmp_path / "plots.geojson", driver="GeoJSON")
    back = io.read_vector(tmp_path / "plots.geojson")
    assert list(back["plot_id"]) == ["p1"]


# ----------------------------------------------------------------------------- JSON, checksums, sparse


def test_write_json_sorted_keys_and_numpy_values(tmp_path):
    obj = {
        "zeta": np.float32(0.5),
        "alpha": {"n": np.int64(7), "b": True, "a": None},
        "values": np.array([1.5, 2.5]),
        "path": Path("results/2023/ndvi.tif"),
        "名称": "绿地",
    }
    path = io.write_json(tmp_path / "model.json", obj)
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    assert "绿地" in text  # not \u-escaped
    keys = [line.strip().split(":")[0] for line in text.splitlines() if line.startswith('  "')]
    assert keys == sorted(keys) == ['"alpha"', '"path"', '"values"', '"zeta"', '"名称"']
    assert text.index('"a"') < text.index('"b"') < text.index('"n"')  # nested keys sorted too
    back = io.read_json(path)
    assert back == {
        "zeta": 0.5,
        "alpha": {"n": 7, "b": True, "a": None},
        "values": [1.5, 2.5],
        "path": "results/2023/ndvi.tif",
        "名称": "绿地",
    }
    # same object, same bytes
    assert io.write_json(tmp_path / "again.json", obj).read_bytes() == path.read_bytes()


def test_write_json_refuses_unknown_objects_and_leaves_no_file(tmp_path):
    with pytest.raises(TypeError, match="set"):
        io.write_json(tmp_path / "x.json", {"a": {1, 2}})
    assert listing(tmp_path) == []


def test_sha256_known_value(tmp_path):
    (tmp_path / "abc.txt").write_bytes(b"abc")
    assert io.sha256(tmp_path / "abc.txt", chunk_bytes=2) == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_sparse_round_trip(tmp_path):
    # zone × pixel coverage fractions, as the coverage stage stores them
    m = sp.coo_matrix(([0.25, 1.0, 0.5], ([0, 1, 2], [3, 0, 47])), shape=(3, 48))
    path = io.write_sparse(tmp_path / "coverage.npz", m)
    back = io.read_sparse(path)
    assert sp.isspmatrix_csr(back) or isinstance(back, sp.csr_array)
    assert back.shape == (3, 48)
    np.testing.assert_array_equal(back.toarray(), m.toarray())
    assert listing(tmp_path) == ["coverage.npz"]


def test_write_text_is_utf8(tmp_path):
    path = io.write_text(tmp_path / "report.html", "<p>绿化覆盖率</p>")
    assert path.read_bytes() == "<p>绿化覆盖率</p>".encode()
    assert json.loads(json.dumps(listing(tmp_path))) == ["report.html"]


# ----------------------------------------------------------------------------- streamed rasters


@pytest.mark.parametrize("block_rows", [1, 4, 512])
def test_raster_writer_gives_the_same_file_as_write_raster(tmp_path, block_rows):
    # strip by strip, whatever the strip height, the COG is byte for byte what write_raster writes
    data = sample(4, bands=2)
    a = io.write_raster(tmp_path / "a.tif", data, GRID, band_names=["x", "y"], tags={"year": 2023},
                        band_tags=[{"units": "1"}, {"units": "2"}])
    with io.raster_writer(tmp_path / "out" / "b.tif", GRID, 2, band_names=["x", "y"],
                          band_tags=[{"units": "1"}, {"units": "2"}]) as w:
        for r in range(0, GRID.height, block_rows):
            w.write(data[:, r:r + block_rows], r)
        w.update_tags(year=2023)  # statistics known only at the end can still be stored
    b = tmp_path / "out" / "b.tif"
    assert io.sha256(a) == io.sha256(b)
    assert listing(b.parent) == ["b.tif"]  # no stage file left
    with rasterio.open(b) as src:
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG" and src.tags()["year"] == "2023"


def test_big_streamed_raster_gets_overviews_and_threads_change_no_byte(tmp_path):
    big = Grid("EPSG:32651", Affine(10.0, 0.0, 350000.0, 0.0, -10.0, 3460000.0), width=1100, height=1100)
    data = np.random.default_rng(0).uniform(0, 1, big.shape)
    data[550:] = 0.0
    for threads in (1, 2):
        with io.raster_writer(tmp_path / f"big{threads}.tif", big, compress="deflate", threads=threads) as w:
            for r in range(0, 1100, 512):
                w.write(data[r:r + 512], r)
    with rasterio.open(tmp_path / "big1.tif") as src:
        assert src.overviews(1) == [2, 4] and src.dtypes == ("float32",) and np.isnan(src.nodata)
        assert src.tags(ns="IMAGE_STRUCTURE")["COMPRESSION"] == "DEFLATE"
        assert src.read(1, out_shape=(275, 275))[-1, -1] == 0.0
    assert io.sha256(tmp_path / "big1.tif") == io.sha256(tmp_path / "big2.tif")


def test_raster_writer_leaves_nothing_when_the_block_raises(tmp_path):
    with pytest.raises(RuntimeError, match="interrupted"):
        with io.raster_writer(tmp_path / "ndvi.tif", GRID) as w:
            w.write(sample()[:3], 0)
            raise RuntimeError("interrupted")
    assert listing(tmp_path) == []


def test_raster_writer_refuses_a_strip_that_does_not_fit(tmp_path):
    with pytest.raises(ValueError, match="does not fit"):
        with io.raster_writer(tmp_path / "x.tif", GRID) as w:
            w.write(np.zeros((3, 7)), 0)  # 7 columns, the grid has 8
    with pytest.raises(ValueError, match="does not fit"):
        with io.raster_writer(tmp_path / "x.tif", GRID) as w:
            w.write(np.zeros((3, 8)), 4)  # rows 4–6 of a 6-row grid
    assert listing(tmp_path) == []


def test_rows_never_written_stay_nodata(tmp_path):
    with io.raster_writer(tmp_path / "x.tif", GRID) as w:
        w.write(np.ones((2, 8)), 2)
    out = io.read_raster(tmp_path / "x.tif", bands=1)
    assert (out[2:4] == 1).all() and np.isnan(out[:2]).all() and np.isnan(out[4:]).all()


@pytest.mark.parametrize("block_rows", [1, 4, 6, 512])
def test_read_strips_reassemble_read_raster(tmp_path, block_rows):
    path = io.write_raster(tmp_path / "x.tif", sample(5, bands=3), GRID)
    strips = list(io.read_strips(path, bands=[1, 3], block_rows=block_rows))
    assert [r for r, _ in strips] == [slice(r, min(r + block_rows, 6)) for r in range(0, 6, block_rows)]
    np.testing.assert_array_equal(np.concatenate([b for _, b in strips], axis=1), io.read_raster(path, bands=[1, 3]))
    single = np.concatenate([b for _, b in io.read_strips(path, bands=2, block_rows=block_rows)])
    np.testing.assert_array_equal(single, io.read_raster(path, bands=2))


@pytest.mark.parametrize("dtype,nodata", [("int16", -999), ("uint8", 0), ("float32", float("nan")), ("uint16", None)])
def test_read_raster_fast_path_equals_masked_read(tmp_path, dtype, nodata):
    import rasterio
    from rasterio.transform import from_origin

    values = np.array([[0, 3, 7], [-999 if dtype == "int16" else 1, 5, 2]], dtype=dtype)
    path = tmp_path / "r.tif"
    with rasterio.open(path, "w", driver="GTiff", width=3, height=2, count=1, dtype=dtype, crs="EPSG:32651",
                       transform=from_origin(0, 20, 10, 10), nodata=nodata) as dst:
        dst.write(values, 1)
    with rasterio.open(path) as src:
        expected = src.read(1, masked=True).astype(np.float32).filled(np.nan)
    np.testing.assert_array_equal(io.read_raster(path), expected)


def test_read_raster_honours_an_internal_mask_band(tmp_path):
    import rasterio
    from rasterio.transform import from_origin

    path = tmp_path / "masked.tif"
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(path, "w", driver="GTiff", width=2, height=2, count=1, dtype="uint8", crs="EPSG:32651",
                           transform=from_origin(0, 20, 10, 10)) as dst:
            dst.write(np.array([[1, 2], [3, 4]], dtype="uint8"), 1)
            dst.write_mask(np.array([[255, 0], [255, 255]], dtype="uint8"))  # pixel (0, 1) masked out
    out = io.read_raster(path)
    assert np.isnan(out[0, 1]) and out[0, 0] == 1 and out[1, 1] == 4
