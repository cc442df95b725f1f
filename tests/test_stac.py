"""Tests of greensink.stac: search of a static STAC catalog (and, mocked, of an API), items -> scenes.

A static catalog is built with pystac in ``tmp_path`` with COG assets on the 6 × 8 test grid of
10 m pixels in UTM 51N (as in test_ingest.py):

* collection ``sentinel-2-l2a`` (Sentinel-2 L2A style: B04/B08 uint16, SCL at 20 m with classes to
  mask, ``eo:cloud_cover``): items that must be found, each with a different way of telling the
  BOA offset (processing baseline 05.09, raster:bands scale/offset, earthsearch:boa_offset_applied,
  the date rule), and items that must not (cloud cover over the limit, outside the bbox, out of
  season, another year: 2021 without offset);
* collection ``landsat-c2-l2`` (Landsat C2 L2 style: SR_B4/SR_B5 files with raster:bands scale
  0.0000275 and offset −0.2, QA_PIXEL bits).

The end-to-end test turns the demo city's own scenes into a static catalog and checks that the
workflow with ``imagery.source: stac`` gives the same composites and city carbon as with ``demo``.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pystac
import pytest
import rasterio
import yaml
from affine import Affine
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from greensink import config, ingest, provenance, stac, workflow
from greensink.errors import InputDataError
from greensink.grid import Grid
from greensink.ingest import read_scene_window

ROOT = Path(__file__).resolve().parents[1]
CRS = "EPSG:32651"
GRID = Grid(CRS, Affine(10.0, 0.0, 350000.0, 0.0, -10.0, 3460060.0), width=8, height=6)
FULL = Window(0, 0, GRID.width, GRID.height)
FAR = Affine(10.0, 0.0, 450000.0, 0.0, -10.0, 3560060.0)  # 100 km away: outside the bbox
SEASON = {"start": "04-01", "end": "10-31"}

ROWS, COLS = np.mgrid[0:6, 0:8]
RED_REFL = 0.03 + 0.01 * COLS
NIR_REFL = 0.30 + 0.02 * ROWS
SCL_20M = np.array([[0, 1, 3, 8], [9, 10, 11, 4], [5, 6, 7, 4]], dtype=np.uint8)
SCL_CLEAR = np.kron(~np.isin(SCL_20M, [0, 1, 3, 8, 9, 10, 11]), np.ones((2, 2), dtype=bool))
QA = np.zeros((6, 8), dtype=np.uint16)
QA[0, :5] = [1 << b for b in range(5)]  # fill, dilated cloud, cirrus, cloud, shadow
QA[1, 0] = 1 << 6  # clear bit: stays clear
QA[1, 1] = (1 << 3) | (1 << 6)  # cloud and clear bit: masked
LANDSAT_CLEAR = np.ones((6, 8), dtype=bool)
LANDSAT_CLEAR[0, :5] = False
LANDSAT_CLEAR[1, 1] = False

# (item id, datetime, cloud %, BOA add-offset in the DNs, properties, raster:bands on B04/B08, transform)
S2_ITEMS = [
    ("S2B_51RUQ_20230615_0_L2A", "2023-06-15T02:45:00Z", 12.0, -1000, {"s2:processing_baseline": "05.09"}, None, None),
    ("S2A_51RUQ_20230620_0_L2A", "2023-06-20T02:45:00Z", 95.0, -1000, {"s2:processing_baseline": "05.09"}, None, None),
    ("S2A_51RUQ_20230705_0_L2A", "2023-07-05T02:45:00Z", 30.0, -1000, {}, {"scale": 0.0001, "offset": -0.1}, None),
    ("S2B_51RUQ_20230801_0_L2A", "2023-08-01T02:45:00Z", 5.0, 0,
     {"s2:processing_baseline": "05.09", "earthsearch:boa_offset_applied": True}, {"scale": 0.0001, "offset": -0.1}, None),
    ("S2A_50RQV_20230810_0_L2A", "2023-08-10T02:45:00Z", 1.0, -1000, {}, None, FAR),
    ("S2B_51RUQ_20231201_0_L2A", "2023-12-01T02:45:00Z", 0.0, -1000, {}, None, None),
    ("S2A_51RUQ_20210701_0_L2A", "2021-07-01T02:45:00Z", 3.0, 0, {"s2:processing_baseline": "03.01"}, None, None),
]
LANDSAT_ITEM = ("LC09_L2SP_118039_20230710_02_T1", "2023-07-10T02:30:00Z", 20.0)
EXPECTED_2023 = ["S2B_51RUQ_20230615_0_L2A", "S2A_51RUQ_20230705_0_L2A", "LC09_L2SP_118039_20230710_02_T1",
                 "S2B_51RUQ_20230801_0_L2A"]
BASE_STAC = {"collections": ["sentinel-2-l2a", "landsat-c2-l2"], "max_cloud_cover_pct": 50,
             "profile": {"landsat-c2-l2": "landsat-c2-l2", "default": "sentinel2-l2a"}}


def write_cog(path: Path, arr: np.ndarray, transform: Affine = GRID.transform, nodata: float | None = None) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="COG", width=arr.shape[1], height=arr.shape[0], count=1, dtype=arr.dtype,
                       crs=CRS, transform=transform, nodata=nodata, blocksize=16) as dst:
        dst.write(arr, 1)
    return str(path)


def footprint(transform: Affine, shape=(6, 8)) -> tuple[dict, list[float]]:
    xmin, ymax = transform @ (0, 0)
    xmax, ymin = transform @ (shape[1], shape[0])
    w, s, e, n = transform_bounds(CRS, "EPSG:4326", xmin, ymin, xmax, ymax)
    geom = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
    return geom, [w, s, e, n]


def make_item(item_id: str, when: str, cloud: float, props: dict, transform: Affine | None) -> pystac.Item:
    geom, bbox = footprint(transform or GRID.transform)
    return pystac.Item(item_id, geom, bbox, dt.datetime.fromisoformat(when.replace("Z", "+00:00")),
                       {"eo:cloud_cover": cloud, **props})


def build_catalog(folder: Path) -> Path:
    """The static catalog of the module docstring; returns the path of catalog.json."""
    data = folder / "data"
    cat = pystac.Catalog("test-catalog", "greensink test catalog")
    s2 = pystac.Collection("sentinel-2-l2a", "Sentinel-2 L2A style", pystac.Extent.from_dict(
        {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}}))
    for item_id, when, cloud, add, props, raster, transform in S2_ITEMS:
        item = make_item(item_id, when, cloud, props, transform)
        files = {
            "B04": (np.round(RED_REFL * 10000) - add).astype(np.uint16),
            "B08": (np.round(NIR_REFL * 10000) - add).astype(np.uint16),
        }
        for key, arr in files.items():
            href = write_cog(data / item_id / f"{key}.tif", arr, transform or GRID.transform, nodata=0)
            extra = {"raster:bands": [{"nodata": 0, "data_type": "uint16", **raster}]} if raster else {}
            item.add_asset(key, pystac.Asset(href, media_type=pystac.MediaType.COG, roles=["data"], extra_fields=extra))
        t = transform or GRID.transform
        scl = write_cog(data / item_id / "SCL.tif", SCL_20M, Affine(20.0, 0.0, t.c, 0.0, -20.0, t.f))
        item.add_asset("SCL", pystac.Asset(scl, media_type=pystac.MediaType.COG, roles=["data"]))
        s2.add_item(item)
    ls = pystac.Collection("landsat-c2-l2", "Landsat C2 L2 style", s2.extent.clone())
    item_id, when, cloud = LANDSAT_ITEM
    item = make_item(item_id, when, cloud, {}, None)
    raster = {"raster:bands": [{"nodata": 0, "data_type": "uint16", "scale": 2.75e-5, "offset": -0.2}]}
    for key, name, arr in (("red", "SR_B4", RED_REFL), ("nir08", "SR_B5", NIR_REFL)):
        href = write_cog(data / item_id / f"{item_id}_{name}.TIF", np.round((arr + 0.2) / 2.75e-5).astype(np.uint16), nodata=0)
        item.add_asset(key, pystac.Asset(href, media_type=pystac.MediaType.COG, roles=["data"], extra_fields=raster))
    qa = write_cog(data / item_id / f"{item_id}_QA_PIXEL.TIF", QA)
    item.add_asset("qa_pixel", pystac.Asset(qa, media_type=pystac.MediaType.COG, roles=["cloud"]))
    ls.add_item(item)
    cat.add_children([s2, ls])
    cat.normalize_hrefs(str(folder / "stac"))
    cat.make_all_asset_hrefs_relative()
    cat.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return folder / "stac" / "catalog.json"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Path:
    return build_catalog(tmp_path_factory.mktemp("stac"))


def cfg_stac(catalog: Path, **kw) -> dict:
    return {**BASE_STAC, "catalog": str(catalog), **kw}


def profiles():
    return ingest.resolve_profiles(None)


# ----------------------------------------------------------------------------- search


def test_catalog_assets_are_relative_and_resolve_to_absolute_paths(catalog):
    item = json.loads(next((catalog.parent / "sentinel-2-l2a").glob("*/*.json")).read_text())
    assert not Path(item["assets"]["B04"]["href"]).is_absolute()
    scenes, *_ = stac.stac_scenes(cfg_stac(catalog), profiles(), GRID, 2023, SEASON)
    for s in scenes:
        for _, path, _ in s.band_files():
            assert Path(path).is_absolute() and Path(path).is_file(), path


def test_search_filters_bbox_season_cloud_and_collections(catalog):
    start, end = ingest.season_window(2023, SEASON)
    bbox = stac.grid_bbox_wgs84(GRID)
    items, record = stac.search(cfg_stac(catalog), bbox, start, end)
    # left out: 20230620 (95 % cloud), 50RQV (outside the bbox), 20231201 (out of season), 2021 (another year)
    assert [i.id for i in items] == EXPECTED_2023
    assert record["kind"] == "static" and record["items_found"] == 4 and not record["limit_reached"]
    assert record["query"] == {"eo:cloud_cover": {"lte": 50.0}}
    items, _ = stac.search(cfg_stac(catalog, collections=["landsat-c2-l2"]), bbox, start, end)
    assert [i.id for i in items] == ["LC09_L2SP_118039_20230710_02_T1"]
    items, _ = stac.search(cfg_stac(catalog, max_cloud_cover_pct=100), bbox, start, end)
    assert [i.id for i in items] == [EXPECTED_2023[0], "S2A_51RUQ_20230620_0_L2A", *EXPECTED_2023[1:]]
    items, _ = stac.search(cfg_stac(catalog, collections=None), bbox, start, end)  # all collections
    assert [i.id for i in items] == EXPECTED_2023
    items, _ = stac.search(cfg_stac(catalog, query={"s2:processing_baseline": {"eq": "05.09"}}), bbox, start, end)
    assert [i.id for i in items] == ["S2B_51RUQ_20230615_0_L2A", "S2B_51RUQ_20230801_0_L2A"]
    items, record = stac.search(cfg_stac(catalog, limit=2), bbox, start, end)
    assert [i.id for i in items] == EXPECTED_2023[:2] and record["limit_reached"]
    far = transform_bounds(CRS, "EPSG:4326", 450000, 3560000, 450080, 3560060)
    items, _ = stac.search(cfg_stac(catalog), far, start, end)
    assert [i.id for i in items] == ["S2A_50RQV_20230810_0_L2A"]


def test_harmonisation_from_item_properties(catalog):
    scenes, record, failed, info = stac.stac_scenes(cfg_stac(catalog), profiles(), GRID, 2023, SEASON)
    assert failed == [] and [s.scene_id for s in scenes] == EXPECTED_2023 == record["item_ids"]
    by_id = {s.scene_id: s for s in scenes}
    assert by_id["S2B_51RUQ_20230615_0_L2A"].offset == pytest.approx(-0.1)  # s2:processing_baseline 05.09
    assert by_id["S2A_51RUQ_20230705_0_L2A"].offset == pytest.approx(-0.1)  # raster:bands offset
    assert by_id["S2B_51RUQ_20230801_0_L2A"].offset == 0.0  # earthsearch:boa_offset_applied wins over raster:bands
    ls = by_id["LC09_L2SP_118039_20230710_02_T1"]
    assert (ls.sensor, ls.scale, ls.offset) == ("landsat-c2-l2", 2.75e-5, -0.2)
    assert ls.quality_rule == {"rule": "bits", "masked": [0, 1, 2, 3, 4]}
    assert info["LC09_L2SP_118039_20230710_02_T1"]["stac_assets"] == {"red": "red", "nir": "nir08", "quality": "qa_pixel"}
    assert info["S2B_51RUQ_20230615_0_L2A"] == {"stac_item_id": "S2B_51RUQ_20230615_0_L2A", "stac_collection": "sentinel-2-l2a",
                                                "stac_assets": {"red": "B04", "nir": "B08", "quality": "SCL"},
                                                "cloud_cover_pct": 12.0}
    for s in scenes:  # every way of telling the offset gives the same reflectance
        red, nir, clear = read_scene_window(s, GRID, FULL)
        np.testing.assert_allclose(red, RED_REFL, atol=2e-5, err_msg=s.scene_id)
        np.testing.assert_allclose(nir, NIR_REFL, atol=2e-5, err_msg=s.scene_id)
        np.testing.assert_array_equal(clear, LANDSAT_CLEAR if s.sensor == "landsat-c2-l2" else SCL_CLEAR, err_msg=s.scene_id)


def test_sentinel2_before_baseline_04_has_no_offset(catalog):
    (scene,), *_ = stac.stac_scenes(cfg_stac(catalog), profiles(), GRID, 2021, SEASON)
    assert scene.scene_id == "S2A_51RUQ_20210701_0_L2A" and scene.offset == 0.0
    red, _, _ = read_scene_window(scene, GRID, FULL)
    np.testing.assert_allclose(red, RED_REFL, atol=1e-6)


def test_ingest_record_has_item_ids_search_and_no_failures(catalog):
    rec = stac.ingest_stac_year(cfg_stac(catalog), profiles(), GRID, 2023, SEASON)
    assert rec["stac"]["item_ids"] == EXPECTED_2023 and rec["failed_assets"] == []
    assert [s["stac_item_id"] for s in rec["scenes"]] == EXPECTED_2023
    assert rec["summary"]["n_scenes"] == 4
    prov = provenance.record({"a": 1}, {}, {2023: rec["scenes"]})
    assert [s["stac_item_id"] for s in prov["scenes"]["2023"]] == EXPECTED_2023
    assert prov["scenes"]["2023"][2]["stac_collection"] == "landsat-c2-l2"
    json.dumps(rec)  # the record is JSON


def test_missing_and_broken_assets_are_recorded_and_skipped(tmp_path):
    cat = build_catalog(tmp_path)
    data = tmp_path / "data"
    (data / "S2B_51RUQ_20230615_0_L2A" / "B08.tif").write_bytes(b"not a tiff")  # broken
    (data / "S2A_51RUQ_20230705_0_L2A" / "SCL.tif").unlink()  # missing file
    item_json = next((cat.parent / "landsat-c2-l2").glob("*/*.json"))
    item = json.loads(item_json.read_text())
    del item["assets"]["qa_pixel"]  # an item without its quality asset
    item_json.write_text(json.dumps(item))
    rec = stac.ingest_stac_year(cfg_stac(cat), profiles(), GRID, 2023, SEASON)
    assert [s["scene_id"] for s in rec["scenes"]] == ["S2B_51RUQ_20230801_0_L2A"]
    failed = {(f["item_id"], f["role"]): f for f in rec["failed_assets"]}
    assert set(failed) == {("S2B_51RUQ_20230615_0_L2A", "nir"), ("S2A_51RUQ_20230705_0_L2A", "quality"),
                           ("LC09_L2SP_118039_20230710_02_T1", "quality")}
    assert failed[("S2B_51RUQ_20230615_0_L2A", "nir")]["asset"] == "B08"
    assert failed[("S2B_51RUQ_20230615_0_L2A", "nir")]["href"].endswith("B08.tif")
    assert failed[("S2A_51RUQ_20230705_0_L2A", "quality")]["href"].endswith("SCL.tif")
    assert failed[("LC09_L2SP_118039_20230710_02_T1", "quality")]["href"] is None
    assert "qa_pixel" in failed[("LC09_L2SP_118039_20230710_02_T1", "quality")]["error"]
    assert rec["stac"]["item_ids"] == ["S2B_51RUQ_20230801_0_L2A"]
    assert sum("cannot be used" in w for w in rec["warnings"]) == 3
    # with every remaining asset broken too, the error names each failure
    (data / "S2B_51RUQ_20230801_0_L2A" / "B04.tif").unlink()
    with pytest.raises(InputDataError, match="none of the 4 STAC item") as err:
        stac.ingest_stac_year(cfg_stac(cat), profiles(), GRID, 2023, SEASON)
    assert "S2B_51RUQ_20230801_0_L2A asset B04" in str(err.value) and str(cat) in str(err.value)


def test_no_item_is_a_clear_error_naming_catalog_bbox_and_season(catalog):
    with pytest.raises(InputDataError) as err:
        stac.stac_scenes(cfg_stac(catalog), profiles(), GRID, 2019, SEASON)
    msg = str(err.value)
    assert "no STAC item found" in msg and str(catalog) in msg and "2019-04-01 to 2019-10-31" in msg
    assert str(list(stac.grid_bbox_wgs84(GRID))) in msg and "max_cloud_cover_pct" in msg
    with pytest.raises(InputDataError, match="not found"):
        stac.stac_scenes(cfg_stac(catalog.parent / "nope.json"), profiles(), GRID, 2023, SEASON)


def test_api_search_arguments_and_retries(catalog, monkeypatch):
    import pystac_client

    items = list(pystac.read_file(str(catalog)).get_items(recursive=True))
    calls, sleeps = [], []

    class Search:
        def __init__(self, **kw):
            calls.append(kw)

        def items(self):
            if len(calls) < 3:
                raise ConnectionError("502 Bad Gateway")
            return iter(reversed(items[:3]))

    class Client:
        @staticmethod
        def search(**kw):
            return Search(**kw)

    monkeypatch.setattr(pystac_client.Client, "open", staticmethod(lambda url, **kw: Client))
    conf = cfg_stac("https://example.test/v1", query={"platform": {"in": ["sentinel-2a", "sentinel-2b"]}}, retries=2)
    found, record = stac.search(conf, (1.0, 2.0, 3.0, 4.0), dt.date(2023, 4, 1), dt.date(2023, 10, 31), sleep=sleeps.append)
    assert record["kind"] == "api" and sleeps == [1.0, 2.0] and len(calls) == 3
    assert calls[0] == {"bbox": [1.0, 2.0, 3.0, 4.0], "datetime": "2023-04-01T00:00:00Z/2023-10-31T23:59:59Z",
                        "collections": ["sentinel-2-l2a", "landsat-c2-l2"], "max_items": 1000,
                        "query": {"platform": {"in": ["sentinel-2a", "sentinel-2b"]}, "eo:cloud_cover": {"lte": 50.0}}}
    assert [i.id for i in found] == sorted((i.id for i in items[:3]), key=lambda x: {i.id: i.datetime for i in items}[x])
    calls.clear()
    sleeps.clear()
    with pytest.raises(InputDataError, match="failed after 2 tries"):
        stac.search({**conf, "retries": 1}, (1.0, 2.0, 3.0, 4.0), dt.date(2023, 4, 1), dt.date(2023, 10, 31), sleep=sleeps.append)
    assert sleeps == [1.0]


def test_static_or_api_and_hrefs():
    assert stac.is_static("stac/catalog.json") and stac.is_static("file:///data/stac/catalog.json")
    assert stac.is_static("https://example.test/stac/catalog.json")
    assert not stac.is_static("https://earth-search.aws.element84.com/v1")
    assert stac.local_path("file:///data/x.tif") == "/data/x.tif"
    assert stac.local_path("https://example.test/x.tif") == "https://example.test/x.tif"


def test_config_checks_and_inputs(tmp_path, catalog):
    base = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
    base["imagery"] = {"source": "stac"}
    with pytest.raises(config.ConfigError, match="imagery.stac"):
        config.validate(base)
    base["imagery"]["stac"] = {"catalog": str(catalog), "profile": "sentinel-2", "assets": {"nir": "B08", "band": "x"}}
    with pytest.raises(config.ConfigError) as err:
        config.validate(base)
    assert "imagery.stac.profile: must name a sensor profile" in str(err.value) and "'band'" in str(err.value)
    base["imagery"]["stac"] = {"catalog": str(catalog), "profile": "mine"}
    base["imagery"]["profiles"] = {"mine": {"scale": 0.001}}
    with pytest.raises(config.ConfigError, match="imagery.stac.assets.red: profile 'mine' has no default asset key"):
        config.validate(base)
    base["imagery"]["stac"]["assets"] = {"red": "r", "nir": ["n", "nir"]}
    cfg = config.validate(base)
    assert cfg["imagery"]["stac"]["max_cloud_cover_pct"] == 100 and cfg["imagery"]["stac"]["retries"] == 3
    assert workflow.imagery_inputs(cfg, 2023) == {"table": [], "images": [], "catalog": [str(catalog)]}
    cfg["imagery"]["stac"]["catalog"] = "https://earth-search.aws.element84.com/v1"
    assert workflow.imagery_inputs(cfg, 2023)["catalog"] == []


def test_example_config_is_valid():
    raw = yaml.safe_load((ROOT / "config" / "examples" / "sentinel2-stac.yaml").read_text(encoding="utf-8"))
    schema = config.load_schema()
    cfg = config.with_defaults(raw, schema)
    import jsonschema

    assert [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(cfg)] == []
    assert config.imagery_problems(cfg) == []
    assert cfg["imagery"]["source"] == "stac"


# ----------------------------------------------------------------------------- end to end


LANDSAT_SCALE, LANDSAT_OFFSET = 0.0000275, -0.2
# QA_PIXEL of a clear land pixel: 21824 = 0b0101_0101_0100_0000 = 2**14 + 2**12 + 2**10 + 2**8 + 2**6
# (clear, low cloud/cirrus confidence bits); bits 0-4 (fill, dilated cloud, cirrus, cloud, shadow) are 0.
QA_CLEAR = 21824
assert QA_CLEAR & 0b11111 == 0


def landsat_from_demo(imagery: Path, row: dict, folder: Path) -> dict[str, str]:
    """Re-encode one demo Sentinel-2 L2A scene as Landsat C2 L2 style COGs: SR_B4/SR_B5 with
    DN = round((reflectance + 0.2) / 0.0000275) (0 = no data stays 0) and QA_PIXEL on the 10 m grid
    (nearest from the 20 m SCL): bit 3 cloud where SCL 8/9, bit 2 cirrus where SCL 10, bit 4 shadow
    where SCL 3, bit 0 fill where there is no data, else the clear value. Returns {asset key: path}."""
    lid = landsat_id(row)
    add = float(row["boa_add_offset"])
    out = {}
    nodata = None
    for key, name, col in (("red", "SR_B4", "red"), ("nir08", "SR_B5", "nir")):
        with rasterio.open(imagery / row[col]) as src:
            dn, crs, transform = src.read(1), src.crs, src.transform
        refl = (dn.astype(np.float64) + add) / 10000.0
        ls = np.clip(np.round((refl - LANDSAT_OFFSET) / LANDSAT_SCALE), 1, 65535).astype(np.uint16)
        ls[dn == 0] = 0
        nodata = (dn == 0) if nodata is None else (nodata | (dn == 0))
        out[key] = write_demo_cog(folder / f"{lid}_{name}.TIF", ls, crs, transform, nodata=0)
    with rasterio.open(imagery / row["scl"]) as src:
        scl20 = src.read(1)
    assert set(np.unique(scl20).tolist()) <= {0, 3, 4, 5, 6, 8, 9, 10}, "a demo SCL class with no QA_PIXEL mapping"
    scl = np.repeat(np.repeat(scl20, 2, axis=0), 2, axis=1)[: nodata.shape[0], : nodata.shape[1]]
    qa = np.full(nodata.shape, QA_CLEAR, dtype=np.uint16)
    qa[np.isin(scl, (8, 9))] = 1 << 3  # cloud
    qa[scl == 10] = 1 << 2  # cirrus
    qa[scl == 3] = 1 << 4  # cloud shadow
    qa[nodata | (scl == 0)] = 1  # fill
    out["qa_pixel"] = write_demo_cog(folder / f"{lid}_QA_PIXEL.TIF", qa, crs, transform)
    return out


def landsat_id(row: dict) -> str:
    return f"LC09_L2SP_DEMO_{row['datetime'][:10].replace('-', '')}_02_T1"


def write_demo_cog(path: Path, arr: np.ndarray, crs, transform: Affine, nodata: float | None = None) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="COG", width=arr.shape[1], height=arr.shape[0], count=1, dtype=arr.dtype,
                       crs=crs, transform=transform, nodata=nodata, blocksize=256) as dst:
        dst.write(arr, 1)
    return str(path)


def demo_catalog(imagery: Path, out: Path, s2_collection: str = "demo-s2", landsat: set[str] = frozenset()) -> Path:
    """A static STAC catalog of the demo city's scenes (imagery/scenes.csv): one item per scene; the
    scenes in ``landsat`` are re-encoded as Landsat C2 L2 style items of collection landsat-c2-l2
    (and left out of the Sentinel-2 collection)."""
    table = pd.read_csv(imagery / "scenes.csv", dtype=str)
    extent = pystac.Extent.from_dict({"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}})
    coll = pystac.Collection(s2_collection, "demo city, Sentinel-2 L2A style", extent)
    ls = pystac.Collection("landsat-c2-l2", "demo city, Landsat C2 L2 style", extent.clone())
    raster = {"raster:bands": [{"nodata": 0, "data_type": "uint16", "scale": LANDSAT_SCALE, "offset": LANDSAT_OFFSET}]}
    for row in table.to_dict("records"):
        with rasterio.open(imagery / row["red"]) as src:
            w, s, e, n = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
        geom = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
        when = dt.datetime.fromisoformat(row["datetime"].replace("Z", "+00:00"))
        if row["scene_id"] in landsat:
            item = pystac.Item(landsat_id(row), geom, [w, s, e, n], when, {"eo:cloud_cover": float(row["cloud_pct"])})
            for key, path in landsat_from_demo(imagery, row, out.parent / "landsat" / landsat_id(row)).items():
                extra = raster if key != "qa_pixel" else {}
                item.add_asset(key, pystac.Asset(path, media_type=pystac.MediaType.COG,
                                                 roles=["cloud"] if key == "qa_pixel" else ["data"], extra_fields=extra))
            ls.add_item(item)
            continue
        item = pystac.Item(row["scene_id"], geom, [w, s, e, n], when,
                           {"eo:cloud_cover": float(row["cloud_pct"]), "s2:processing_baseline": row["processing_baseline"]})
        for key, col in (("B04", "red"), ("B08", "nir"), ("SCL", "scl")):
            item.add_asset(key, pystac.Asset(str(imagery / row[col]), media_type=pystac.MediaType.GEOTIFF, roles=["data"]))
        coll.add_item(item)
    cat = pystac.Catalog("demo", "demo city imagery")
    cat.add_children([coll, ls] if landsat else [coll])
    cat.normalize_hrefs(str(out))
    cat.make_all_asset_hrefs_relative()
    cat.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return out / "catalog.json"


@pytest.fixture(scope="module")
def demo_run(baseline_run) -> tuple[Path, dict]:
    """The demo city run (source demo): the session's shared baseline run (tests/conftest.py), read only:
    (workdir, its config)."""
    return baseline_run, yaml.safe_load((baseline_run / "config.yaml").read_text(encoding="utf-8"))


def run_on_catalog(demo: Path, cfg: dict, run: Path, stac_cfg: dict) -> None:
    """Run the workflow in ``run`` with the demo run's config but imagery from the STAC catalog ``stac_cfg``."""
    from test_workflow import snakemake

    cfg = copy.deepcopy(cfg)
    cfg.pop("scenarios", None)  # the demo's plans: their layers are made by the demo's rules, not run here
    cfg["imagery"] = {"source": "stac", "stac": stac_cfg, "composite": cfg["imagery"].get("composite", "median")}
    for z in cfg["zones"]:
        z["path"] = str(demo / z["path"])
    for key in ("greenspace", "plots", "population"):
        cfg[key]["path"] = str(demo / cfg[key]["path"])
    (run / "config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    snakemake(run)


@pytest.mark.workflow
@pytest.mark.large  # a second whole workflow run (about 1 min each): make test-large
def test_workflow_on_a_static_catalog_equals_the_demo_run(tmp_path, demo_run):
    demo, cfg = demo_run
    run = tmp_path / "stac"
    run.mkdir()
    res = demo / cfg["demo"]["out_dir"]
    cat = demo_catalog(res / "imagery", run / "catalog")
    run_on_catalog(demo, cfg, run, {"catalog": "catalog/catalog.json", "collections": ["demo-s2"]})
    assert cat.is_file()
    used = {}
    for year in (2023, 2024):
        listed = json.loads((run / f"results/{year}/ingest/scenes.json").read_text())
        ids = used[str(year)] = [s["scene_id"] for s in listed["scenes"]]
        assert ids == listed["stac"]["item_ids"] and listed["failed_assets"] == [] and len(ids) == 4
        assert ids == [s["scene_id"] for s in json.loads((demo / f"results/{year}/ingest/scenes.json").read_text())["scenes"]]
        for name in ("composite", "ndvi"):
            with rasterio.open(demo / f"results/{year}/{name}.tif") as a, rasterio.open(run / f"results/{year}/{name}.tif") as b:
                np.testing.assert_array_equal(a.read(), b.read(), err_msg=f"{year} {name}")
        c_demo = pd.read_csv(demo / f"results/{year}/zones/city.csv")["carbon_t"].sum()
        c_stac = pd.read_csv(run / f"results/{year}/zones/city.csv")["carbon_t"].sum()
        assert c_stac == pytest.approx(c_demo, rel=1e-6)
    prov = json.loads((run / "results/provenance.json").read_text())
    for year, ids in used.items():
        assert [s["stac_item_id"] for s in prov["scenes"][year]] == ids
        assert all(s["stac_collection"] == "demo-s2" for s in prov["scenes"][year])


@pytest.mark.workflow
@pytest.mark.large  # a second whole workflow run (about 1 min each): make test-large
def test_workflow_on_sentinel2_and_landsat_items_matches_the_demo_run(tmp_path, demo_run):
    """Issue 3: a static catalog mixing Sentinel-2 L2A items (BOA offset, SCL classes) and Landsat C2 L2
    items (scale 0.0000275, offset -0.2, QA_PIXEL bits), with the profile mapped per collection,
    drives the whole workflow; results match the demo run up to the Landsat quantisation."""
    demo, cfg = demo_run
    run = tmp_path / "mixed"
    run.mkdir()
    res = demo / cfg["demo"]["out_dir"]
    table = pd.read_csv(res / "imagery" / "scenes.csv", dtype=str)
    table["year"] = table["datetime"].str[:4]
    landsat = set()
    for _, rows in table.sort_values("datetime").groupby("year"):
        landsat |= set(rows["scene_id"].iloc[1::2])  # 2 of the 4 scenes of each year
    years = sorted(cfg["years"])  # the demo's (three)
    assert len(landsat) == 2 * len(years)
    cat = demo_catalog(res / "imagery", run / "catalog", s2_collection="sentinel-2-l2a", landsat=landsat)
    run_on_catalog(demo, cfg, run, {"catalog": "catalog/catalog.json", "collections": ["sentinel-2-l2a", "landsat-c2-l2"],
                                    "profile": {"sentinel-2-l2a": "sentinel2-l2a", "landsat-c2-l2": "landsat-c2-l2"}})
    assert cat.is_file()
    for name in ("ndvi", "fvc", "canopy", "carbon"):  # every contract output of each year
        for year in years:
            assert (run / f"results/{year}/{name}.tif").is_file()
    for year in years:
        listed = json.loads((run / f"results/{year}/ingest/scenes.json").read_text())
        assert listed["failed_assets"] == [] and len(listed["scenes"]) == 4
        by_coll = {}
        for s in listed["scenes"]:
            by_coll.setdefault(s["stac_collection"], []).append(s["scene_id"])
        assert sorted(by_coll) == ["landsat-c2-l2", "sentinel-2-l2a"] and len(by_coll["landsat-c2-l2"]) == 2
        assert all(i.startswith("LC09_") for i in by_coll["landsat-c2-l2"])
        demo_ids = [s["scene_id"] for s in json.loads((demo / f"results/{year}/ingest/scenes.json").read_text())["scenes"]]
        assert sorted(by_coll["sentinel-2-l2a"]) == sorted(set(demo_ids) - landsat)  # not also from Sentinel-2
        with rasterio.open(demo / f"results/{year}/ndvi.tif") as a, rasterio.open(run / f"results/{year}/ndvi.tif") as b:
            x, y = a.read(1).astype(np.float64), b.read(1).astype(np.float64)
        both = np.isfinite(x) & np.isfinite(y)
        np.testing.assert_array_equal(np.isfinite(x), np.isfinite(y), err_msg=f"{year} NDVI valid pixels")
        close = np.abs(x[both] - y[both]) <= 2e-4
        print(f"{year}: NDVI max |diff| {np.abs(x[both] - y[both]).max():.2e}, within 2e-4 on {close.mean():.5%} of {both.sum()} px")
        assert close.mean() > 0.999, f"{year}: NDVI within 2e-4 on only {close.mean():.4%} of the pixels"
        c_demo = pd.read_csv(demo / f"results/{year}/zones/city.csv")["carbon_t"].sum()
        c_mixed = pd.read_csv(run / f"results/{year}/zones/city.csv")["carbon_t"].sum()
        print(f"{year}: city carbon demo {c_demo:.3f} t, mixed catalog {c_mixed:.3f} t")
        assert c_mixed == pytest.approx(c_demo, rel=1e-3)
    prov = json.loads((run / "results/provenance.json").read_text())
    colls = {s["stac_collection"] for y in years for s in prov["scenes"][str(y)]}
    assert colls == {"sentinel-2-l2a", "landsat-c2-l2"}


def test_static_catalog_as_a_file_url(catalog):
    start, end = ingest.season_window(2023, SEASON)
    items, record = stac.search(cfg_stac(catalog.as_uri()), stac.grid_bbox_wgs84(GRID), start, end)
    assert [i.id for i in items] == EXPECTED_2023 and record["kind"] == "static"
