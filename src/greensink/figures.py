"""Figures written next to the products (PNG, matplotlib's Agg backend, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from greensink.model import predict  # noqa: E402


def observed_vs_predicted(type_model: dict, x: np.ndarray, y: np.ndarray, title: str, path: str | Path) -> None:
    """Two panels: plot carbon against NDVI with the fitted curve and its 90 % band; observed vs predicted."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 4), dpi=100)
    params = np.array(list(type_model["params"].values()))
    boot = np.asarray(type_model["bootstrap"])
    lo_x = float(np.nanmin(x)) if x.size else 0.0
    hi_x = float(np.nanmax(x)) if x.size else 1.0
    grid = np.linspace(min(lo_x, 0.05), max(hi_x, 0.9), 200)
    curve = np.maximum(predict(type_model["form"], params, grid), 0)
    band = np.quantile(np.maximum(predict(type_model["form"], boot, grid), 0), [0.05, 0.95], axis=0)
    ax1.fill_between(grid, band[0], band[1], color="tab:green", alpha=0.2, label="90 % bootstrap band")
    ax1.plot(grid, curve, color="tab:green", label=f"{type_model['form']} ({type_model['source']})")
    ax1.scatter(x, y, s=12, color="k", label=f"plots (n={x.size})")
    ax1.set_xlabel("NDVI")
    ax1.set_ylabel("carbon density, t C/ha")
    ax1.legend(fontsize=8)
    pred = np.maximum(predict(type_model["form"], params, x), 0) if x.size else x
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
