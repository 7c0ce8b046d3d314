"""Serving: running models for queries and for clients.

    models.py      trained models as the optimizer sees them: version tokens, batch scoring
    cache.py       the prediction cache (sqlml.prediction_cache) and its fills
    bulk.py        bulk batch inference: statements read rows streamed through the model
    mqo.py         multi-query optimization: Connection.sql_many and scripts
    predictor.py   what the endpoint serves, and request validation
    batcher.py     adaptive (AIMD) batching with a bounded queue
    requestlog.py  the endpoint's single writer: sqlml.serving_requests / _predictions
    server.py      the HTTP/JSON endpoint (aiohttp)
    log.py         the serving log read back as typed features, for skew checks
    cli.py         ``sqlml serve``

The rewrite rules that use these live in ``sqlml.optimizer``.
"""
