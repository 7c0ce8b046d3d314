"""Pictures of sqlml's results, drawn with matplotlib (``pip install 'sqlml[plot]'``).

Each function takes plain rows (dicts, as ``sqlml.views`` reads them from SQL) and
returns a ``matplotlib.figure.Figure``. Figures are made without pyplot on the Agg
canvas, so drawing never needs a display and never changes a notebook's backend;
``png``, ``svg`` and ``save`` turn one into bytes, text or a file.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Sequence
from typing import Any

Rows = Sequence[dict[str, Any]]
COLORS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C")


def _figure(width: float, height: float, layout: Any = "constrained"):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        from sqlml.errors import SqlmlError

        raise SqlmlError("pictures need matplotlib: pip install 'sqlml[plot]'") from error
    figure = Figure(figsize=(width, height), dpi=80, layout=layout)
    FigureCanvasAgg(figure)
    return figure


def _plain_text(draw):
    """Draw (and render: tick labels are made then) with every text taken literally: names
    and values may hold ``$``, which matplotlib would otherwise read as mathematics."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        try:
            import matplotlib
        except ImportError:
            return draw(*args, **kwargs)  # _figure says what to install
        with matplotlib.rc_context({"text.parse_math": False}):
            return draw(*args, **kwargs)

    return wrapper


def short(text: Any, limit: int = 80) -> str:
    """``text`` on one line, at most ``limit`` characters (a long query in a title)."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


@_plain_text
def png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


@_plain_text
def svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # inline: no XML declaration or doctype


@_plain_text
def save(figure, path: str) -> str:
    """Write a PNG (or SVG, by the file's suffix); returns the path."""
    figure.savefig(path, format="svg" if str(path).lower().endswith(".svg") else "png")
    return str(path)


def _grid(count: int, columns: int = 4, cell: tuple[float, float] = (3.4, 2.5)):
    """Small multiples; laid out by fixed margins (constrained layout costs seconds per dozen panels)."""
    columns = max(1, min(columns, count))
    rows = max(1, math.ceil(count / columns))
    height = cell[1] * rows + 0.8
    figure = _figure(cell[0] * columns, height, layout=None)
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.5 / height, top=1 - 1.0 / height, wspace=0.4, hspace=0.95)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for extra in axes[count:]:
        extra.set_visible(False)
    return figure, axes[:count]


@_plain_text
def _empty(title: str, message: str):
    figure = _figure(5, 1.2)
    axis = figure.add_subplot()
    axis.axis("off")
    axis.text(0.5, 0.5, message, ha="center", va="center", color="#666")
    axis.set_title(title)
    return figure


# -- weak supervision ------------------------------------------------------------------------


@_plain_text
def lf_summary(rows: Rows, title: str = "labeling functions"):
    """Coverage, overlap and conflict per labeling function; learned vs empirical accuracy."""
    if not rows:
        return _empty(title, "no labeling functions")
    names = [str(r["lf"]) for r in rows]
    accuracy = [r for r in rows if r.get("learned_accuracy") is not None and r.get("emp_accuracy") is not None]
    figure = _figure(10, 0.45 * len(rows) + 1.4)
    left, right = figure.subplots(1, 2, width_ratios=[3, 2]) if accuracy else (figure.add_subplot(), None)
    positions = list(range(len(rows)))
    height = 0.27
    for offset, (key, color) in enumerate(zip(("coverage", "overlap", "conflict"), COLORS, strict=False)):
        left.barh([p + (offset - 1) * height for p in positions], [float(r.get(key) or 0) for r in rows], height, label=key, color=color)
    left.set_yticks(positions, names)
    left.invert_yaxis()
    left.set_xlim(0, 1)
    left.set_xlabel("fraction of rows")
    left.legend(loc="lower right", fontsize="small")
    left.set_title(title)
    if right is not None:
        for r in accuracy:
            x, y = r["emp_accuracy"], r["learned_accuracy"]
            right.scatter([x], [y], color=COLORS[0])
            right.annotate(str(r["lf"]), (x, y), fontsize="x-small", xytext=(3, 3), textcoords="offset points")
        right.plot([0, 1], [0, 1], color="#999", linestyle="--", linewidth=1)
        right.set_xlim(0, 1.02)
        right.set_ylim(0, 1.02)
        right.set_xlabel("empirical accuracy (gold rows)")
        right.set_ylabel("learned accuracy (label model)")
        right.set_title("learned vs empirical")
    return figure


@_plain_text
def confidence_histogram(rows: Rows, title: str = "label model confidence"):
    """Histograms of the label model's confidence (the top class's probability), one colour per label."""
    if not rows:
        return _empty(title, "no labels")
    figure = _figure(6, 3)
    axis = figure.add_subplot()
    labels = sorted({str(r["label"]) for r in rows})
    values = [[float(r["confidence"]) for r in rows if str(r["label"]) == label and r["confidence"] is not None] for label in labels]
    axis.hist(values, bins=20, range=(0, 1), stacked=True, label=labels, color=COLORS[: len(labels)])
    axis.set_xlabel("confidence")
    axis.set_ylabel("rows")
    axis.legend(title="label", fontsize="small")
    axis.set_title(title)
    return figure


