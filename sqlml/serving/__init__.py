"""Serving: the online endpoint that answers HTTP/JSON requests with a model's predictions.

    predictor.py   what the endpoint serves, and request validation
    batcher.py     adaptive (AIMD) batching with a bounded queue
    requestlog.py  the endpoint's single writer: sqlml.serving_requests / _predictions
    server.py      the HTTP/JSON endpoint (aiohttp)
    log.py         the serving log read back as typed features, for skew checks
    cli.py         ``sqlml serve``

Scoring inside queries (ml_predict in SQL: the prediction cache, bulk inference,
multi-query sharing) is the optimizer's: ``sqlml.optimizer`` and its ``runtime``.
"""
