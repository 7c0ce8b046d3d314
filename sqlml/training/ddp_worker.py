"""One data-parallel rank: ``python -m sqlml.training.ddp_worker JOB_DIR`` (also under torchrun).

Reads the job the owning process wrote (``job.pt``), joins the process group from the
usual environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``), trains
its slice of every global batch with the shared epoch loop, and, on rank 0, reports each
epoch and checkpoint through ``events.jsonl`` and writes ``final.pt``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path


def main(folder: str) -> None:
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from sqlml.training.job import EarlyStopping, EpochReport, serialize
    from sqlml.training.loop import fit
    from sqlml.training.progress import progress_factory

    folder_path = Path(folder)
    job = torch.load(folder_path / "job.pt", weights_only=False)  # written by the owning process
    dist.init_process_group(job["backend"])
    rank, world = dist.get_rank(), dist.get_world_size()
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    threads = job["threads"] or max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", world)))
    torch.set_num_threads(threads)
    if job["cuda"]:
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    module = job["module"].to(device)
    model = DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = job["optimizer"].build(model.parameters())
    stopper = EarlyStopping(*job["early_stopping"]) if job["early_stopping"] else None
    history: list[EpochReport] = []
    start = 0
    resume = job["resume"]
    if resume is not None:
        module.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        history = [EpochReport(**r) for r in resume["history"]]
        if stopper is not None and resume.get("early_stopping"):
            stopper.load_state_dict(resume["early_stopping"])
        start = int(resume["epoch"])
        if stopper is not None and stopper.best_state is not None and stopper.bad_epochs >= stopper.patience:
            start = job["epochs"]
    events = folder_path / "events.jsonl"

    def emit(event: dict) -> None:
        with open(events, "a") as f:
            f.write(json.dumps(event) + "\n")

    if rank == 0 and history:
        emit({"event": "resumed", "history": [r.to_json() for r in history]})

    def on_epoch(report: EpochReport, make_state) -> None:
        if rank != 0:
            return
        path = folder_path / f"checkpoint-{report.epoch}.pt"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(serialize(make_state()))
        tmp.replace(path)  # the owner stores it in the database, then deletes the file
        emit({"event": "epoch", "report": report.to_json(), "checkpoint": str(path)})

    def reduce(values: list[float]) -> list[float]:
        totals = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(totals)
        return totals.tolist()

    stopped = fit(
        model,
        optimizer,
        spec=job["spec"],
        feed=replace(job["feed"], rank=rank, world=world),
        validation=job["validation"],
        epochs=job["epochs"],
        start_epoch=start,
        seed=job["seed"],
        device=device,
        stopper=stopper,
        history=history,
        on_epoch=on_epoch,
        progress=progress_factory(False),
        name=job["name"],
        scale=float(world),
        inner=module,
        reduce=reduce,
    )
    if rank == 0:
        torch.save({k: v.detach().cpu() for k, v in module.state_dict().items()}, folder_path / "final.pt")
        best = stopper.best_epoch if stopper is not None and stopper.best_state is not None else None
        emit({"event": "done", "stopped": stopped, "best_epoch": best, "world": world})
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m sqlml.training.ddp_worker JOB_DIR")
    from sqlml.errors import SqlmlError

    try:
        main(sys.argv[1])
    except SqlmlError as error:  # told to the owner as is (a diverged loss, ...), not as a traceback
        Path(sys.argv[1], f"error-{os.environ.get('RANK', '0')}.txt").write_text(str(error))
        sys.exit(1)