# -- data validation -------------------------------------------------------------------------


@_plain_text
def column_statistics(columns: Rows, schema: dict[str, dict[str, Any]] | None = None, title: str = "", max_columns: int = 12):
    """One panel per column: a histogram (numeric) or top values (strings), with the schema's bounds and domain.

    ``columns``: rows of ``ml_statistics``; ``schema``: rows of ``ml_schema`` by column name.
    At most ``max_columns`` panels (the first ones).
    """
    if not columns:
        return _empty(title or "statistics", "no columns")
    schema = schema or {}
    columns = list(columns)[:max_columns]
    figure, axes = _grid(len(columns))
    for axis, column in zip(axes, columns, strict=True):
        name = column["column_name"]
        spec = schema.get(name, {})
        histogram = column.get("equal_width_histogram") or []
        if histogram:
            _histogram(axis, histogram, COLORS[0], "data")
            low, high = _bounds(spec)
            for bound, side in ((low, "min"), (high, "max")):
                if bound is not None:
                    axis.axvline(bound, color=COLORS[3], linestyle="--", linewidth=1.2, label=f"schema {side}")
            if low is not None or high is not None:
                axis.legend(fontsize="xx-small")
        elif column.get("top_values"):
            domain = set(spec.get("domain") or [])
            top = column["top_values"][:12]
            colors = [COLORS[0] if not domain or v["value"] in domain else COLORS[3] for v in top]
            axis.barh([str(v["value"])[:18] for v in top], [v["count"] for v in top], color=colors)
            axis.invert_yaxis()
            axis.tick_params(axis="y", labelsize="x-small")
            if domain:
                axis.set_xlabel("red: outside the schema's domain", fontsize="x-small")
        else:
            axis.text(0.5, 0.5, f"{column.get('kind', '')}\nno histogram", ha="center", va="center", transform=axis.transAxes)
        missing = column.get("missing_fraction") or 0.0
        axis.set_title(f"{name}  (missing {missing:.1%})", fontsize="small")
        axis.tick_params(labelsize="x-small")
    if title:
        figure.suptitle(title)
    return figure


def _bounds(spec: dict[str, Any]) -> tuple[Any, Any]:
    low = spec.get("valid_min", spec.get("min_value"))
    high = spec.get("valid_max", spec.get("max_value"))
    return (low if isinstance(low, (int, float)) else None), (high if isinstance(high, (int, float)) else None)


def _histogram(axis, buckets, color, label, density: bool = False) -> None:
    lows = [float(b["low"]) for b in buckets]
    highs = [float(b["high"]) for b in buckets]
    counts = [float(b["count"]) for b in buckets]
    if density:
        total = sum(counts) or 1.0
        counts = [c / total / (h - lo) if h > lo else c / total for c, lo, h in zip(counts, lows, highs, strict=True)]
    span = (max(highs) - min(lows)) if lows else 0.0
    if span <= 0:  # one value: a bar of unit width around it
        axis.bar([lows[0]], [sum(counts)], width=1.0, color=color, alpha=0.55 if density else 0.9, label=label)
        return
    widths = [max(h - lo, span / 200) for lo, h in zip(lows, highs, strict=True)]
    axis.bar(lows, counts, width=widths, align="edge", color=color, alpha=0.55 if density else 0.9, label=label, edgecolor="none")


@_plain_text
def drift(columns: Rows, title: str = "drift: reference vs current"):
    """Per column the reference and current distributions over each other, titled with the test statistic.

    ``columns``: dicts with ``column_name``, ``reference`` and ``current`` (rows of
    ``ml_statistics``) and ``measurements`` (rows of ``ml_drift`` for that column).
    """
    if not columns:
        return _empty(title, "no columns to compare")
    figure, axes = _grid(len(columns))
    for axis, column in zip(axes, columns, strict=True):
        reference, current = column["reference"], column["current"]
        if reference.get("equal_width_histogram") and current.get("equal_width_histogram"):
            _histogram(axis, reference["equal_width_histogram"], COLORS[0], "reference", density=True)
            _histogram(axis, current["equal_width_histogram"], COLORS[1], "current", density=True)
        else:
            ref = _shares(reference.get("top_values"))
            cur = _shares(current.get("top_values"))
            values = sorted(set(ref) | set(cur), key=lambda v: -(ref.get(v, 0) + cur.get(v, 0)))[:10]
            positions = range(len(values))
            axis.barh([p - 0.2 for p in positions], [ref.get(v, 0) for v in values], 0.4, color=COLORS[0], label="reference")
            axis.barh([p + 0.2 for p in positions], [cur.get(v, 0) for v in values], 0.4, color=COLORS[1], label="current")
            axis.set_yticks(list(positions), [str(v)[:16] for v in values])
            axis.invert_yaxis()
        axis.legend(fontsize="xx-small")
        axis.set_title(f"{column['column_name']}\n{_statistic(column.get('measurements') or [])}", fontsize="small")
        axis.tick_params(labelsize="x-small")
    figure.suptitle(title)
    return figure


