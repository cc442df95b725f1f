"""Tests of greensink.allometry and ``greensink allometry``: the equations on hand-worked trees,
the configurable carbon fraction / root:shoot / urban factor, wood-density look-up and its
flags, input validation, per-plot sums, the command line, and a real-data test on the USDA
Forest Service Urban Tree Database (McPherson et al. 2016), read in place from ../shared/data."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from greensink import allometry as A
from greensink import io as gs_io
from greensink.cli import main
from greensink.errors import ConfigError, InputDataError

ROOT = Path(__file__).resolve().parents[1]
PARAMS_YAML = ROOT / "config" / "allometry.yaml"
UTD = ROOT.parent / "shared" / "data" / "urban-trees" / "TS3_Raw_tree_data.csv"


@pytest.fixture(scope="module")
def cfg() -> dict:
    return yaml.safe_load(PARAMS_YAML.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def params(cfg) -> A.AllometryParams:
    return A.params_from_mapping(cfg)


NO_HEIGHT = A.Columns(height=None)  # DBH-only inventories (jenkins2003)


def inventory(**columns) -> pd.DataFrame:
    """A small inventory read as text, the way the CLI reads a CSV."""
    return pd.DataFrame({k: [str(v) for v in vals] for k, vals in columns.items()})


# ----------------------------------------------------------------------------- hand-worked trees


def test_chave2014_hand_worked():
    # ρ = 0.6 g/cm³, D = 30 cm, H = 15 m
    # ρ D² H        = 0.6 × 900 × 15            = 8100
    # ln 8100       = 8.999619
    # × 0.976       = 8.783628  -> exp = 6526.516
    # AGB = 0.0673 × 6526.516                    = 439.234 kg (oven-dry)
    assert A.chave2014_agb_kg(0.6, 30.0, 15.0) == pytest.approx(439.2345, rel=1e-6)


def test_jenkins2003_hand_worked():
    # mixed hardwood, D = 30 cm: β0 = -2.4800, β1 = 2.4835
    # ln 30 = 3.401197; × 2.4835 = 8.446874; - 2.4800 = 5.966874; exp = 390.284 kg
    assert A.jenkins2003_agb_kg(30.0, "mixed_hardwood") == pytest.approx(390.2836, rel=1e-6)
    # pine, D = 20 cm: β0 = -2.5356, β1 = 2.4349
    # ln 20 = 2.995732; × 2.4349 = 7.294309; - 2.5356 = 4.758709; exp = 116.595 kg
    assert A.jenkins2003_agb_kg(20.0, "pine") == pytest.approx(116.5952, rel=1e-6)
    # soft maple/birch, D = 25 cm: β0 = -1.9123, β1 = 2.3651
    # ln 25 = 3.218876; × 2.3651 = 7.612964; - 1.9123 = 5.700664; exp = 299.07 kg
    assert A.jenkins2003_agb_kg(25.0, "soft_maple_birch") == pytest.approx(math.exp(5.700664), rel=1e-5)
    assert A.jenkins2003_agb_kg(25.0, "soft_maple_birch") == pytest.approx(299.07, rel=1e-4)


def test_whole_tree_chave_defaults_hand_worked(params):
    # White oak (Quercus alba): ρ = 0.60 g/cm³ from the Wood Handbook row of the table.
    # D = 30 cm, H = 15 m -> AGB(equation) = 439.234 kg (test_chave2014_hand_worked)
    # × urban factor 0.8           agb  = 351.388 kg
    # × root:shoot 0.26            bgb  =  91.361 kg
    # (351.388 + 91.361) × 0.47    C    = 208.092 kg
    # × 44/12                      CO2e = 763.003 kg
    trees = A.tree_carbon(inventory(species=["Quercus alba"], dbh_cm=[30], height_m=[15]), params)
    t = trees.iloc[0]
    assert t["wood_density_g_cm3"] == 0.60 and t["wood_density_source"] == "species"
    assert t["equation"] == "chave2014" and t["flags"] == ""
    assert t["agb_equation_kg"] == pytest.approx(439.2345, rel=1e-6)
    assert t["agb_kg"] == pytest.approx(351.3876, rel=1e-6)
    assert t["bgb_kg"] == pytest.approx(91.3608, rel=1e-6)
    assert t["carbon_kg"] == pytest.approx(208.0917, rel=1e-6)
    assert t["co2e_kg"] == pytest.approx(763.0030, rel=1e-6)


def test_whole_tree_jenkins_hand_worked(params):
    # Green ash: genus Fraxinus is in none of Jenkins' named hardwood groups -> mixed hardwood
    # (Jenkins' catch-all hardwood group, so no flag). D = 30 cm -> AGB = 390.284 kg.
    # Loblolly pine, D = 20 cm -> pine group, AGB = 116.595 kg.
    # Carbon with defaults: AGB × 0.8 × 1.26 × 0.47
    #   ash:  390.284 × 0.47376 = 184.90 kg C;  pine: 116.595 × 0.47376 = 55.238 kg C
    inv = inventory(species=["Fraxinus pennsylvanica", "Pinus taeda"], dbh_cm=[30, 20])
    trees = A.tree_carbon(inv, params, columns=NO_HEIGHT, equation="jenkins2003")
    assert list(trees["equation"]) == ["jenkins2003:mixed_hardwood", "jenkins2003:pine"]
    assert list(trees["flags"]) == ["", ""]
    assert trees["agb_equation_kg"].to_numpy() == pytest.approx([390.2836, 116.5952], rel=1e-6)
    assert trees["carbon_kg"].to_numpy() == pytest.approx([390.2836 * 0.47376, 116.5952 * 0.47376], rel=1e-6)


def test_carbon_fraction_root_shoot_and_urban_factor_are_configurable(params):
    # Mixed hardwood, D = 30 cm: AGB 390.284 kg. With carbon fraction 0.5 (Nowak & Crane 2002),
    # root:shoot 0.3 and no urban factor: C = 390.284 × (1 + 0.3) × 0.5 = 253.684 kg
    inv = inventory(species=["Fraxinus americana"], dbh_cm=[30])
    t = A.tree_carbon(inv, params, columns=NO_HEIGHT, equation="jenkins2003", carbon_fraction=0.5, root_shoot=0.3, urban_factor=1.0).iloc[0]
    assert t["agb_kg"] == pytest.approx(390.2836, rel=1e-6)
    assert t["bgb_kg"] == pytest.approx(390.2836 * 0.3, rel=1e-6)
    assert t["carbon_kg"] == pytest.approx(253.6844, rel=1e-6)
    assert t["co2e_kg"] == pytest.approx(253.6844 * 44 / 12, rel=1e-6)
    # carbon is linear in the carbon fraction and in (1 + root:shoot)
    base = A.tree_carbon(inv, params, columns=NO_HEIGHT, equation="jenkins2003").iloc[0]["carbon_kg"]
    double = A.tree_carbon(inv, params, columns=NO_HEIGHT, equation="jenkins2003", carbon_fraction=0.94).iloc[0]["carbon_kg"]
    assert double == pytest.approx(2 * base)


def test_defaults_in_the_table_are_the_cited_values(params):
    assert params.carbon_fraction == 0.47  # IPCC 2006 Vol. 4 Ch. 4 Table 4.3
    assert params.root_shoot == 0.26  # Cairns et al. 1997
    assert params.urban_factor == 0.8  # Nowak 1994
    assert params.equation == "chave2014"


def test_fallback_densities_are_the_stated_medians(cfg, params):
    # config/allometry.yaml says: fallbacks are the medians of the table's hardwood / softwood rows
    hard = [v for k, v in cfg["wood_density_g_cm3"].items() if k.split()[0] not in cfg["softwood_genera"]]
    soft = [v for k, v in cfg["wood_density_g_cm3"].items() if k.split()[0] in cfg["softwood_genera"]]
    assert (len(hard), len(soft)) == (65, 38)
    assert params.default_density["hardwood"] == pytest.approx(round(statistics.median(hard), 2))
    assert params.default_density["softwood"] == pytest.approx(round(statistics.median(soft), 2))


# ----------------------------------------------------------------------------- wood density and taxa


@pytest.mark.parametrize("name, key", [
    ("Quercus alba", ("quercus alba", "quercus")),
    ("Fraxinus velutina 'Modesto'", ("fraxinus velutina", "fraxinus")),
    ("Platanus x acerifolia", ("platanus x acerifolia", "platanus")),
    ("Juniperus virginiana var. silicicola", ("juniperus virginiana", "juniperus")),
    ("Malus sp.", ("", "malus")),
    ("  Ginkgo biloba  ", ("ginkgo biloba", "ginkgo")),
    ("", ("", "")),
])
def test_taxon_key(name, key):
    assert A.taxon_key(name) == key


def test_wood_density_lookup_order_and_flags(params):
    quercus = params.genus_density["quercus"]
    inv = inventory(
        species=["Quercus rubra", "Quercus agrifolia", "Cinnamomum camphora", "Cedrus deodara", "Washingtonia robusta", "", "Acer rubrum"],
        group=["", "", "", "", "", "softwood", ""],
        rho=["", "", "", "", "", "", "0.7"],
        dbh_cm=[30] * 7, height_m=[12] * 7)
    trees = A.tree_carbon(inv, params, columns=A.Columns(species="species", group="group", wood_density="rho"))
    assert list(trees["wood_density_source"]) == [
        "species", f"genus mean (n={quercus[1]})", "default hardwood", "default softwood", "default hardwood", "group", "input"]
    assert trees["wood_density_g_cm3"].to_numpy() == pytest.approx([0.56, quercus[0], 0.53, 0.40, 0.53, 0.40, 0.7])
    assert list(trees["wood_class"]) == ["hardwood", "hardwood", "hardwood", "softwood", "palm", "softwood", "hardwood"]
    assert list(trees["flags"]) == ["", "", "density_default", "density_default", "palm;density_default", "", ""]
    assert np.isfinite(trees["carbon_kg"]).all()  # unknown species are not an error


def test_jenkins_groups_from_table_and_flags(params):
    inv = inventory(species=["Acer saccharum", "Acer rubrum", "Quercus rubra", "Populus deltoides", "Cedrus deodara", "Ginkgo biloba"],
                    dbh_cm=[20] * 6)
    trees = A.tree_carbon(inv, params, columns=NO_HEIGHT, equation="jenkins2003")
    assert list(trees["equation"]) == [
        "jenkins2003:hard_maple_oak_hickory_beech", "jenkins2003:soft_maple_birch", "jenkins2003:hard_maple_oak_hickory_beech",
        "jenkins2003:aspen_alder_cottonwood_willow", "jenkins2003:pine", "jenkins2003:mixed_hardwood"]
    assert "jenkins_group_default" in trees["flags"].iloc[4]
    assert "jenkins_group_default" not in trees["flags"].iloc[5]


def test_small_trees_are_computed_and_flagged(params):
    inv = inventory(species=["Acer rubrum"] * 2, dbh_cm=[4, 10], height_m=[3, 8])
    trees = A.tree_carbon(inv, params)
    assert list(trees["flags"]) == ["dbh_below_equation_range", ""]  # Chave 2014: D >= 5 cm
    trees = A.tree_carbon(inventory(species=["Acer rubrum"], dbh_cm=[2]), params, columns=NO_HEIGHT, equation="jenkins2003")
    assert trees["flags"].iloc[0] == "dbh_below_equation_range"  # Jenkins 2003: D >= 2.5 cm


def test_units_are_converted(params):
    # 11.811 in = 30.0 cm; 49.2126 ft = 15.0 m -> the hand-worked Chave tree
    inv = inventory(species=["Quercus alba"], dbh_in=["11.811023622"], h_ft=["49.212598425"])
    t = A.tree_carbon(inv, params, columns=A.Columns(dbh="dbh_in", height="h_ft"), dbh_unit="in", height_unit="ft").iloc[0]
    assert t["dbh_cm"] == pytest.approx(30.0) and t["height_m"] == pytest.approx(15.0)
    assert t["agb_equation_kg"] == pytest.approx(439.2345, rel=1e-6)


def test_crown_area_and_carbon_per_crown_area(params):
    # crown diameter 8 m -> area π × 4² = 50.265 m²; C = 208.092 kg -> 4.1399 kg C/m²
    inv = inventory(species=["Quercus alba"], dbh_cm=[30], height_m=[15], crown=[8])
    t = A.tree_carbon(inv, params, columns=A.Columns(crown_diameter="crown")).iloc[0]
    assert t["crown_area_m2"] == pytest.approx(50.2655, rel=1e-5)
    assert t["carbon_kg_per_crown_m2"] == pytest.approx(208.0917 / 50.2655, rel=1e-5)


@given(rho=st.floats(0.2, 1.2), d=st.floats(5, 200), h=st.floats(2, 60), k=st.floats(1.01, 2.0))
def test_chave2014_increases_with_each_input(rho, d, h, k):
    base = A.chave2014_agb_kg(rho, d, h)
    assert A.chave2014_agb_kg(rho * k, d, h) > base
    assert A.chave2014_agb_kg(rho, d * k, h) > base
    assert A.chave2014_agb_kg(rho, d, h * k) > base


@given(d=st.floats(2.5, 250), k=st.floats(1.01, 2.0), group=st.sampled_from(sorted(A.JENKINS2003)))
def test_jenkins2003_increases_with_dbh(d, k, group):
    assert A.jenkins2003_agb_kg(d * k, group) > A.jenkins2003_agb_kg(d, group)


# ----------------------------------------------------------------------------- validation


def test_bad_values_are_listed_together_with_row_value_and_fix(params):
    inv = inventory(species=["Acer rubrum"] * 5, dbh_cm=["30", "abc", "-3", "", "20"], height_m=["12", "10", "10", "10", "0"])
    with pytest.raises(InputDataError) as exc:
        A.tree_carbon(inv, params, where="trees.csv")
    msg = str(exc.value)
    assert "trees.csv: 4 row(s) cannot be used" in msg
    assert "trees.csv row 2 (line 3): 'dbh_cm' must be a number > 0 (DBH in cm). Got 'abc'." in msg
    assert "trees.csv row 3 (line 4): 'dbh_cm' must be > 0" in msg and "Got '-3'" in msg
    assert "trees.csv row 4 (line 5)" in msg and "Got ''" in msg
    assert "trees.csv row 5 (line 6): 'height_m' must be > 0" in msg and "--na-values" in msg
    assert "row 1 " not in msg


def test_missing_height_stops_chave_with_the_fix(params):
    inv = inventory(species=["Acer rubrum", "Acer rubrum"], dbh_cm=["30", "25"], height_m=["12", "-1"])
    with pytest.raises(InputDataError) as exc:
        A.tree_carbon(inv, params, where="trees.csv", na_values=["-1"])
    msg = str(exc.value)
    assert "trees.csv row 2 (line 3): 'height_m' is missing (got '-1') and chave2014 needs the tree height." in msg
    assert "--missing-height jenkins2003" in msg and "--equation jenkins2003" in msg


def test_missing_height_can_fall_back_to_jenkins(params):
    inv = inventory(species=["Acer rubrum", "Acer rubrum"], dbh_cm=["30", "25"], height_m=["12", "-1"])
    trees = A.tree_carbon(inv, params, na_values=["-1"], missing_height="jenkins2003")
    assert list(trees["equation"]) == ["chave2014", "jenkins2003:soft_maple_birch"]
    assert trees["flags"].iloc[1] == "height_missing_jenkins2003"
    assert np.isnan(trees["height_m"].iloc[1])
    # soft maple/birch D = 25: AGB 299.07 kg (test_jenkins2003_hand_worked)
    assert trees["agb_equation_kg"].iloc[1] == pytest.approx(299.07, rel=1e-4)


def test_missing_columns_and_kg_m3_density_are_explained(params):
    with pytest.raises(InputDataError, match=r"column\(s\) not found: dbh='DBH'.*Columns in the file"):
        A.tree_carbon(inventory(species=["Acer rubrum"], dbh_cm=[30]), params, columns=A.Columns(dbh="DBH"))
    with pytest.raises(InputDataError, match="no trees"):
        A.tree_carbon(inventory(species=[], dbh_cm=[], height_m=[]), params)
    inv = inventory(species=["Acer rubrum"], dbh_cm=[30], height_m=[12], rho=["560"])
    with pytest.raises(InputDataError, match="looks like kg/m³: divide by 1000"):
        A.tree_carbon(inv, params, columns=A.Columns(wood_density="rho"))


def test_bad_options_are_refused(params):
    inv = inventory(species=["Acer rubrum"], dbh_cm=[30], height_m=[12])
    with pytest.raises(InputDataError, match=r"carbon fraction must be a number in \(0, 1\]. Got 1.5"):
        A.tree_carbon(inv, params, carbon_fraction=1.5)
    with pytest.raises(InputDataError, match="equation must be one of"):
        A.tree_carbon(inv, params, equation="brown1997")


def test_bad_parameter_table_is_refused(cfg):
    bad = {**cfg, "defaults": {**cfg["defaults"], "carbon_fraction": 47},
           "jenkins2003_groups": {**cfg["jenkins2003_groups"], "genus": {"Acer": "maple"}}}
    with pytest.raises(ConfigError) as exc:
        A.params_from_mapping(bad, where="my.yaml")
    assert "my.yaml: defaults.carbon_fraction" in str(exc.value) and "Got 47" in str(exc.value)
    assert "jenkins2003_groups.genus.acer" in str(exc.value) and "'maple'" in str(exc.value)


# ----------------------------------------------------------------------------- plots


def test_plot_sums_and_carbon_density():
    # plot A: 100 + 300 kg C on 400 m² = 0.04 ha -> 0.4 t / 0.04 ha = 10 t C/ha; plot B: 50 kg -> 1.25 t C/ha
    trees = pd.DataFrame({"plot_id": ["B", "A", "A"], "agb_kg": [80.0, 160.0, 480.0], "bgb_kg": [20.0, 40.0, 120.0],
                          "carbon_kg": [50.0, 100.0, 300.0], "co2e_kg": [50 * 44 / 12, 100 * 44 / 12, 300 * 44 / 12],
                          "flags": ["", "palm", ""]})
    plots = A.plot_carbon(trees, plot_area_m2=400)
    assert list(plots["plot_id"]) == ["A", "B"]
    assert list(plots["n_trees"]) == [2, 1] and list(plots["n_flagged"]) == [1, 0]
    assert plots["carbon_kg"].tolist() == [400.0, 50.0]
    assert plots["carbon_t_ha"].to_numpy() == pytest.approx([10.0, 1.25])
    assert plots["co2e_t_ha"].to_numpy() == pytest.approx([10.0 * 44 / 12, 1.25 * 44 / 12])
    assert "carbon_t_ha" not in A.plot_carbon(trees).columns  # no area: sums only


def test_plot_area_column_must_be_constant_within_a_plot(params):
    inv = inventory(plot=["p1", "p1", "p2"], area=["400", "400", "1000"], species=["Acer rubrum"] * 3, dbh_cm=[10, 20, 30], height_m=[8, 12, 15])
    trees = A.tree_carbon(inv, params, columns=A.Columns(plot="plot", plot_area="area"))
    plots = A.plot_carbon(trees)
    assert plots["carbon_t_ha"].to_numpy() == pytest.approx(
        [trees["carbon_kg"][:2].sum() / 1000 / 0.04, trees["carbon_kg"][2] / 1000 / 0.1])
    trees.loc[1, "plot_area_m2"] = 500.0
    with pytest.raises(InputDataError, match=r"plot area differs .*'p1'"):
        A.plot_carbon(trees)


# ----------------------------------------------------------------------------- command line


def write_inventory(tmp_path: Path, rows: str) -> Path:
    path = tmp_path / "inventory.csv"
    path.write_text("tree,plot,species,dbh_cm,height_m\n" + rows, encoding="utf-8")
    return path


def test_cli_allometry_writes_trees_and_plots(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    inv = write_inventory(tmp_path, "t1,P1,Quercus alba,30,15\nt2,P1,Fraxinus pennsylvanica,20,11\nt3,P2,Malus sp.,12,5\n")
    out, plots_out = tmp_path / "out" / "trees.csv", tmp_path / "out" / "plots.csv"
    code = main(["allometry", str(inv), "--out", str(out), "--plots-out", str(plots_out), "--plot-column", "plot",
                 "--plot-area-m2", "400", "--id-column", "tree"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "3 trees ->" in printed and "2 plots ->" in printed and "density_default 1" in printed
    trees = pd.read_csv(out)
    for col in ("tree_id", "plot_id", "dbh_cm", "height_m", "wood_density_g_cm3", "agb_kg", "bgb_kg",
                "carbon_kg", "co2e_kg", "equation", "flags"):
        assert col in trees.columns
    assert trees.loc[0, "carbon_kg"] == pytest.approx(208.0917, rel=1e-6)  # the hand-worked white oak
    plots = pd.read_csv(plots_out)
    assert plots.loc[0, "carbon_t_ha"] == pytest.approx(trees["carbon_kg"][:2].sum() / 1000 / 0.04)


def test_cli_allometry_options_reach_the_computation(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    inv = write_inventory(tmp_path, "t1,P1,Fraxinus americana,30,\n")
    out = tmp_path / "trees.csv"
    assert main(["allometry", str(inv), "--out", str(out), "--equation", "jenkins2003", "--carbon-fraction", "0.5",
                 "--root-shoot", "0.3", "--urban-factor", "1"]) == 0
    assert pd.read_csv(out).loc[0, "carbon_kg"] == pytest.approx(253.6844, rel=1e-6)


def test_cli_allometry_bad_input_exits_2_naming_file_row_and_value(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    inv = write_inventory(tmp_path, "t1,P1,Quercus alba,30,15\nt2,P1,Quercus alba,n/a,15\n")
    out = tmp_path / "trees.csv"
    assert main(["allometry", str(inv), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "inventory.csv row 2 (line 3): 'dbh_cm'" in err and "Got 'n/a'" in err
    assert not out.exists()
    assert main(["allometry", str(tmp_path / "nope.csv"), "--out", str(out)]) == 2
    assert "nope.csv" in capsys.readouterr().err


def test_cli_allometry_bad_params_file_exits_2_naming_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    inv = write_inventory(tmp_path, "t1,P1,Quercus alba,30,15\n")
    out = tmp_path / "trees.csv"
    params = tmp_path / "params.yaml"
    for text, expected in (("carbon_fraction: [0.47\n", "not valid YAML"), ("- 0.47\n", "must be a mapping")):
        params.write_text(text, encoding="utf-8")
        assert main(["allometry", str(inv), "--out", str(out), "--params", str(params)]) == 2
        err = capsys.readouterr().err
        assert f"{params}: " in err and expected in err and "config/allometry.yaml" in err
    assert not out.exists()


def test_cli_allometry_plots_out_needs_plot_column(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    inv = write_inventory(tmp_path, "t1,P1,Quercus alba,30,15\n")
    with pytest.raises(SystemExit) as exc:
        main(["allometry", str(inv), "--out", str(tmp_path / "t.csv"), "--plots-out", str(tmp_path / "p.csv")])
    assert exc.value.code == 2
    assert "--plots-out needs --plot-column" in capsys.readouterr().err


# ----------------------------------------------------------------------------- real data

# Published anchors (see docs/allometry.md):
NOWAK2013_KG_C_PER_M2_CANOPY = 7.69  # Nowak et al. 2013, Environ. Pollut. 178:229-236, US urban tree cover


@pytest.fixture(scope="module")
def utd() -> pd.DataFrame:
    if not UTD.exists():
        pytest.skip(f"USDA Urban Tree Database not found at {UTD} (shared data absent); real-data test skipped.")
    return pd.read_csv(UTD, dtype=str, keep_default_na=False)


UTD_COLUMNS = A.Columns(dbh="DBH (cm)", height="TreeHt (m)", species="ScientificName", crown_diameter="AvgCdia (m)",
                        tree_id="DbaseID", plot="City")


@pytest.mark.realdata
def test_urban_tree_database_is_plausible(utd, params):
    # The file records DBH in cm and height / crown diameter in m (header and PROVENANCE.md;
    # median DBH 37.6 cm, height 11 m); -1 marks a missing value.
    trees = A.tree_carbon(utd, params, columns=UTD_COLUMNS, na_values=["-1"], missing_height="jenkins2003")
    assert len(trees) == 14_487
    assert (trees["carbon_kg"] > 0).all() and np.isfinite(trees["carbon_kg"]).all()
    assert (trees["flags"].str.contains("height_missing_jenkins2003")).sum() == 48  # the 48 trees with height -1

    # Genus-based wood class agrees with the database's own TreeType (B broadleaf, C conifer,
    # P palm) for > 99 % of trees (the database types Celtis laevigata, a hardwood, as C).
    tree_type = utd["TreeType"].str[0].map({"B": "hardwood", "C": "softwood", "P": "palm"})
    assert (tree_type.to_numpy() == trees["wood_class"].to_numpy()).mean() > 0.99

    dicots = trees[trees["wood_class"] != "palm"]
    # Street-tree size, DBH 25-35 cm: median per-tree carbon of the order of a few hundred kg C
    # (Nowak's method - a forest equation × 0.8 + 26 % roots, × 0.5 C - gives 197 kg C for a
    # 30 cm mixed hardwood). Measured: 116 kg C (chave2014, heights median 10 m).
    mid = dicots[dicots["dbh_cm"].between(25, 35)]
    assert len(mid) > 1000
    assert 50 <= mid["carbon_kg"].median() <= 600
    # The DBH-only equation agrees within a factor of 2 on the same trees.
    jen = A.tree_carbon(utd, params, columns=UTD_COLUMNS, na_values=["-1"], equation="jenkins2003")
    ratio = jen.loc[mid.index, "carbon_kg"].median() / mid["carbon_kg"].median()
    assert 0.5 <= ratio <= 2.0

    # Carbon rises with DBH within a species: for every species with >= 50 trees, the median
    # carbon of consecutive DBH classes (>= 5 trees) increases, and the rank correlation is high.
    classes = pd.cut(dicots["dbh_cm"], [0, 15, 30, 45, 60, 90, 1000])
    steps, rhos = [], []
    for _, g in dicots.groupby(dicots["species"].str.strip()):
        if len(g) < 50:
            continue
        med = g.groupby(classes[g.index], observed=True)["carbon_kg"].agg(["median", "size"])
        steps += list(np.diff(med.loc[med["size"] >= 5, "median"].to_numpy()) > 0)
        rhos.append(g["dbh_cm"].corr(g["carbon_kg"], method="spearman"))
    assert len(rhos) >= 60 and np.mean(steps) >= 0.95 and min(rhos) >= 0.9

    # Carbon per m² of crown: median within a factor of 3 of Nowak et al. 2013's 7.69 kg C/m² of
    # canopy (measured 2.96), and the total over the total crown area (the statistic Nowak's
    # figure is) within a factor of 2 (measured 6.27).
    crowned = dicots[np.isfinite(dicots["carbon_kg_per_crown_m2"])]
    median = crowned["carbon_kg_per_crown_m2"].median()
    assert NOWAK2013_KG_C_PER_M2_CANOPY / 3 <= median <= NOWAK2013_KG_C_PER_M2_CANOPY * 3
    pooled = crowned["carbon_kg"].sum() / crowned["crown_area_m2"].sum()
    assert NOWAK2013_KG_C_PER_M2_CANOPY / 2 <= pooled <= NOWAK2013_KG_C_PER_M2_CANOPY * 2

    # Per-city sums (no plot area: sums only) cover every tree.
    cities = A.plot_carbon(trees)
    assert len(cities) == 17 and cities["n_trees"].sum() == len(trees)


def test_cli_allometry_reads_the_inventory_through_greensink_io(tmp_path, monkeypatch, capsys):
    # only greensink.io touches disk: the CLI reads the inventory with io.read_csv_as_text (cells as text,
    # BOM dropped, empty cells "" not NaN), and its errors name the file as before
    monkeypatch.chdir(ROOT)
    inv = tmp_path / "inventory.csv"
    inv.write_text("\ufefftree,plot,species,dbh_cm,height_m\nt1,P1,Quercus alba,30,15\nt2,P1,,20,11\n", encoding="utf-8")
    read = []
    real = gs_io.read_csv_as_text
    monkeypatch.setattr(gs_io, "read_csv_as_text", lambda path: read.append(str(path)) or real(path))
    out = tmp_path / "trees.csv"
    assert main(["allometry", str(inv), "--out", str(out), "--id-column", "tree"]) == 0
    assert read == [str(inv)]
    table = real(inv)
    assert list(table.columns) == ["tree", "plot", "species", "dbh_cm", "height_m"]  # no BOM in the first name
    assert table.loc[1, "species"] == "" and table.loc[0, "dbh_cm"] == "30"  # text, empty is "" not NaN
    assert pd.read_csv(out)["tree_id"].tolist() == ["t1", "t2"]
    empty, latin = tmp_path / "empty.csv", tmp_path / "latin.csv"
    empty.write_bytes(b"")
    latin.write_bytes("tree,dbh_cm,species\nt1,30,Pinus sylvestris \u00e9\n".encode("latin-1"))
    for bad in (empty, latin):
        assert main(["allometry", str(bad), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {bad}: cannot be read as a CSV table (")
        assert "Save it as UTF-8 CSV with a header row." in err
    with pytest.raises(InputDataError, match="empty.csv: cannot be read as a CSV table"):
        gs_io.read_csv_as_text(empty)
