"""Starting worker processes (pipeline stages, grid workers) cheaply and safely.

Workers come from a forkserver that imported torch once, so after the first every
worker starts in a fraction of a second, and none inherits the owner's DuckDB or feed
threads (plain ``fork`` would). Python's spawn machinery would also re-run the user's
``__main__`` script in every worker (the reason ``if __name__ == "__main__":`` guards
exist); a SQL statement must not impose that on whoever runs it, so the main module is
hidden from the child while it starts: workers only need importable code.
"""

from __future__ import annotations

import sys
import types
from contextlib import contextmanager

#: imported once by the forkserver, so no worker pays for them. A grid worker's first unit
#: otherwise imported pyarrow (and pandas through it) and the feed on the clock: 0.5-1.2 s per
#: worker, most of the owner-side "serial" time of a short grid.
PRELOAD = [
    "torch", "torch.distributed.pipelining", "pyarrow", "pyarrow.compute", "pyarrow.ipc", "pandas",
    "pyarrow.pandas_compat", "sqlml.training.feed", "sqlml.training.loop", "sqlml.training.engine",
    "sqlml.training.large.engines", "sqlml.training.large.pipeline_worker", "sqlml.training.large.pipeline_messages",
    "sqlml.training.large.grid_worker", "sqlml.training.large.grid_messages",
]


def context():
    import torch.multiprocessing as mp

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


@contextmanager
def _main_hidden():
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = main.__dict__.get("__spec__", None)
    # a spec named '__main__' is what the child skips when it prepares its own __main__
    main.__spec__ = types.SimpleNamespace(name="__main__")
    try:
        yield
    finally:
        main.__spec__ = saved


def start(ctx, target, args) -> object:
    """Start ``target(*args)`` in a new worker process and return the process."""
    proc = ctx.Process(target=target, args=args, daemon=True)
    with _main_hidden():
        proc.start()
    return proc
