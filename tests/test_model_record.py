"""The typed record of a type's fitted model (greensink.model.TypeModel): models.json's type entries
are written from it and read back into it without a change of shape."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from greensink.errors import ModelError
from greensink.model import TypeModel, fallback_type_model, fit_models, type_record


def _plots() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for t, n in (("G1", 30), ("G2", 4)):
        ndvi = rng.uniform(0.2, 0.9, n)
        height = rng.uniform(1.0, 20.0, n)
        height[:3] = np.nan  # no canopy height model there: the NDVI-only companion serves them
        carbon = (5 + 40 * ndvi + np.nan_to_num(height)) * (1 + 0.1 * rng.standard_normal(n))
        rows += [{"plot_id": f"{t}-{i}", "type": t, "carbon_t_ha": carbon[i], "x_m": 400.0 * i, "y_m": 300.0 * (i % 5),
                  "ndvi": ndvi[i], "height": height[i]} for i in range(n)]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def models() -> dict:
    coef = pd.DataFrame({"type": ["G1", "G2"], "c_above": [20.0, 10.0], "c_below": [5.0, 2.0], "uncertainty_pct": [20, 30]})
    out = fit_models(_plots(), coef, types=["G1", "G2"], predictors=("ndvi", "height"), n_bootstrap=8, min_plots=8)
    return json.loads(json.dumps(out))  # as read back from models.json


def test_every_type_entry_reads_back_to_the_same_json(models):
    for code, entry in models["types"].items():
        assert TypeModel.from_json(entry).to_json() == entry, code


def test_the_record_types_the_entry(models):
    g1 = type_record(models, "G1")
    assert g1.source == "plots" and g1.predictors == ("ndvi", "height")
    assert g1.bootstrap.shape == (8, 3)  # 8 draws of a, b_ndvi, b_height
    assert g1.ndvi_only is not None and g1.ndvi_only.companion and g1.ndvi_only.predictors == ("ndvi",)
    assert "type" not in g1.to_json()["ndvi_only"] and "cv_folds" not in g1.to_json()["ndvi_only"]
    g2 = type_record(models, "G2")  # 4 plots: the table's density 10 + 2 t C/ha
    assert g2.source == "coefficients" and g2.form == "constant" and g2.params == {"c": 12.0}
    assert g2.fit is None and "fit" in g2.to_json()  # no meaning for a table model: written as null
    x = np.array([0.5, 0.7])
    assert np.array_equal(g2.predict(x), [12.0, 12.0])


def test_unknown_keys_are_kept_and_old_entries_read():
    entry = fallback_type_model("G1", 20.0, 10.0, 0, "no plots", n_bootstrap=3)
    entry.update(tier=2, tier_name="tier 2", pools={"c_soil": None, "c_dead": None})  # later annotations
    assert TypeModel.from_json(entry).to_json() == entry
    old = {k: v for k, v in entry.items() if k != "predictors"}  # written before predictors existed
    assert TypeModel.from_json(old).predictors == ("ndvi",)


def test_an_unknown_type_is_named():
    with pytest.raises(ModelError, match="type_code must be a type of the model. Got 'XX'"):
        type_record({"types": {"G1": {}}}, "XX")
