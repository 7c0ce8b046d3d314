"""What the rewritten statements run on: the optimizer's runtime.

The rules in ``sqlml.optimizer`` only rewrite SQL; the work they plan happens here.

    trained_models  ml_predict and co. as model functions: version tokens, batch scoring
    cache_store     the prediction cache table (sqlml.prediction_cache): fills, clear, stats
    bulk_stream     bulk inference: a statement's rows streamed through the model in batches
    multi_query     model calls shared by statements that run together (sql_many, scripts)
    shared_calls    the TEMP tables those shared calls are computed into
"""
