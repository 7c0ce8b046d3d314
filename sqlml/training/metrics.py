"""Metrics accumulated batch by batch: accuracy, macro F1, log-loss; RMSE, MAE, R².

Used for validation during training and by ``ml_evaluate``; streaming, so evaluation
sets of any size need no more memory than one batch and a confusion matrix.
"""

from __future__ import annotations

import math

import numpy as np

EPS = 1e-7


class Metrics:
    def __init__(self, task: str, n_classes: int = 0):
        self.task = task
        self.rows = 0
        self.loss_sum = 0.0  # weighted training loss (what early stopping watches)
        self.weight_sum = 0.0
        if task == "classification":
            self.confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
            self.log_loss_sum = 0.0
        else:
            self.abs_sum = self.sq_sum = self.y_sum = self.y_sq_sum = 0.0

    def update_classification(self, probs: np.ndarray, labels: np.ndarray) -> None:
        """``probs`` [n, k], ``labels`` [n] class indices."""
        n = len(labels)
        if n == 0:
            return
        predicted = probs.argmax(axis=1)
        np.add.at(self.confusion, (labels, predicted), 1)
        picked = probs[np.arange(n), labels].astype(np.float64)
        self.log_loss_sum += float(-np.log(np.clip(picked, EPS, 1.0)).sum())
        self.rows += n

    def update_regression(self, predicted: np.ndarray, actual: np.ndarray) -> None:
        predicted = predicted.astype(np.float64).reshape(-1)
        actual = actual.astype(np.float64).reshape(-1)
        diff = predicted - actual
        self.abs_sum += float(np.abs(diff).sum())
        self.sq_sum += float((diff * diff).sum())
        self.y_sum += float(actual.sum())
        self.y_sq_sum += float((actual * actual).sum())
        self.rows += len(actual)

    def add_loss(self, loss_sum: float, weight_sum: float) -> None:
        self.loss_sum += loss_sum
        self.weight_sum += weight_sum

    def result(self, prefix: str = "") -> dict[str, float]:
        out: dict[str, float] = {}
        if self.weight_sum:
            out["loss"] = self.loss_sum / self.weight_sum
        if self.rows == 0:
            return {prefix + k: v for k, v in out.items()}
        if self.task == "classification":
            c = self.confusion
            out["accuracy"] = float(np.trace(c) / c.sum())
            tp = np.diag(c).astype(np.float64)
            precision = np.divide(tp, c.sum(axis=0), out=np.zeros_like(tp), where=c.sum(axis=0) > 0)
            recall = np.divide(tp, c.sum(axis=1), out=np.zeros_like(tp), where=c.sum(axis=1) > 0)
            f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=(precision + recall) > 0)
            present = (c.sum(axis=1) + c.sum(axis=0)) > 0
            out["f1"] = float(f1[present].mean()) if present.any() else 0.0
            out["log_loss"] = self.log_loss_sum / self.rows
        else:
            out["rmse"] = math.sqrt(self.sq_sum / self.rows)
            out["mae"] = self.abs_sum / self.rows
            variance = self.y_sq_sum / self.rows - (self.y_sum / self.rows) ** 2
            out["r2"] = 1.0 - (self.sq_sum / self.rows) / variance if variance > 0 else float("nan")
        out["rows"] = float(self.rows)
        return {prefix + k: v for k, v in out.items()}
