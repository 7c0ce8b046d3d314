"""The engines of models that outgrow a device: spilled, and pipelined over processes.

Both implement ``sqlml.training.engine.Engine`` (the interface the one epoch loop drives;
the resident engine lives there too). ``SpillEngine`` runs Hydra spilling,
``PipelineEngine`` drives pipeline stages in worker processes. The loss is the training
core's ``weighted_loss``, computed the same way as the resident engine's.
"""

from __future__ import annotations

from sqlml.training.engine import Engine
from sqlml.training.job import weighted_loss


class _SpilledModule:
    """What evaluation and early stopping see of a spilled model: forward shard by shard
    through the device, state dicts read from (and written to) the host store."""

    def __init__(self, trainer):
        self.trainer = trainer

    @property
    def training(self) -> bool:
        return self.trainer.model.training

    def train(self, mode: bool = True):
        self.trainer.model.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def __call__(self, x):
        return self.trainer.infer(x)

    def state_dict(self):
        self.trainer.flush()
        return self.trainer.model.state_dict()

    def load_state_dict(self, state) -> None:
        self.trainer.release_device()
        self.trainer.model.load_state_dict(state)


class SpillEngine(Engine):
    kind = "spill"

    def __init__(self, trainer, task: str):
        self.trainer = trainer
        self.task = task
        self.eval_device = trainer.device
        self.view = _SpilledModule(trainer)

    def step(self, batch):
        batch = batch.to(self.trainer.device)
        box = {}

        def loss_of(output):
            weighted, loss = weighted_loss(self.task, output, batch)
            box["weighted"] = weighted.detach()
            self.observe(weighted)  # a NaN stops here, before any shard steps on it
            return loss

        self.trainer.step(batch.x, loss_of)
        return box["weighted"]

    def prefetch_first(self) -> None:
        self.trainer.prefetch_first()

    def eval_module(self):
        return self.view

    def train(self, mode: bool = True) -> None:
        self.trainer.model.train(mode)

    def state_dict(self):
        return self.view.state_dict()

    def load_state_dict(self, state) -> None:
        self.view.load_state_dict(state)

    def shard_states(self) -> list[dict]:
        return list(self.trainer.shard_states())

    def load_shard_states(self, states: list[dict]) -> None:
        self.trainer.restore_shards(states)

    def finish(self):
        return self.trainer.detach_model()

    def stats(self) -> dict:
        return self.trainer.stats()

    def close(self) -> None:
        self.trainer.close()


class PipelineEngine(Engine):
    kind = "pipeline"

    def __init__(self, runner, task: str):
        import torch

        self.runner = runner
        self.task = task
        self.eval_device = torch.device("cpu")  # evaluation runs on the owner's copy
        self.synced = False

    def step(self, batch):
        import torch

        from sqlml.training.large.pipeline_worker import pack_target

        reply = self.runner.step(batch.x, pack_target(batch), weight_total=batch.weight_total)
        self.synced = False
        weighted = torch.tensor(reply.weighted, dtype=torch.float32)
        self.observe(weighted)  # the stages have stepped already: the loss exists only now
        return weighted

    def seed(self, seed: int) -> None:
        self.runner.seed(seed)

    def eval_module(self):
        if not self.synced:
            self.runner.sync_model()
            self.synced = True
        return self.runner.model

    def train(self, mode: bool = True) -> None:
        self.runner.model.train(mode)

    def state_dict(self):
        return self.eval_module().state_dict()

    def load_state_dict(self, state) -> None:
        self.runner.model.load_state_dict(state)
        self.runner.push_model()
        self.synced = True

    def shard_states(self) -> list[dict]:
        return [{"weights": s["layers"], "optimizer": s["optimizer"]} for s in self.runner.stage_states()]

    def load_shard_states(self, states: list[dict]) -> None:
        self.runner.load_stage_states([{"layers": s["weights"], "optimizer": s["optimizer"]} for s in states])
        self.synced = False

    def finish(self):
        self.eval_module()
        return self.runner.model

    def stats(self) -> dict:
        return {"pipeline": self.runner.stats()}

    def close(self) -> None:
        self.runner.close()
