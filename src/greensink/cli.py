"""greensink: satellite imagery to green-space carbon accounts.

Commands:
  greensink run CONFIG [SNAKEMAKE OPTIONS]   run the workflow for CONFIG in its own project folder
  greensink validate CONFIG                  check the config and every input file it names
  greensink config-docs                      print the reference of every config key (Markdown)
  greensink demo [OUT_DIR]                   write the demo city's inputs and truth
  greensink allometry INVENTORY --out CSV    per-tree and per-plot carbon from a tree inventory

The workflow is a Snakemake workflow (Snakefile in the greensink checkout): `greensink run` calls
Snakemake with it; `snakemake --cores N --configfile CONFIG` from the checkout does the same.
An installed greensink without the checkout validates configs, writes the demo city and prints the
config reference (the schema, default tables and demo config are package data); `run` needs the checkout.
See README.md and docs/.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from greensink import __version__
from greensink.errors import GreensinkError


def schema_markdown(schema: Mapping) -> str:
    """Markdown reference of every configuration key, generated from the JSON Schema."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from `workflow/schemas/config.schema.yaml` by `greensink config-docs > docs/config.md`;",
        "do not edit by hand. A config file is the whole config: a key it leaves out takes the default below.",
        "Relative input paths start in the folder the run starts in; outputs go to the project folder (`workdir`).",
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
        if sub.get("type") == "object" or "object" in (sub.get("type") or []):
            _walk(sub, f"{name}.", lines, set(sub.get("required", [])))
        if sub.get("type") == "array" and isinstance(sub.get("items"), Mapping) and sub["items"].get("type") == "object":
            _walk(sub["items"], f"{name}[].", lines, set(sub["items"].get("required", [])))


ALLOMETRY_HELP = "per-tree and per-plot biomass and carbon from a tree inventory (DBH, height, species)"
RUN_HELP = """Run the greensink workflow for CONFIG with Snakemake, in the config's project folder (the config's
workdir key; default projects/<config file name> under the current folder, or the current folder for the demo
config). Options after CONFIG go to Snakemake unchanged, e.g. -n (dry run), --cores 4, --forceall,
--executor slurm. Without --cores (or -c, -j) all cores are used. Relative paths in CONFIG start in the current
folder."""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="greensink", description=__doc__.split("\n\n")[0],
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"greensink {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    r = sub.add_parser("run", help="run the workflow for a config in its own project folder",
                       description=RUN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("config", help="config file (YAML)")
    r.add_argument("snakemake_args", nargs=argparse.REMAINDER, help="options passed to Snakemake")
    v = sub.add_parser("validate", help="check a config and every input file it names; list every problem",
                       description="Check CONFIG exactly as the workflow reads it: the schema, then every input file "
                                   "(files exist, globs match, dates, CRSs, overlaps, columns, types). Exit 0 when it "
                                   "is valid, 2 with every problem listed when not.")
    v.add_argument("config", nargs="?", default=None,
                   help="config file (default: the demo config, config/config.yaml; shipped with the package)")
    sub.add_parser("config-docs", help="print the Markdown reference of every config key")
    d = sub.add_parser("demo", help="write the demo city's inputs and truth without running the workflow")
    d.add_argument("out_dir", nargs="?", default="resources/demo")
    d.add_argument("--config", default=None, help="config whose demo keys to use (default: the demo config)")
    if argv[:1] == ["allometry"]:  # its options need the allometry tables (numpy, pandas): import only when asked
        _add_allometry_parser(sub)
    else:
        sub.add_parser("allometry", help=ALLOMETRY_HELP)
    if argv[:1] == ["run"] and len(argv) >= 2 and not argv[1].startswith("-"):
        return _run(argv[1], argv[2:])  # everything after CONFIG belongs to Snakemake, even -h
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _run(args.config, args.snakemake_args)
        if args.command == "validate":
            return _validate(args.config)
        if args.command == "config-docs":
            from greensink import config as gs_config

            sys.stdout.write(schema_markdown(gs_config.load_schema()))
        elif args.command == "demo":
            from greensink import config as gs_config
            from greensink.demo import generate_demo
            from greensink.workflow import DEMO_CONFIG

            cfg = gs_config.load(args.config or DEMO_CONFIG)
            dm = cfg["demo"]
            manifest = generate_demo(
                args.out_dir, years=cfg["years"], crs=cfg["crs"], resolution_m=cfg["resolution"],
                season=(cfg["season"]["start"], cfg["season"]["end"]), seed=dm["seed"], extent_m=dm["extent_m"],
                blocks=tuple(dm["blocks"]), parcels_per_block=tuple(dm["parcels_per_block"]),
                scenes_per_year=dm["scenes_per_year"], compress=cfg["output"]["compress"],
                truth_cell_m=dm["truth_cell_m"], plot_radius_m=dm["plot_radius_m"], progress=print,
            )
            print(f"demo city written to {args.out_dir}: {manifest.get('counts')}")
        elif args.command == "allometry":
            if args.plots_out and not args.plot_column:
                parser.error("--plots-out needs --plot-column (the column that names each tree's plot)")
            print(_run_allometry(args))
    except (GreensinkError, OSError) as exc:  # OSError: a config or input path that cannot be read
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _validate(config: str | None) -> int:
    """Check ``config`` as the workflow sees it; print the warnings and 'valid', or every problem."""
    from greensink.preflight import check_inputs
    from greensink.workflow import DEMO_CONFIG, load_project

    name = config or str(DEMO_CONFIG)
    try:
        cfg = load_project(config)
        warnings = check_inputs(cfg)
    except (GreensinkError, OSError) as exc:
        text = str(exc)
        print(f"error: {text if text.startswith(name) else f'{name}: {text}'}", file=sys.stderr)
        return 2
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{name}: valid; results go to {cfg['workdir']}/results")
    return 0


