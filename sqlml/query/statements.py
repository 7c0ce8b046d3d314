"""The statement registry: leading words -> handler, as a plain dict.

A handler is named ``"module:function"`` (or given as a callable, for plugins and tests)
and imported only when its statement runs,
so ``import sqlml`` stays light. It is called with a ``StatementContext`` and returns a
relation (shown to the user) or None. ``OR REPLACE`` after ``CREATE`` is not part of
the key; the handler reads it.
"""

from __future__ import annotations

STATEMENTS: dict[str, str] = {
    # weak supervision
    "CREATE LABELING FUNCTION": "sqlml.labeling.statements:create_labeling_function",
    "CREATE LABELING FUNCTIONS": "sqlml.labeling.statements:create_labeling_functions",
    "DROP LABELING FUNCTION": "sqlml.labeling.statements:drop_labeling_function",
    "APPLY LABELING FUNCTIONS": "sqlml.labeling.statements:apply_labeling_functions",
    "CREATE LABEL MODEL": "sqlml.labeling.statements:create_label_model",
    "DROP LABEL MODEL": "sqlml.labeling.statements:drop_label_model",
    # data validation
    "CREATE DATA SCHEMA": "sqlml.validation.statements:create_data_schema",
    "ALTER DATA SCHEMA": "sqlml.validation.statements:alter_data_schema",
    "DROP DATA SCHEMA": "sqlml.validation.statements:drop_data_schema",
    # training
    "CREATE MODEL": "sqlml.training.statements:create_model",
    "CREATE MODELS": "sqlml.training.large.grid:create_models",
    "DROP MODEL": "sqlml.training.statements:drop_model",
    # serving
    "EXPLAIN ML": "sqlml.optimizer.explain:explain_ml",
    # incremental inference / video
    "LOAD VIDEO": "sqlml.incremental.statements:load_video",
}

#: Statements that only read, and so run on read-only connections too.
READ_ONLY: frozenset[str] = frozenset({"EXPLAIN ML"})
