"""Tests of greensink.cli: ``validate`` exit codes and messages, and docs/config.md kept in step
with the JSON Schema it is generated from."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import yaml

from greensink.cli import main, schema_markdown
from greensink.config import load_schema

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "config.md"


def test_validate_committed_config(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert main(["validate", "config/config.yaml"]) == 0
    out = capsys.readouterr()
    assert "config/config.yaml: valid" in out.out
    assert out.err == ""


def test_validate_default_path(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["validate"]) == 0


def broken(tmp_path: Path, **changes) -> Path:
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
    cfg.update(changes)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def test_validate_bad_value_exits_2_naming_the_key(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    path = broken(tmp_path, resolution=-10)
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.startswith("error: ")
    assert "resolution" in out.err and "-10" in out.err


def test_validate_unknown_key_exits_2_naming_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    path = broken(tmp_path, resolutoin=10)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "'resolutoin'" in err and "Allowed keys" in err


def test_validate_geographic_crs_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert main(["validate", str(broken(tmp_path, crs="EPSG:4326"))]) == 2
    err = capsys.readouterr().err
    assert "crs" in err and "geographic" in err


def test_validate_invalid_yaml_exits_2(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text("years: [2023\ncrs: EPSG:32651\n", encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: not valid YAML" in err and "starting from config/config.yaml" in err
    path.write_text("[2023, 2024]\n", encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    assert "the top level must be a mapping of keys to values. Got a list" in capsys.readouterr().err


def test_validate_missing_file_exits_2_naming_it(tmp_path, capsys):
    path = tmp_path / "nope.yaml"
    assert main(["validate", str(path)]) == 2
    assert "nope.yaml" in capsys.readouterr().err


def test_config_docs_prints_the_reference(capsys):
    assert main(["config-docs"]) == 0
    assert capsys.readouterr().out == schema_markdown(load_schema())


def test_docs_config_md_matches_schema():
    expected = schema_markdown(load_schema())
    actual = DOCS.read_text(encoding="utf-8")
    assert actual == expected, (
        "docs/config.md is out of date with workflow/schemas/config.schema.yaml. "
        "Regenerate it: run `greensink config-docs > docs/config.md` and commit the result."
    )


def leaf_keys(node: Mapping, prefix: str = "") -> Iterator[str]:
    """Dotted names of every schema property without sub-properties (``zones[].id`` for list items)."""
    for key, sub in node.get("properties", {}).items():
        name = f"{prefix}{key}"
        items = sub.get("items") if isinstance(sub.get("items"), Mapping) else {}
        if "properties" in sub:
            yield from leaf_keys(sub, f"{name}.")
        elif "properties" in items:
            yield from leaf_keys(items, f"{name}[].")
        else:
            yield name


def test_every_schema_leaf_key_is_documented():
    docs = DOCS.read_text(encoding="utf-8")
    leaves = list(leaf_keys(load_schema()))
    assert {"years", "crs", "zones[].id", "greenspace.type_column", "model.n_bootstrap"} <= set(leaves)
    missing = [k for k in leaves if f"| `{k}` |" not in docs]
    assert missing == [], f"keys missing from docs/config.md: {missing}; run `greensink config-docs > docs/config.md`"


def test_schema_markdown_escapes_pipes_and_shows_ranges():
    schema = {
        "required": ["a"],
        "properties": {
            "a": {"type": "number", "description": "x | y", "exclusiveMinimum": 0, "maximum": 5},
            "b": {"type": "object", "default": {}, "properties": {"c": {"enum": ["p", "q"], "default": "p"}}},
            "d": {"type": "array", "items": {"type": "object", "required": ["e"],
                                              "properties": {"e": {"type": "string"}}}},
        },
    }
    md = schema_markdown(schema)
    assert "| `a` | number | required | x \\| y Range: > 0, ≤ 5. |" in md
    assert "| `b.c` | `p` \\| `q` | `p` |" in md
    assert "| `d` | list of object |  |" in md
    assert "| `d[].e` | string | required |" in md


@pytest.mark.parametrize("argv", [[], ["frobnicate"]])
def test_bad_command_line_exits_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage: greensink" in capsys.readouterr().err