def _run(config: str, snakemake_args: Sequence[str]) -> int:
    """Run Snakemake on this checkout's Snakefile with ``config``; the Snakefile picks the project folder.
    Without a checkout (greensink installed from a wheel) say where the workflow is and return 2."""
    from greensink.workflow import CHECKOUT_HINT, checkout

    repo = checkout()
    if repo is None:
        print(f"error: greensink run needs the greensink checkout. {CHECKOUT_HINT}", file=sys.stderr)
        return 2
    if not Path(config).is_file():
        print(f"error: {config}: no such config file. Give the path of a YAML config (see config/examples/).",
              file=sys.stderr)
        return 2
    from greensink.config import read_yaml
    from greensink.errors import GreensinkError

    try:  # Snakemake reads --configfile before the Snakefile and says only "not valid JSON or YAML": say where
        read_yaml(config, "Fix the config, starting from config/config.yaml")
    except GreensinkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args = list(snakemake_args)
    if not any(a in ("--cores", "-c", "-j", "--jobs") or a.startswith(("--cores=", "--jobs=")) for a in args):
        args = ["--cores", "all", *args]
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"), "--configfile",
           str(Path(config).resolve()), *args]
    print("greensink: " + " ".join(cmd[1:]), file=sys.stderr)
    return subprocess.call(cmd, env=os.environ.copy())


