"""Where the feature areas plug into the core: the one module that names them all.

The core (the connection, the query front end, the optimizer) knows no feature area;
it keeps plain tables that this module fills when ``sqlml`` is imported. Only names
are written here: each area's module is imported when its statement first runs.

    STATEMENTS        statement key -> "module:function" handler (sqlml.query.statements)
    READ_ONLY         statements that run on read-only connections too
    MATERIALIZED_FUNCTIONS  table functions computed before the statement that calls them
    ERROR_EXPLAINERS  DuckDB catalog errors told in an area's terms (sqlml.errors)

The other tables fill themselves from their own folders: SQL functions from ``udfs/``
(``sqlml.udf.FUNCTIONS``), catalog tables and macros from ``sql/``, model functions and
optimizer rules in ``sqlml.optimizer``. A new statement goes in its area's
``statements.py`` and gets one line here.
"""

from __future__ import annotations

from sqlml.errors import ERROR_EXPLAINERS
from sqlml.query.statements import MATERIALIZED_FUNCTIONS, READ_ONLY, STATEMENTS

STATEMENTS.update(
    {
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
        "CREATE MODELS": "sqlml.training.statements:create_models",
        "DROP MODEL": "sqlml.training.statements:drop_model",
        # rollout and portability (serving)
        "ALTER MODEL": "sqlml.serving.statements:alter_model",
        "EXPORT MODEL": "sqlml.serving.statements:export_model",
        "IMPORT MODEL": "sqlml.serving.statements:import_model",
        # the optimizer
        "EXPLAIN ML": "sqlml.optimizer.statements:explain_ml",
        # incremental inference / video
        "LOAD VIDEO": "sqlml.incremental.statements:load_video",
    }
)
READ_ONLY.update({"EXPLAIN ML", "EXPORT MODEL"})
MATERIALIZED_FUNCTIONS["ml_label_model_predict"] = "sqlml.labeling.predict:materialize"

ERROR_EXPLAINERS.append("sqlml.labeling.explain:explain_missing_storage")
ERROR_EXPLAINERS.append("sqlml.validation.explain:explain_missing_version")
