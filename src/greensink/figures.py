"""Figures written next to the products (PNG, matplotlib's Agg backend, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from greensink.model import model_predictors, param_names, predict  # noqa: E402

_AXIS = {"ndvi": "NDVI", "fvc": "FVC (0–1)", "canopy": "tree-canopy fraction (0–1)", "height": "canopy height, m"}


def observed_vs_predicted(type_model: dict, x, y: np.ndarray, title: str, path: str | Path) -> None:
    """Two panels: plot carbon against the model's (first) predictor with the fitted curve and its 90 %
    band (for a one-predictor model; with several the predictions at the plots are drawn instead);
    observed vs predicted. ``x`` is the plots' NDVI (1-D) or a table with a column per predictor."""
    preds = model_predictors(type_model)
    cols = {"ndvi": np.asarray(x, dtype=float)} if not hasattr(x, "columns") else {
        c: np.asarray(x[c], dtype=float) for c in x.columns}
    lead = preds[0]
    xs = cols[lead] if lead in cols else cols["ndvi"]
    stack = np.stack([cols[q] for q in preds]) if all(q in cols for q in preds) else None
    if stack is not None:
        ok = np.all(np.isfinite(stack), axis=0)
        stack, xs, y = stack[:, ok], xs[ok], np.asarray(y)[ok]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 4), dpi=100)
    params = np.array([type_model["params"][k] for k in param_names(type_model["form"], preds)])
    boot = np.asarray(type_model["bootstrap"])
    label = f"{type_model['form']} on {'+'.join(preds)} ({type_model['source']})"
    layers = (lambda a: a[0]) if len(preds) == 1 else (lambda a: a)
    pred = np.maximum(predict(type_model["form"], params, layers(stack), preds), 0) if stack is not None and xs.size else xs
    if len(preds) == 1:
        lo_x = float(np.nanmin(xs)) if xs.size else 0.0
        hi_x = float(np.nanmax(xs)) if xs.size else 1.0
        grid = np.linspace(min(lo_x, 0.05), max(hi_x, 0.9), 200) if lead == "ndvi" else np.linspace(lo_x, hi_x, 200)
        curve = np.maximum(predict(type_model["form"], params, grid, preds), 0)
        band = np.quantile(np.maximum(predict(type_model["form"], boot, grid, preds), 0), [0.05, 0.95], axis=0)
        ax1.fill_between(grid, band[0], band[1], color="tab:green", alpha=0.2, label="90 % bootstrap band")
        ax1.plot(grid, curve, color="tab:green", label=label)
    elif xs.size:
        ax1.scatter(xs, pred, s=12, marker="x", color="tab:green", label=f"{label}, at the plots")
    ax1.scatter(xs, y, s=12, color="k", label=f"plots (n={xs.size})")
    ax1.set_xlabel(_AXIS.get(lead, lead))
    ax1.set_ylabel("carbon density, t C/ha")
    ax1.legend(fontsize=8)
    ax2.scatter(pred, y, s=12, color="k")
    top = float(max(np.nanmax(y) if y.size else 1, np.nanmax(pred) if pred.size else 1))
    ax2.plot([0, top], [0, top], color="grey", lw=1)
    cv = type_model.get("cv") or {}
    ax2.set_title(f"CV RMSE {cv.get('rmse_t_ha', float('nan')):.2f} t C/ha, R² {cv.get('r2') or float('nan'):.2f}", fontsize=9)
    ax2.set_xlabel("predicted, t C/ha")
    ax2.set_ylabel("observed, t C/ha")
    fig.suptitle(title)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