def _add_allometry_parser(sub) -> None:
    from greensink.allometry import CM_PER, EQUATIONS, M_PER, MISSING_HEIGHT

    a = sub.add_parser(
        "allometry", help=ALLOMETRY_HELP,
        description="Per-tree above- and below-ground biomass, carbon and CO2e from a tree inventory CSV, with "
                    "cited equations (Chave et al. 2014 or Jenkins et al. 2003); optional per-plot sums in t C/ha. "
                    "Defaults come from --params; see docs/allometry.md.")
    a.add_argument("inventory", help="tree inventory CSV, one row per tree")
    a.add_argument("--out", required=True, help="per-tree output CSV")
    a.add_argument("--plots-out", help="per-plot output CSV (needs --plot-column)")
    a.add_argument("--plot-column", help="column naming each tree's plot (or any group, e.g. a city)")
    a.add_argument("--plot-area-m2", type=float, help="area of every plot, m²; gives carbon_t_ha")
    a.add_argument("--plot-area-column", help="column with each tree's plot area, m² (one value per plot)")
    a.add_argument("--equation", choices=EQUATIONS, help="biomass equation (default from --params: chave2014)")
    a.add_argument("--carbon-fraction", type=float, help="t C per t dry biomass (default 0.47, IPCC 2006)")
    a.add_argument("--root-shoot", type=float, help="below:above-ground biomass ratio (default 0.26, Cairns et al. 1997)")
    a.add_argument("--urban-factor", type=float, help="multiplier for open-grown urban trees (default 0.8, Nowak 1994; 1 = off)")
    a.add_argument("--missing-height", choices=MISSING_HEIGHT, default="error",
                   help="chave2014 only: trees without height stop the run (error) or use jenkins2003, flagged")
    a.add_argument("--params", default=None, help="parameter table (wood densities, groups, defaults); default: greensink's "
                   "own, config/allometry.yaml in the checkout (shipped with the package)")
    a.add_argument("--dbh-column", default="dbh_cm", help="DBH column (default dbh_cm)")
    a.add_argument("--dbh-unit", choices=list(CM_PER), default="cm")
    a.add_argument("--height-column", help="total height column (default height_m if present)")
    a.add_argument("--height-unit", choices=list(M_PER), default="m")
    a.add_argument("--species-column", help="scientific name column (default species if present)")
    a.add_argument("--group-column", help="wood-density group column: hardwood / softwood, or a Jenkins group")
    a.add_argument("--wood-density-column", help="measured basic wood density column, g/cm³ (oven-dry mass / green volume)")
    a.add_argument("--crown-diameter-column", help="crown diameter column; adds crown area and carbon per crown m²")
    a.add_argument("--crown-unit", choices=list(M_PER), default="m")
    a.add_argument("--id-column", help="tree id column, copied to the output as tree_id")
    a.add_argument("--na-values", default="", help="comma-separated codes that mean 'missing' (e.g. -1 in the USDA Urban Tree Database)")


def _run_allometry(args: argparse.Namespace) -> str:
    """Read the inventory and parameter table, compute, write; return the one-line summary."""
    import numpy as np

    from greensink import allometry, package_data
    from greensink.config import read_yaml
    from greensink.io import read_csv_as_text, write_csv
    from greensink.units import kg_to_t

    params_path = args.params or str(package_data.file_path(package_data.ALLOMETRY))
    cfg = read_yaml(params_path, "Start from config/allometry.yaml")
    params = allometry.params_from_mapping(cfg, where=params_path)
    inventory = read_csv_as_text(args.inventory)  # every cell as text: tree_carbon parses and names bad rows

    def default(given: str | None, conventional: str) -> str | None:
        return given if given is not None else (conventional if conventional in inventory.columns else None)

    columns = allometry.Columns(
        dbh=args.dbh_column, height=default(args.height_column, "height_m"), species=default(args.species_column, "species"),
        group=args.group_column, wood_density=args.wood_density_column, crown_diameter=args.crown_diameter_column,
        tree_id=args.id_column, plot=args.plot_column, plot_area=args.plot_area_column,
    )
    na_values = ["", "NA", "NaN", "nan", *[v.strip() for v in args.na_values.split(",") if v.strip()]]
    trees = allometry.tree_carbon(
        inventory, params, columns=columns, where=args.inventory, equation=args.equation,
        carbon_fraction=args.carbon_fraction, root_shoot=args.root_shoot, urban_factor=args.urban_factor,
        dbh_unit=args.dbh_unit, height_unit=args.height_unit, crown_unit=args.crown_unit,
        na_values=na_values, missing_height=args.missing_height,
    )
    plots = allometry.plot_carbon(trees, plot_area_m2=args.plot_area_m2) if args.plots_out else None
    write_csv(args.out, trees)
    stats = allometry.summary_stats(trees)
    flags = trees["flags"][trees["flags"] != ""].str.split(";").explode().value_counts()
    msg = (f"{len(trees)} trees -> {args.out}: {kg_to_t(np.nansum(trees['carbon_kg'])):.3f} t C in total, "
           f"median {stats['carbon_kg_median']:.1f} kg C per tree (quartiles {stats['carbon_kg_q25']:.1f}-{stats['carbon_kg_q75']:.1f})")
    if "carbon_kg_per_crown_m2_median" in stats:
        msg += f", median {stats['carbon_kg_per_crown_m2_median']:.2f} kg C per m² of crown"
    msg += "; flags: " + (", ".join(f"{k} {v}" for k, v in flags.items()) if len(flags) else "none")
    if plots is not None:
        write_csv(args.plots_out, plots)
        msg += f"\n{len(plots)} plots -> {args.plots_out}"
    return msg


if __name__ == "__main__":
    raise SystemExit(main())
