"""Provenance record and logging helpers."""

from __future__ import annotations

import logging

import numpy as np

from greensink import io
from greensink.logs import progress, setup
from greensink.provenance import config_sha256, package_versions, record


def test_config_hash_ignores_key_order_and_sees_values():
    a = {"years": [2023, 2024], "seed": 42, "model": {"min_plots": 10}}
    b = {"model": {"min_plots": 10}, "seed": 42, "years": [2023, 2024]}
    assert config_sha256(a) == config_sha256(b)
    assert config_sha256(a) != config_sha256({**a, "seed": 43})
    assert len(config_sha256(a)) == 64


def test_record_has_checksums_scenes_and_versions(tmp_path):
    f = tmp_path / "zones.gpkg"
    f.write_bytes(b"abc")
    # sha256("abc") is the well-known test vector ba7816bf...
    inputs = {str(f): io.sha256(f)}
    assert inputs[str(f)].startswith("ba7816bf8f01cfea414140de5dae2223")
    scenes = {2023: [{"scene_id": "S1", "datetime": "2023-06-01T00:00:00Z", "sensor": "sentinel2-l2a",
                      "scale": 1e-4, "offset": -0.1, "clear_pct": 80.0}]}
    rec = record({"seed": 1}, inputs, scenes)
    assert rec["inputs"] == [{"path": str(f), "sha256": inputs[str(f)]}]
    assert rec["scenes"]["2023"][0]["reflectance_offset"] == -0.1
    assert rec["packages"]["numpy"] == np.__version__
    assert rec["config_sha256"] == config_sha256({"seed": 1})
    assert "created" not in rec  # no wall-clock time: a rerun gives the same record


def test_package_versions_marks_missing_packages():
    assert package_versions(["surely-not-a-package-xyz"]) == {"surely-not-a-package-xyz": "not installed"}


def test_progress_logs_at_the_end_and_rate_limits(caplog):
    log = logging.getLogger("greensink.test")
    report = progress(log, "coverage", every_s=3600)
    with caplog.at_level(logging.INFO, logger="greensink"):
        report(1, 10)  # first call logs (nothing logged before)
        report(2, 10)  # within the interval: silent
        report(10, 10)  # the end always logs
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["coverage: 1/10 (10 %)", "coverage: 10/10 (100 %)"]


def test_setup_writes_the_log_file(tmp_path):
    path = tmp_path / "logs" / "rule.log"
    log = setup(path)
    log.info("composite of %d scenes", 5)
    for h in logging.getLogger("greensink").handlers:
        h.flush()
    assert "composite of 5 scenes" in path.read_text(encoding="utf-8")
    logging.getLogger("greensink").handlers.clear()


def test_record_keeps_the_masked_share_per_year():
    summary = {"masked_pct": 36.3, "n_scenes": 5}
    rec = record({}, {}, {2023: []}, {2023: {"summary": summary, "excluded_out_of_season": ["S0"]}})
    assert rec["imagery"]["2023"]["summary"]["masked_pct"] == 36.3
    assert rec["imagery"]["2023"]["excluded_out_of_season"] == ["S0"]


def _script(tmp_path, body: str):
    import subprocess
    import sys

    code = "from greensink.logs import setup\nlog = setup(r'{}')\nlog.info('started')\n{}\n".format(tmp_path / "rule.log", body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_an_input_problem_in_a_rule_script_is_one_logged_line_without_traceback(tmp_path):
    proc = _script(tmp_path, "from greensink.errors import InputDataError\n"
                             "raise InputDataError('plots.gpkg row 3: carbon_t_ha must be a number. Got x. Fix it.')")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert f"ERROR greensink.workflow: plots.gpkg row 3: carbon_t_ha must be a number. Got x. Fix it. (log: {tmp_path / 'rule.log'})" in proc.stderr
    log = (tmp_path / "rule.log").read_text(encoding="utf-8")
    assert "started" in log and "plots.gpkg row 3" in log and "Traceback" not in log


def test_a_bug_in_a_rule_script_keeps_its_traceback_in_the_log(tmp_path):
    proc = _script(tmp_path, "{}['missing']")
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "KeyError: 'missing'" in proc.stderr
    log = (tmp_path / "rule.log").read_text(encoding="utf-8")
    assert "Traceback" in log and "KeyError: 'missing'" in log


def test_run_record_leaves_the_scenarios_out_and_names_where_they_are(tmp_path, monkeypatch):
    from greensink.provenance import recorded_config, run_provenance

    monkeypatch.chdir(tmp_path)  # the run folder
    base = {"years": [2024], "seed": 42}
    plans = {**base, "scenarios": [{"name": "park", "changes": [{"kind": "construction", "path": "p.gpkg"}]}]}
    assert recorded_config(plans) == base and "scenarios" in plans  # the config itself is left as it is
    run_provenance({}, tmp_path / "a.json", config=base, root=tmp_path)
    b = run_provenance({}, tmp_path / "b.json", config=plans, root=tmp_path)
    # a plan added changes nothing of the run's record (so rule provenance, with these params, does not rerun)
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert b["config"] == base and b["config_sha256"] == config_sha256(base)
    assert b["scenario_records"] == "results/scenarios/{scenario}/inputs.json"


def test_scenario_record_holds_its_entry_and_layer_checksums_relative_to_the_run(tmp_path):
    from greensink.provenance import scenario_record

    layer = tmp_path / "plans" / "park.gpkg"
    layer.parent.mkdir()
    layer.write_bytes(b"abc")  # sha256("abc") = ba7816bf..., the FIPS 180-2 test vector
    outside = tmp_path.parent / f"{tmp_path.name}_outside.gpkg"
    outside.write_bytes(b"")  # sha256 of nothing: e3b0c442...
    entry = {"name": "park", "changes": [{"kind": "greenspace", "path": str(layer), "type": "G1"},
                                         {"kind": "construction", "path": str(outside)}]}
    rec = scenario_record(entry, [str(layer), str(outside), str(layer)], root=tmp_path, types=["G1", "G1_plan1"])
    assert rec["config"]["changes"][0]["path"] == "plans/park.gpkg"  # inside the run folder: relative
    assert rec["config"]["changes"][1]["path"] == str(outside)  # outside: absolute
    assert rec["inputs"] == [
        {"path": str(outside), "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"path": "plans/park.gpkg", "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    ]  # each file once, sorted by recorded path ("/..." before "plans/...")
    assert rec["config_sha256"] == config_sha256(rec["config"]) and rec["types"] == ["G1", "G1_plan1"]
    assert scenario_record(entry, str(layer), root=tmp_path)["inputs"][0]["path"] == "plans/park.gpkg"  # one path
