"""Command line: ``greensink validate``, ``greensink config-docs``, ``greensink demo``.

The workflow itself runs with Snakemake (``make demo`` or ``snakemake --cores N``); this
command covers the small jobs around it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence

from greensink import config as gs_config
from greensink.errors import GreensinkError


def schema_markdown(schema: Mapping) -> str:
    """Markdown reference of every configuration key, generated from the JSON Schema."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from `workflow/schemas/config.schema.yaml` by `greensink config-docs > docs/config.md`;",
        "do not edit by hand. Paths are relative to the directory Snakemake runs in.",
        "",
        "| key | type | default | description |",
        "|---|---|---|---|",
    ]
    _walk(schema, "", lines, set(schema.get("required", [])))
    return "\n".join(lines) + "\n"


def _type(node: Mapping) -> str:
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    t = node.get("type", "")
    if isinstance(t, list):
        t = " or ".join(t)
    if t == "array" and "items" in node:
        inner = node["items"]
        t = f"list of {_type(inner) or 'object'}"
    return t


def _walk(node: Mapping, prefix: str, lines: list[str], required: set[str]) -> None:
    for key, sub in node.get("properties", {}).items():
        name = f"{prefix}{key}"
        default = f"`{sub['default']}`" if "default" in sub else ("required" if key in required else "")
        desc = " ".join(str(sub.get("description", "")).split()).replace("|", "\\|")
        rng = []
        for k, word in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<")):
            if k in sub:
                rng.append(f"{word} {sub[k]}")
        if rng:
            desc += f" Range: {', '.join(rng)}."
        lines.append(f"| `{name}` | {_type(sub)} | {default} | {desc} |")
        if sub.get("type") == "object":
            _walk(sub, f"{name}.", lines, set(sub.get("required", [])))
        if sub.get("type") == "array" and isinstance(sub.get("items"), Mapping) and sub["items"].get("type") == "object":
            _walk(sub["items"], f"{name}[].", lines, set(sub["items"].get("required", [])))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="greensink", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate", help="validate a config file and list every problem")
    v.add_argument("config", nargs="?", default="config/config.yaml")
    sub.add_parser("config-docs", help="print the Markdown reference of every config key")
    d = sub.add_parser("demo", help="write the demo city's inputs and truth without running the workflow")
    d.add_argument("out_dir", nargs="?", default="resources/demo")
    d.add_argument("--config", default="config/config.yaml")
    args = parser.parse_args(argv)
    try:
        if args.command == "validate":
            gs_config.load(args.config)
            print(f"{args.config}: valid")
        elif args.command == "config-docs":
            sys.stdout.write(schema_markdown(gs_config.load_schema()))
        elif args.command == "demo":
            from greensink.demo import generate_demo

            cfg = gs_config.load(args.config)
            dm = cfg["demo"]
            manifest = generate_demo(
                args.out_dir, years=cfg["years"], crs=cfg["crs"], resolution_m=cfg["resolution"],
                season=(cfg["season"]["start"], cfg["season"]["end"]), seed=dm["seed"], extent_m=dm["extent_m"],
                blocks=tuple(dm["blocks"]), parcels_per_block=tuple(dm["parcels_per_block"]),
                scenes_per_year=dm["scenes_per_year"], compress=cfg["output"]["compress"], progress=print,
            )
            print(f"demo city written to {args.out_dir}: {manifest.get('counts')}")
    except (GreensinkError, OSError) as exc:  # OSError: a config or input path that cannot be read
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
