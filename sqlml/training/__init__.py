"""Training PyTorch models from SQL: CREATE MODEL and the DuckDB feed.

How a ``CREATE MODEL`` runs, module by module:

    statements    parses CREATE / DROP MODEL
    runner        the pipeline: settle options, stage, build the job, train, register
    options       every option, its default and its check
    staging       the query streamed once into a memory-mapped Arrow file, with statistics
    feed          block-shuffled, prefetched, deterministic batches from the staged file
    job           TrainJob (one typed job, statement to loop to workers), TrainResult, optimizer, loss
    strategies    STRATEGIES: name -> "module:function"
    loop          the one epoch loop every strategy trains with (EpochLoop), evaluation
    engine        how a batch trains: the engine interface, the resident engine
    single, ddp   the 'single' and 'data_parallel' strategies (ddp_worker: one DDP rank;
                  ddp_messages: what ranks tell the owner)
    finite        the loss guard: a NaN loss stops training
    checkpoints   checkpoints and per-epoch run rows, committed on a side connection
    evaluate      ml_evaluate; metrics: streaming accuracy / F1 / log-loss / RMSE
    gate          the validate := 'schema' check

The feature spec, the architectures and the registry the trained model lands in live in
``sqlml.models``.
"""
