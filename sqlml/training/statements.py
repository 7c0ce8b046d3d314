"""``CREATE [OR REPLACE] MODEL``, ``CREATE MODELS`` and ``DROP MODEL``.

    CREATE [OR REPLACE] MODEL [IF NOT EXISTS] name [WITH (option := value, ...)] AS query
    CREATE [OR REPLACE] MODEL name WITH (architecture := ..., weights := 'file.pt', input_shape := [...], ...)
    CREATE [OR REPLACE] MODELS name FOR (option IN (value, ...), ...) [WITH (...)] AS query
    DROP MODEL [IF EXISTS] name [VERSION n]

The first trains a model on the query's rows; the second imports pretrained weights
into the registry; both add a version. Each runs in the statement's transaction, so a
failure leaves no model behind (checkpoints and run rows, written on a side connection,
stay so that the same statement can resume). ``CREATE MODELS`` trains a grid
(``training/large/grid.py``).
"""

from __future__ import annotations

import json

from sqlml.models import registry


def create_model(ctx):
    p = ctx.parser()
    p.expect("CREATE")
    replace = p.accept("OR", "REPLACE")
    p.expect("MODEL")
    if_not_exists = p.accept("IF", "NOT", "EXISTS")
    if replace and if_not_exists:
        p.error("use either OR REPLACE or IF NOT EXISTS, not both")
    if p.at("WITH") or p.at("AS"):
        p.error("expected a model name")
    name = p.identifier("a model name")
    options = p.options() if p.accept("WITH") else {}
    query = None
    if p.accept("AS"):
        query = p.rest("a query after AS")
    p.end()
    duck = ctx.duck
    if if_not_exists and registry.latest_version(duck, name) is not None:
        return None
    if query is None:
        if "weights" not in options:
            p.error("expected AS followed by the training query (or WITH (weights := 'file.pt', ...) to import weights)")
        from sqlml.training.runner import import_weights

        record = import_weights(duck, name, options, replace=replace)
        return _summary(ctx, record, epochs=0, train_loss=None)
    from sqlml.training.runner import train_and_register

    record, result = train_and_register(duck, name, options, query, replace=replace)
    return _summary(ctx, record, epochs=result.epochs_run, train_loss=result.history[-1].train_loss)


def create_models(ctx):
    from sqlml.training.large.grid import parse_grid, train_grid

    p = ctx.parser()
    p.expect("CREATE")
    replace = p.accept("OR", "REPLACE")
    p.expect("MODELS")
    if p.at("FOR"):
        p.error("expected a name for the grid")
    name = p.identifier("a name for the grid")
    p.expect("FOR")
    grid = parse_grid(p)
    options = p.options() if p.accept("WITH") else {}
    p.expect("AS")
    query = p.rest("a training query after AS")
    return train_grid(ctx, name, grid, options, query, replace=replace)


def drop_model(ctx):
    p = ctx.parser()
    p.expect("DROP", "MODEL")
    if_exists = p.accept("IF", "EXISTS")
    name = p.identifier("a model name")
    version = None
    if p.accept("VERSION"):
        tok = p.current
        if tok is None or tok.kind != "number" or not tok.text.isdigit():
            p.error("expected a version number")
        p.pos += 1
        version = int(tok.text)
    p.end()
    registry.drop_model(ctx.duck, name, version, missing_ok=if_exists)
    return None


def _summary(ctx, record: registry.ModelRecord, *, epochs: int, train_loss: float | None):
    import pyarrow as pa

    validation = {k: v for k, v in record.metrics.items() if k.startswith("val_")}
    table = pa.table(
        {
            "model": [record.name],
            "version": pa.array([record.version], pa.int32()),
            "architecture": [record.architecture],
            "task": [record.task],
            "status": [record.status],
            "epochs": pa.array([epochs], pa.int32()),
            "rows": pa.array([record.metrics.get("rows")], pa.int64()),
            "train_loss": pa.array([train_loss], pa.float64()),
            "validation": [json.dumps(validation) if validation else None],
        }
    )
    return ctx.connection.wrap(ctx.duck.from_arrow(table))
