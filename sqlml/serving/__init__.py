"""Serving: the online endpoint that answers HTTP/JSON requests with a model's predictions.

    predictor.py   what the endpoint serves, and request validation
    batcher.py     adaptive (AIMD) batching with a bounded queue
    source.py      where a server gets its models: the serving folder beside the database
    requestlog.py  the log writer thread (bounded: size cap, sampling, pending cap)
    segments.py    the log's Parquet segment files: one writer per server, merges, retention
    guard.py       connection cap, read timeout, body nesting
    statements.py  ALTER MODEL (aliases, traffic), EXPORT MODEL, IMPORT MODEL
    export.py      ONNX / TorchScript / safetensors export with the encoding, and import
    server.py      the HTTP/JSON endpoint (aiohttp)
    log.py         the serving log read back (segments and older log tables), for skew checks
    cli.py         ``sqlml serve``

Scoring inside queries (ml_predict in SQL: the prediction cache, bulk inference,
multi-query sharing) is the optimizer's: ``sqlml.optimizer`` and its ``runtime``.
"""
