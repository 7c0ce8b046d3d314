"""Data validation: statistics, data schemas, anomalies, drift and skew, schema evolution.

Modules, from the data up:

* ``sources``: what can be validated (a table, a query, a file) and its columns;
* ``scan``: statistics in a few aggregate queries; ``statistics`` and ``sketch``: what they
  hold and how batches merge; ``store``: statistics in the catalog by dataset and span;
* ``inference``: a schema from statistics; ``schema``: versioned schemas in the catalog;
* ``validate`` and ``anomalies/``: one scan of a batch, then one detector per family;
  ``significance``: the tests behind every threshold; ``checks``: custom SQL checks;
* ``evolution``: ACCEPT, checks and settings as new versions; ``statements``: the SQL;
* ``api``: the Python interface other areas call (``api.validate``, ``api.assert_valid``).
"""
