"""The churn-risk model: a standardised logistic regression (scikit-learn), its backtest, and the
per-feature contributions that explain each probability.

Stored as plain numbers (feature names, fill values, scaler means and scales, coefficients,
intercept), never as a pickle: a model reads back the same in any version of the code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.metrics import brier_score_loss, roc_auc_score  # type: ignore[import-untyped]

C = 0.05  # L2 strength: correlated features (a health component and its raw measure) share the credit


@dataclass
class Fitted:
    features: list[str]
    fill: list[float]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float

    def params(self) -> dict[str, Any]:
        return {"fill": self.fill, "mean": self.mean, "scale": self.scale, "coef": self.coef,
                "intercept": self.intercept}

    @classmethod
    def from_params(cls, features: list[str], p: dict[str, Any]) -> Fitted:
        return cls(features=list(features), fill=list(p["fill"]), mean=list(p["mean"]), scale=list(p["scale"]),
                   coef=list(p["coef"]), intercept=float(p["intercept"]))

    def standardise(self, x: np.ndarray) -> np.ndarray:
        x = np.where(np.isnan(x), np.asarray(self.fill), x)
        out: np.ndarray = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        return out

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = self.standardise(x) @ np.asarray(self.coef) + self.intercept
        out: np.ndarray = 1.0 / (1.0 + np.exp(-z))
        return out

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Each feature's push on the log-odds of churn (positive raises the risk), per row."""
        out: np.ndarray = self.standardise(x) * np.asarray(self.coef)
        return out


def fit(x: np.ndarray, y: np.ndarray, features: list[str]) -> Fitted:
    """Fill unknowns with the training mean, standardise, fit."""
    with np.errstate(all="ignore"):
        fill = np.nanmean(x, axis=0)
    fill = np.where(np.isnan(fill), 0.0, fill)
    filled = np.where(np.isnan(x), fill, x)
    mean = filled.mean(axis=0)
    scale = filled.std(axis=0)
    scale = np.where(scale < 1e-9, 1.0, scale)
    lr = LogisticRegression(C=C, max_iter=2000)
    lr.fit((filled - mean) / scale, y)
    return Fitted(features=list(features), fill=[float(v) for v in fill], mean=[float(v) for v in mean],
                  scale=[float(v) for v in scale], coef=[float(v) for v in lr.coef_[0]],
                  intercept=float(lr.intercept_[0]))


def _round(x: float | None, n: int = 4) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), n)


def evaluate(y: np.ndarray, p: np.ndarray) -> dict[str, float | None]:
    """AUC (null when the test set holds only one class), Brier score, precision in the top decile."""
    if len(y) == 0:
        return {"auc": None, "brier": None, "precision_at_top_decile": None}
    auc = float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None
    k = max(1, math.ceil(len(y) / 10))
    top = np.argsort(-p, kind="stable")[:k]
    return {"auc": _round(auc), "brier": _round(float(brier_score_loss(y, np.clip(p, 0, 1)))),
            "precision_at_top_decile": _round(float(y[top].mean()))}


def band(probability: float, bands: dict[str, float]) -> str:
    if probability >= bands["high"]:
        return "high"
    return "medium" if probability >= bands["medium"] else "low"
