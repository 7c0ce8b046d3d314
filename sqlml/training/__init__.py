"""Training PyTorch models from SQL: CREATE MODEL and the DuckDB feed.

How a ``CREATE MODEL`` runs, module by module:

    statements    parses CREATE / DROP MODEL
    runner        the pipeline: settle options, stage, build the job, train, register
    options       every option, its default and its check
    staging       the query streamed once into a memory-mapped Arrow file, with statistics
    feed          block-shuffled, prefetched, deterministic batches from the staged file
    job           TrainJob / TrainResult (the strategy contract), optimizer and loss
    strategies    STRATEGIES: name -> "module:function"
    single, ddp   the 'single' and 'data_parallel' strategies (ddp_worker: one DDP rank)
    loop          the epoch loop strategies share
    checkpoints   checkpoints and per-epoch run rows, committed on a side connection
    evaluate      ml_evaluate; metrics: streaming accuracy / F1 / log-loss / RMSE
    gate          the validate := 'schema' check

The feature spec, the architectures and the registry the trained model lands in live in
``sqlml.models``.
"""
