"""What sqlml knows, as tables and pictures for notebooks and the HTML report.

    from sqlml import views
    views.lf_summary(con, "flight_facts", gold="expert_label")   # coverage, overlap, conflict, accuracies
    views.label_confidence(con, "delay_labels")                    # the label model's confidence
    views.statistics(con, df, schema="flights_schema")             # per-column histograms with bounds
    views.anomalies(con, "new_batch", "flights_schema")            # ml_validate, with the columns' pictures
    views.drift(con, "new_batch", "flights")                       # reference vs current, test statistic
    views.model_card(con, "delay")                                 # the model's record and its curves
    views.grid(con, "delay_grid")                                  # every configuration's curves
    views.serving(con)                                             # latency and request size over time
    views.occlusion(con, "cnn", "images")                          # occlusion maps with a colour scale

Each returns a ``View`` (``rows``, ``df()``, ``figure()``, ``save_png(path)``), which a
notebook shows as an HTML table with the picture inline. A source may be a table or view
name, a query, or a DataFrame/Arrow object itself. Pictures need ``sqlml[plot]``.
"""

from sqlml.views.base import View
from sqlml.views.data import anomalies, drift, latest_validation, statistics, stored_statistics
from sqlml.views.labels import label_confidence, lf_summary
from sqlml.views.models import grid, model_card, occlusion, serving

__all__ = [
    "View",
    "anomalies",
    "drift",
    "grid",
    "label_confidence",
    "latest_validation",
    "lf_summary",
    "model_card",
    "occlusion",
    "serving",
    "statistics",
    "stored_statistics",
]
