"""``strategy := 'data_parallel'``: PyTorch DDP over worker processes fed from the staged data.

The process that owns the database stays the owner: it has already staged the training
query into an Arrow file, so it writes a job folder (the module, the feed, the optimizer,
any checkpoint to resume from) and starts ``workers`` processes of
``python -m sqlml.training.ddp_worker JOB_DIR``, the same command ``torchrun`` runs.
Each rank memory-maps the staged file and takes its slice of every global batch (never
opening the database, which one process owns); gradients are all-reduced (gloo on CPU,
nccl on GPUs), so the weights follow single-device training up to float summation order.

Rank 0 appends one JSON line per epoch to ``events.jsonl`` and writes the epoch's
checkpoint; the owner relays them into the runs table and ``sqlml.checkpoints``, and at
the end loads the final weights.

Across machines: give ``scratch_dir := '/shared/folder'`` (mounted at the same path on
every machine) and ``launch := 'external'``; the statement writes the job there and
waits while you start the ranks yourself, e.g. on each of two machines

    torchrun --nnodes 2 --nproc_per_node 4 --rdzv_backend c10d --rdzv_endpoint HOST:29500 \\
        -m sqlml.training.ddp_worker /shared/folder/<job>/ddp
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from sqlml import bounds
from sqlml.errors import InvalidOptionError, TrainingError
from sqlml.training.job import EpochReport, TrainJob, TrainResult

POLL_SECONDS = 0.05


def train(job: TrainJob) -> TrainResult:
    import torch

    workers = bounds.require("CREATE MODEL", "workers", job.options.get("workers", 2), bounds.whole(1, bounds.MAX_PROCESSES))
    launch = job.options.get("launch", "local")
    if launch not in ("local", "external"):
        raise InvalidOptionError("CREATE MODEL", "launch", f"expected 'local' or 'external', got {launch!r}")
    folder = Path(job.feed.training.directory) / "ddp"
    folder.mkdir(parents=True, exist_ok=True)
    cuda = job.device.type == "cuda"
    backend = "nccl" if cuda and torch.cuda.device_count() >= workers else "gloo"
    spec = {
        "name": job.name,
        "module": job.module.cpu(),
        "spec": job.spec,
        "feed": job.feed,
        "validation": job.validation,
        "optimizer": job.optimizer,
        "epochs": job.epochs,
        "seed": job.seed,
        "early_stopping": (job.early_stopping.patience, job.early_stopping.min_delta) if job.early_stopping else None,
        "resume": job.load_checkpoint(),
        "backend": backend,
        "cuda": cuda,
        "threads": job.options.get("threads"),
    }
    try:
        torch.save(spec, folder / "job.pt")
    except Exception as error:  # noqa: BLE001 - pickling a user module
        raise TrainingError(
            f"data_parallel could not hand model {job.name!r} to worker processes ({type(error).__name__}: {error}); "
            "its module class must be importable (defined in a module, not interactively)"
        ) from None
    events = folder / "events.jsonl"
    events.unlink(missing_ok=True)
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
    result = _follow(job, folder, events, processes)
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


def _follow(job: TrainJob, folder: Path, events: Path, processes) -> TrainResult:
    """Relay rank 0's events until it is done; any failed rank stops all of them."""
    import torch

    from sqlml.training.job import deserialize

    history: list[EpochReport] = []
    offset = 0
    done = None
    try:
        with job.progress(job.epochs, f"{job.name} (data parallel)") as bar:
            while done is None:
                for line in _new_lines(events, offset):
                    offset += len(line)
                    event = json.loads(line)
                    if event["event"] == "epoch":
                        report = EpochReport(**event["report"])
                        history.append(report)
                        if event.get("checkpoint"):
                            path = Path(event["checkpoint"])
                            if job.save_checkpoint is not None:
                                job.save_checkpoint(deserialize(path.read_bytes()))
                            path.unlink(missing_ok=True)
                        job.on_epoch_end(report)
                        bar.update(1)
                    elif event["event"] == "done":
                        done = event
                    elif event["event"] == "resumed":
                        history = [EpochReport(**r) for r in event["history"]]
                        bar.update(len(history))
                if done is None:
                    _check(processes)
                    time.sleep(POLL_SECONDS)
        for proc, _ in processes:
            proc.wait(timeout=60)
        _check(processes)
    finally:
        for proc, _ in processes:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    module = job.module.cpu()
    module.load_state_dict(torch.load(folder / "final.pt", weights_only=True))
    return TrainResult(
        module=module,
        history=history,
        epochs_run=len(history),
        stopped_early=bool(done.get("stopped")),
        best_epoch=done.get("best_epoch"),
        extra={"world": done.get("world")},
    )


def _new_lines(path: Path, offset: int) -> list[bytes]:
    """Complete lines appended after byte ``offset``."""
    if not path.exists():
        return []
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    return [line for line in data.splitlines(keepends=True) if line.endswith(b"\n")]


def _check(processes) -> None:
    for rank, (proc, log) in enumerate(processes):
        code = proc.poll()
        if code not in (None, 0):
            told = log.with_name(f"error-{rank}.txt")
            if told.exists():  # an sqlml error of the rank (see ddp_worker): its message says it all
                raise TrainingError(told.read_text(errors="replace"))
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise TrainingError(f"data-parallel worker {rank} failed (exit code {code}):\n{tail}")


train.options = {"workers": 2, "launch": "local"}
