"""``ml_memory_estimate(query, options)``: the memory plan of a model before it trains.

    SELECT * FROM ml_memory_estimate('SELECT * FROM train',
        $$architecture := 'mlp', hidden := [4096, 4096], device_memory := '64MB', batch_size := 512$$);

``options`` is the ``WITH (...)`` list of a ``CREATE MODEL`` (without the parentheses).
The model is built exactly as training would build it, from the first rows of the query
(4,096 of them: enough for the input shape and a sample batch), cut into shards as the
spill strategy would cut it, and each shard's weights, gradients, optimizer state and
activations at ``batch_size`` are reported with a peak and a verdict.
"""

from __future__ import annotations

from sqlml.bounds import MAX_BYTES
from sqlml.errors import InvalidOptionError, TrainingError

SAMPLE_ROWS = 4096


def estimate_rows(session, query: str, options_text: str | None) -> list[dict]:
    import shutil

    import torch
    from torch import nn

    from sqlml.models.architectures import build
    from sqlml.query.parser import StatementParser
    from sqlml.sqlutil import relation_sql
    from sqlml.training.feed import Feed
    from sqlml.training.job import OptimizerSpec
    from sqlml.training.large.layers import sequential_layers
    from sqlml.training.large.memory import estimate
    from sqlml.training.large.options import spill_options
    from sqlml.training.large.partition import balance_plan
    from sqlml.training.large.spill import slots_needed
    from sqlml.training.large.strategy import rows_of, sample_batch, shard_plan
    from sqlml.training.options import settle
    from sqlml.training.staging import scratch_directory, stage

    given = StatementParser(f"({options_text or ''})").options()
    given.setdefault("strategy", "spill")
    if given["strategy"] != "spill":
        raise InvalidOptionError("ml_memory_estimate", "strategy", "estimates are for strategy 'spill' (the default here)")
    budget_given = given.get("device_memory") is not None
    if not budget_given:
        given["device_memory"] = MAX_BYTES  # no budget: one shard unless shards/boundaries say otherwise
    options = settle(given)
    opts = spill_options(options)
    sample_query = f"SELECT * FROM {relation_sql(query, argument='query', where='ml_memory_estimate')} LIMIT {SAMPLE_ROWS}"
    directory = scratch_directory(options)
    try:
        with session.cursor() as cur:
            training = stage(cur, sample_query, options, directory=directory)
        spec = training.spec
        torch.manual_seed(int(options["seed"]))
        module = build(options["architecture"], tuple(spec.input_shape), spec.target.n_outputs, options)
        optimizer = OptimizerSpec(options["optimizer"], options["lr"], options["weight_decay"], options["momentum"])
        feed = Feed(training, batch_size=min(int(options["batch_size"]), 64), shuffle=False, prefetch=0)
        sample = sample_batch(feed)
        layers = sequential_layers(module, what=f"architecture {options['architecture']!r}")
        capacity = opts["device_memory"] // slots_needed(opts["spill_prefetch"])
        try:
            plan = shard_plan(layers, opts, count_key="shards", optimizer=optimizer, sample=sample, capacity=capacity)
        except TrainingError:  # some layer alone is over the budget: show every layer, verdict "does not fit"
            plan = balance_plan(layers, len(layers))
        shards = [nn.Sequential(*layers[a:b]) for a, b in plan.ranges()]
        report = estimate(
            shards, optimizer, batch_size=int(options["batch_size"]), make_input=rows_of(sample),
            device_memory=opts["device_memory"] if budget_given else None,
            prefetch=opts["spill_prefetch"], checkpoint_activations=opts["checkpoint_activations"], names=plan.describe(),
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    verdict = report.verdict()
    return [dict(row, verdict=verdict) for row in report.rows()]
