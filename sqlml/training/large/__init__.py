"""Training models that outgrow one device: Hydra spilling, GPipe pipelining, many models at once.

Modules, each with one job:

- ``sizes``      byte sizes as users write them ('64MB') and as we print them
- ``layers``     a model as an ordered list of layers, cut into shards; byte layouts of shards
- ``partition``  where to cut: by parameter bytes, by measured time, at given boundaries, to a budget
- ``memory``     peak memory per shard for a batch size, and whether it fits
- ``optimizers`` per-shard optimizers (SGD, Adam, AdamW) whose state can move with the shard
- ``store``      where spilled shards live: host RAM (pinned under CUDA) or memory-mapped files
- ``arena``      the device-side slots and the ledger that proves the budget holds
- ``spill``      the Hydra trainer: one shard on the device at a time, recompute in backward
- ``engines``    the spill and pipeline engines the one epoch loop (``training.loop``) drives
- ``pipeline``   GPipe / 1F1B over local worker processes with torch.distributed.pipelining
                 (``pipeline_worker``: one stage; ``pipeline_messages``: what they say)
- ``scheduler``  the shard alternator: longest remaining work first, resident shard preferred
- ``grid``       CREATE MODELS: a hyper-parameter grid trained at once (``grid_worker``,
                 ``grid_transport``, ``grid_messages``: the workers and what they say)

Nothing here imports torch at module import time except the modules that train.
"""