def _shares(top) -> dict[str, float]:
    top = top or []
    total = sum(v["count"] for v in top) or 1
    return {str(v["value"]): v["count"] / total for v in top}


def _statistic(measurements: Rows) -> str:
    best = [m for m in measurements if m.get("metric") in ("jensen_shannon", "jsd", "l_infinity", "linf")] or list(measurements)
    if not best:
        return "no drift statistic"
    m = max(best, key=lambda m: (bool(m.get("is_anomaly")), m.get("value") or 0))
    flag = "DRIFT " if m.get("is_anomaly") else ""
    threshold = f" (threshold {m['threshold']:.3g})" if m.get("threshold") is not None else ""
    return f"{flag}{m['metric']} = {m['value']:.3g}{threshold}"


# -- training --------------------------------------------------------------------------------


@_plain_text
def training_curves(runs: Rows, title: str = "training"):
    """Loss per epoch (train and validation) and the validation metrics, one line per model.

    ``runs``: rows of ``ml_training_runs`` (model, epoch, train_loss, val_loss, metrics as
    a dict) for one model or for every model of a grid.
    """
    if not runs:
        return _empty(title, "no training epochs recorded")
    models = list(dict.fromkeys(str(r["model"]) for r in runs))
    skip = ("loss", "rows", "seconds", "count", "epoch")
    metric_names = sorted(
        {
            k
            for r in runs
            for k, v in (r.get("metrics") or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and not any(w in k for w in skip)
        }
    )
    figure = _figure(10, 3.4)
    loss_axis, metric_axis = figure.subplots(1, 2)
    for i, model in enumerate(models):
        color = COLORS[i % len(COLORS)]
        mine = sorted((r for r in runs if str(r["model"]) == model), key=lambda r: r["epoch"])
        epochs = [r["epoch"] for r in mine]
        loss_axis.plot(epochs, [r.get("train_loss") for r in mine], color=color, marker="o", markersize=3, label=f"{model} train")
        if any(r.get("val_loss") is not None for r in mine):
            loss_axis.plot(epochs, [r.get("val_loss") for r in mine], color=color, linestyle="--", label=f"{model} validation")
        for j, metric in enumerate(metric_names[:3]):
            values = [(r.get("metrics") or {}).get(metric) for r in mine]
            metric_axis.plot(epochs, values, color=color, linestyle=("-", "--", ":")[j], label=f"{model} {metric}")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("loss")
    loss_axis.set_title(f"{title}: loss")
    loss_axis.legend(fontsize="xx-small")
    metric_axis.set_xlabel("epoch")
    metric_axis.set_title(f"{title}: validation metrics")
    if metric_names:
        metric_axis.legend(fontsize="xx-small")
    else:
        metric_axis.text(0.5, 0.5, "no validation metrics\n(train WITH (validation_split := 0.2))", ha="center", va="center",
                         transform=metric_axis.transAxes, color="#666")  # fmt: skip
    from matplotlib.ticker import MaxNLocator

    for axis in (loss_axis, metric_axis):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    return figure


# -- serving ---------------------------------------------------------------------------------


@_plain_text
def serving(rows: Rows, title: str = "serving"):
    """Latency and batch size over time, from the request log (``at``, ``latency_ms``, ``batch_size``)."""
    if not rows:
        return _empty(title, "no requests logged")
    rows = sorted(rows, key=lambda r: r["at"])
    times = [r["at"] for r in rows]
    figure = _figure(10, 3.4)
    latency_axis, batch_axis = figure.subplots(1, 2, sharex=True)
    latency_axis.plot(times, [r.get("latency_ms") for r in rows], marker=".", linestyle="none", color=COLORS[0])
    latency_axis.set_ylabel("latency (ms)")
    latency_axis.set_title(f"{title}: latency")
    batch_axis.plot(times, [r.get("batch_size") for r in rows], marker=".", linestyle="-", color=COLORS[1])
    batch_axis.set_ylabel("batch size")
    batch_axis.set_title(f"{title}: batch size")
    for axis in (latency_axis, batch_axis):
        axis.tick_params(axis="x", labelrotation=30, labelsize="x-small")
    return figure


# -- video -----------------------------------------------------------------------------------


@_plain_text
def occlusion(heatmap, image=None, title: str = "occlusion map"):
    """The score drop per occluded patch over the image, with a colour scale."""
    import numpy as np

    heat = np.asarray(heatmap, dtype=float)
    figure = _figure(5, 4)
    axis = figure.add_subplot()
    extent = None
    if image is not None:
        picture = np.asarray(image)
        axis.imshow(picture)
        extent = (0, picture.shape[1], picture.shape[0], 0)
    shown = axis.imshow(heat, cmap="inferno", alpha=0.55 if image is not None else 1.0, extent=extent, interpolation="bilinear")
    figure.colorbar(shown, ax=axis, label="drop in the target's score")
    axis.set_title(title)
    axis.axis("off")
    return figure
