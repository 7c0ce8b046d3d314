"""Model views: a model's card with its training curves, a grid's configurations, serving, occlusion maps."""

from __future__ import annotations

import json
from typing import Any

from sqlml import plots
from sqlml.views.base import View, function_exists, literal, read, table_html


def _runs(con, model: str) -> list[dict[str, Any]]:
    rows = read(con, f"SELECT * FROM ml_training_runs({literal(model)})")
    if rows:  # the latest version's run only
        latest = max(r["version"] for r in rows)
        rows = [r for r in rows if r["version"] == latest]
    for row in rows:
        if isinstance(row.get("metrics"), str):
            row["metrics"] = json.loads(row["metrics"])
    return rows


class ModelCard(View):
    """A model's record (``ml_models``) and its training curves (``ml_training_runs``)."""

    def __init__(self, record, runs, title):
        super().__init__([record] if record else [], title)
        self.record = record
        self.runs = runs

    def figure(self):
        return plots.training_curves(self.runs, title=self.record.get("name", "model") if self.record else "model")

    def table_html(self, max_rows: int = 30) -> str:
        if not self.record:
            return '<p class="sqlml-empty">(no such model)</p>'
        pairs = [{"property": k, "value": v} for k, v in self.record.items()]
        epochs = [{k: r.get(k) for k in ("epoch", "train_loss", "val_loss", "rows", "seconds")} for r in self.runs]
        return table_html(pairs) + (table_html(epochs, max_rows=max_rows) if epochs else "")


class Grid(View):
    """The models of a CREATE MODELS grid (``ml_model_grid``), best first, with every configuration's curves."""

    columns_shown = ("model", "version", "params", "metric", "value", "best")

    def __init__(self, rows, runs, title):
        super().__init__(rows, title)
        self.runs = runs

    def figure(self):
        return plots.training_curves(self.runs, title=self.title)


class Serving(View):
    """The online endpoint's requests: latency and rows per request over time."""

    columns_shown = ("at", "model", "status", "batch_size", "latency_ms")

    def figure(self):
        return plots.serving(self.rows, title=self.title)

    def table_html(self, max_rows: int = 10) -> str:
        return super().table_html(max_rows)


class Occlusion(View):
    """``ml_occlusion_map`` results: the first image's heat map over the image, with its colour scale."""

    columns_shown = ("key", "target_label", "base_score", "max_drop", "rows", "cols", "mode", "seconds")

    def __init__(self, rows, image, title):
        super().__init__(rows, title)
        self.image = image

    def figure(self):
        if not self.rows:
            return plots._empty(self.title, "no images")
        row = self.rows[0]
        heat = [row["heatmap"][i * row["cols"] : (i + 1) * row["cols"]] for i in range(row["rows"])]
        return plots.occlusion(heat, self.image, title=f"{row['key']}: {row.get('target_label') or row['target']}")


def model_card(con, model: str) -> ModelCard:
    """The latest version of ``model``: its record and its curves per epoch."""
    records = read(con, f"SELECT * FROM ml_models(name := {literal(model)})")
    record = next((r for r in records if r.get("latest")), records[0] if records else None)
    if record and isinstance(record.get("metrics"), str):
        record["metrics"] = json.loads(record["metrics"])
    return ModelCard(record or {}, _runs(con, model), f"model {model}")


def grid(con, name: str) -> Grid:
    """The models of grid ``name`` with their parameters and metric, and every model's curves."""
    rows = read(con, f"SELECT * FROM ml_model_grid({literal(name)})")
    runs = []
    for row in rows:  # each configuration's curves, named by its parameters
        params = json.loads(row["params"]) if isinstance(row.get("params"), str) else row.get("params") or {}
        label = ", ".join(f"{k}={v}" for k, v in params.items()) or row["model"]
        runs += [{**run, "model": label} for run in _runs(con, row["model"])]
    return Grid(rows, runs, f"grid {name}")


def serving(con, model: str | None = None) -> Serving:
    """Latency and rows per request over time, from the endpoint's request log."""
    if function_exists(con, "ml_serving_requests"):  # the log read back from wherever servers write it
        source = f"ml_serving_requests(model := {literal(model)})"
    else:
        source = f"sqlml.serving_requests WHERE {literal(model)} IS NULL OR model = {literal(model)}"
    rows = read(con, f"SELECT received_at AS at, model, status, rows AS batch_size, latency_ms FROM {source} ORDER BY received_at")
    return Serving(rows, f"serving {model}" if model else "serving")


def occlusion(con, model: str, images: str, **options) -> Occlusion:
    """``ml_occlusion_map(model, images, ...)`` with each map's colour scale."""
    named = "".join(f", {key} := {literal(value)}" for key, value in options.items())
    rows = read(con, f"SELECT * FROM ml_occlusion_map({literal(model)}, {literal(images)}{named})")
    return Occlusion(rows, _first_image(con, images), f"occlusion maps of {model}")


def _first_image(con, images: str):
    """The first image's pixels (H, W, C uint8) under its map, or None."""
    import numpy as np

    from sqlml.sqlutil import relation_sql

    order = ""
    columns = con.sql(f"SELECT * FROM {relation_sql(images)} LIMIT 0").columns
    if "frame" in columns:  # the order ml_occlusion_map reads them in
        order = " ORDER BY " + ", ".join(c for c in ("video", "frame") if c in columns)
    found = read(con, f"SELECT image, height, width, channels FROM {relation_sql(images)}{order} LIMIT 1")
    if not found:
        return None
    row = found[0]
    return np.frombuffer(row["image"], np.uint8).reshape(row["height"], row["width"], row["channels"])
