"""Portable records (issue 16 item 6): paths inside the run folder relative to it, others absolute, and a
provenance record that names no folder of the machine it was made on."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from greensink import io
from greensink.portable import portable, run_relative
from greensink.provenance import run_provenance


def test_run_relative_inside_outside_and_remote(tmp_path: Path) -> None:
    root = tmp_path / "run"
    root.mkdir()
    assert run_relative(root / "results" / "a.tif", root) == os.path.join("results", "a.tif")
    assert run_relative(root, root) == "."
    assert run_relative("resources/x.gpkg", root) == os.path.join("resources", "x.gpkg")  # already relative
    assert run_relative(root / "a" / ".." / "b.csv", root) == "b.csv"  # normalised
    # a sibling whose name starts like the run folder is outside it
    assert run_relative(tmp_path / "run2" / "x.csv", root) == str(tmp_path / "run2" / "x.csv")
    assert run_relative("/srv/coefficients.csv", root) == "/srv/coefficients.csv"
    assert run_relative("https://example.org/b04.tif", root) == "https://example.org/b04.tif"
    assert run_relative("/vsicurl/https://example.org/b04.tif", root) == "/vsicurl/https://example.org/b04.tif"


def test_run_relative_defaults_to_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_relative(tmp_path / "results" / "x.json") == os.path.join("results", "x.json")


def test_portable_rewrites_every_mention_of_the_run_folder() -> None:
    root = "/data/runs/city"
    value = {"workdir": root, "workdir_slash": root + "/", "zones": [{"path": f"{root}/resources/z.gpkg", "level": "city"}],
             "note": f"scene S2 ({root}/resources/imagery/b04.tif) read", "other": "/data/runs/city2/x.tif",
             "shared": "/srv/table.csv", "n": 3, "none": None, "flag": True, "path_obj": Path(root) / "a.tif",
             "pair": (f"{root}/a", 1)}
    out = portable(value, root)
    assert out == {"workdir": ".", "workdir_slash": ".", "zones": [{"path": "resources/z.gpkg", "level": "city"}],
                   "note": "scene S2 (resources/imagery/b04.tif) read", "other": "/data/runs/city2/x.tif",
                   "shared": "/srv/table.csv", "n": 3, "none": None, "flag": True, "path_obj": "a.tif", "pair": ["a", 1]}
    assert value["workdir"] == root  # the input is not changed


def _project(root: Path) -> dict:
    """A run folder with two input files inside it, one scene whose bands are inside it, and its config."""
    (root / "resources").mkdir(parents=True)
    (root / "resources" / "zones.gpkg").write_bytes(b"zones")
    (root / "resources" / "b04.tif").write_bytes(b"red")
    (root / "resources" / "b08.tif").write_bytes(b"nir")
    scene = {"scene_id": "S1", "datetime": "2024-07-01", "sensor": "sentinel2", "scale": 1e-4, "offset": 0.0,
             "red": "resources/b04.tif", "nir": str(root / "resources" / "b08.tif"), "quality": None}
    io.write_json(root / "scenes.json", {"year": 2024, "scenes": [scene],
                                         "warnings": [f"{root}/resources/b04.tif: 3 % of pixels saturated"]})
    io.write_json(root / "models.json", {"year": 2024, "types": {}})
    return {"years": [2024], "workdir": str(root), "zones": [{"level": "city", "path": str(root / "resources/zones.gpkg")}]}


def test_provenance_names_no_folder_of_the_run_and_hashes_the_same_anywhere(tmp_path: Path, monkeypatch) -> None:
    shared = tmp_path / "shared.csv"  # outside both run folders: kept absolute
    shared.write_bytes(b"coefficients")
    records = []
    for name in ("a", "b"):
        root = tmp_path / name
        config = {**_project(root), "coefficients": str(shared)}
        monkeypatch.chdir(root)  # rules run in the run folder: the scene's relative band path is relative to it
        inputs = {"zones": [str(root / "resources/zones.gpkg")], "coefficients": str(shared),
                  "scenes": [str(root / "scenes.json")], "models": [str(root / "models.json")]}
        run_provenance(inputs, root / "provenance.json", config=config, root=root)
        text = (root / "provenance.json").read_text(encoding="utf-8")
        assert str(root) not in text
        records.append(json.loads(text))
    a, b = records
    assert {e["path"]: e["sha256"] for e in a["inputs"]} == {
        os.path.join("resources", "b04.tif"): hashlib.sha256(b"red").hexdigest(),
        os.path.join("resources", "b08.tif"): hashlib.sha256(b"nir").hexdigest(),
        os.path.join("resources", "zones.gpkg"): hashlib.sha256(b"zones").hexdigest(),
        str(shared): hashlib.sha256(b"coefficients").hexdigest(),
    }
    assert a["config"]["workdir"] == "." and a["config"]["zones"][0]["path"] == "resources/zones.gpkg"
    assert a["config"]["coefficients"] == str(shared)
    assert a["imagery"]["2024"]["warnings"] == ["resources/b04.tif: 3 % of pixels saturated"]
    # the hash is over the portable config, computed here independently of greensink
    expected = hashlib.sha256(json.dumps(a["config"], sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    assert a["config_sha256"] == expected == b["config_sha256"]
    assert a["inputs"] == b["inputs"] and a["scenes"] == b["scenes"]


def test_a_moved_project_folder_keeps_its_own_config(tmp_path: Path) -> None:
    from greensink.errors import ConfigError
    from greensink.workflow import PROJECT_MARKER, check_project

    old = tmp_path / "old"
    old.mkdir()
    (old / "config.yaml").write_text("{}\n", encoding="utf-8")
    check_project(old, old / "config.yaml")
    assert json.loads((old / PROJECT_MARKER).read_text())["config"] == "config.yaml"  # inside: relative
    new = tmp_path / "new"
    old.rename(new)
    check_project(new, new / "config.yaml")  # the moved folder with its config: still its owner
    other = tmp_path / "other.yaml"
    other.write_text("{}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=str(new / "config.yaml")):
        check_project(new, other)  # another config is still refused, naming the owner by its full path
    outside = tmp_path / "p2"
    check_project(outside, other)
    assert json.loads((outside / PROJECT_MARKER).read_text())["config"] == str(other)  # outside: absolute
