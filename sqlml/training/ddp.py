"""``strategy := 'data_parallel'``: PyTorch DDP over worker processes fed from the staged data.

The process that owns the database stays the owner: it has already staged the training
query into an Arrow file, so it writes a job folder (the module, the feed, the optimizer,
any checkpoint to resume from) and starts ``workers`` processes of
``python -m sqlml.training.ddp_worker JOB_DIR``, the same command ``torchrun`` runs.
Each rank memory-maps the staged file and takes its slice of every global batch (never
opening the database, which one process owns); gradients are all-reduced (gloo on CPU,
nccl on GPUs), so the weights follow single-device training up to float summation order.

The job folder holds the ``TrainJob`` itself (``job.pt``); rank 0 answers with the typed
messages of ``ddp_messages`` (checkpoints, epoch reports, the final weights), which the
owner relays into ``sqlml.checkpoints`` and the runs table through the job's hooks.

Across machines: give ``scratch_dir := '/shared/folder'`` (mounted at the same path on
every machine) and ``launch := 'external'``; the statement writes the job there and
waits while you start the ranks yourself, e.g. on each of two machines

    torchrun --nnodes 2 --nproc_per_node 4 --rdzv_backend c10d --rdzv_endpoint HOST:29500 \\
        -m sqlml.training.ddp_worker /shared/folder/<job>/ddp
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from sqlml import bounds
from sqlml.errors import InvalidOptionError, TrainingError
from sqlml.training.job import TrainJob, TrainResult

POLL_SECONDS = 0.05


def train(job: TrainJob) -> TrainResult:
    import torch

    from sqlml.training import ddp_messages

    workers = bounds.require("CREATE MODEL", "workers", job.options.get("workers", 2), bounds.whole(1, bounds.MAX_PROCESSES))
    launch = job.options.get("launch", "local")
    if launch not in ("local", "external"):
        raise InvalidOptionError("CREATE MODEL", "launch", f"expected 'local' or 'external', got {launch!r}")
    folder = Path(job.feed.training.directory) / "ddp"
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(ddp_messages.STREAMS):  # before the job: ranks may start the moment it exists
        stale.unlink()
    job.module.cpu()
    try:
        torch.save(job, folder / "job.pt")  # the job itself: its hooks stay here
    except Exception as error:  # noqa: BLE001 - pickling a user module
        raise TrainingError(
            f"data_parallel could not hand model {job.name!r} to worker processes ({type(error).__name__}: {error}); "
            "its module class must be importable (defined in a module, not interactively)"
        ) from None
    started = time.perf_counter()
    if launch == "local":
        processes = _start(folder, workers)
    else:
        processes = []
        print(
            f"sqlml: waiting for data-parallel ranks; start them with\n"
            f"  torchrun --nnodes N --nproc_per_node M --rdzv_backend c10d --rdzv_endpoint HOST:PORT "
            f"-m sqlml.training.ddp_worker {folder}",
            file=sys.stderr,
            flush=True,
        )
    result = _follow(job, folder, processes)
    result.extra["workers"] = workers if launch == "local" else result.extra.get("world", workers)
    result.extra["ddp_seconds"] = round(time.perf_counter() - started, 3)
    return result


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(folder: Path, workers: int) -> list[tuple[subprocess.Popen, Path]]:
    port = _free_port()
    root = str(Path(__file__).resolve().parents[2])
    processes = []
    for rank in range(workers):
        env = dict(os.environ)
        env.update(
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE=str(workers),
            LOCAL_WORLD_SIZE=str(workers),
            PYTHONPATH=os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p),
        )
        log = folder / f"rank{rank}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "sqlml.training.ddp_worker", str(folder)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        processes.append((proc, log))
    return processes


def _follow(job: TrainJob, folder: Path, processes) -> TrainResult:
    """Relay rank 0's messages until it has finished; any failed rank stops all of them."""
    from sqlml.training import ddp_messages as m

    readers: dict[Path, m.Reader] = {}
    finished = None
    try:
        with job.hooks.progress(job.epochs, f"{job.name} (data parallel)") as bar:
            while finished is None:
                for message in _received(folder, readers):
                    if isinstance(message, m.Resumed):
                        bar.update(len(message.history))
                    elif isinstance(message, m.Checkpoint):
                        job.hooks.save_checkpoint(message.state)
                    elif isinstance(message, m.EpochEnded):
                        job.hooks.on_epoch_end(message.report)
                        bar.update(1)
                    elif isinstance(message, m.Finished):
                        finished = message
                if finished is None:
                    _check(processes, folder, readers)
                    time.sleep(POLL_SECONDS)
        for proc, _ in processes:
            proc.wait(timeout=60)
        _check(processes, folder, readers)
    finally:
        for proc, _ in processes:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return finished.run.into(job.module.cpu(), {"world": finished.world})


def _received(folder: Path, readers: dict) -> list:
    """Messages every rank appended since the last look; a rank's ``Failed`` is raised here."""
    from sqlml.training import ddp_messages as m

    messages = []
    for path in sorted(folder.glob(m.STREAMS)):
        if path not in readers:
            readers[path] = m.Reader(path)
        for message in readers[path].new():
            if isinstance(message, m.Failed):
                raise TrainingError(message.message)
            messages.append(message)
    return messages


def _check(processes, folder: Path, readers: dict) -> None:
    """A rank that exited with an error: what it said (``Failed``), else the tail of its log."""
    for rank, (proc, log) in enumerate(processes):
        code = proc.poll()
        if code not in (None, 0):
            _received(folder, readers)  # raises what the rank told as it exited, if it told
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise TrainingError(f"data-parallel worker {rank} failed (exit code {code}):\n{tail}")


train.options = {"workers": 2, "launch": "local"}
