"""One data-parallel rank: ``python -m sqlml.training.ddp_worker JOB_DIR`` (also under torchrun).

Reads the ``TrainJob`` the owning process wrote (``job.pt``), joins the process group
from the usual environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``),
and trains its slice of every global batch with the one epoch loop and a resident
engine around a ``DistributedDataParallel`` module. Rank 0 reports to the owner with
the messages of ``ddp_messages`` (checkpoints, epochs, the final weights); any rank
that fails says so there too.
"""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import replace
from pathlib import Path

from sqlml.training.engine import ResidentEngine


class DataParallelEngine(ResidentEngine):
    """The resident engine on one rank: the forward pass through DDP, the loss scaled by the
    world size (so the averaged gradient is the whole batch's), epoch totals summed over ranks."""

    def __init__(self, job, device, world: int):
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        super().__init__(job.module, job.optimizer, job.task, device,
                         wrap=lambda module: DistributedDataParallel(module, device_ids=ids), scale=float(world))

    def reduce(self, totals: list[float]) -> list[float]:
        import torch
        import torch.distributed as dist

        summed = torch.tensor(totals, dtype=torch.float64, device=self.device)
        dist.all_reduce(summed)
        return summed.tolist()


def main(folder: str) -> None:
    import torch
    import torch.distributed as dist

    from sqlml.training import ddp_messages as m
    from sqlml.training.job import FinishedRun, JobHooks, TrainJob
    from sqlml.training.loop import EpochLoop

    folder_path = Path(folder)
    job: TrainJob = torch.load(folder_path / "job.pt", weights_only=False)  # written by the owning process
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
    cuda = job.device.type == "cuda"
    dist.init_process_group("nccl" if cuda and torch.cuda.device_count() >= local_world else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    torch.set_num_threads(job.threads or max(1, (os.cpu_count() or 1) // local_world))
    if cuda:
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    job = replace(job, feed=replace(job.feed, rank=rank, world=world), device=device)

    def tell(message) -> None:
        if rank == 0:
            m.send(folder_path, rank, message)

    hooks = JobHooks(on_epoch_end=lambda report: tell(m.EpochEnded(report)),
                     save_checkpoint=lambda state: tell(m.Checkpoint(state)))
    loop = EpochLoop(job, DataParallelEngine(job, device, world), hooks)
    if loop.history:
        tell(m.Resumed(list(loop.history)))
    loop.run()
    result = loop.result({"world": world})
    tell(m.Finished(world, FinishedRun.of(result)))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m sqlml.training.ddp_worker JOB_DIR")
    from sqlml.errors import SqlmlError
    from sqlml.training import ddp_messages

    rank = int(os.environ.get("RANK", "0"))
    try:
        main(sys.argv[1])
    except BaseException as error:  # noqa: BLE001 - told to the owner, then this rank exits
        told = str(error) if isinstance(error, SqlmlError) else (
            f"data-parallel worker {rank} failed: {type(error).__name__}: {error}\n{traceback.format_exc()}")
        ddp_messages.send(Path(sys.argv[1]), rank, ddp_messages.Failed(rank, told))
        sys.exit(1)
