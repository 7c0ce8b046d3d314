"""How one batch trains a model, three ways, behind one small interface.

An engine owns a model's weights and optimizer state wherever they live and offers:

    step(batch) -> tensor      zero grads, forward, the core's weighted loss, backward, optimizer
                               step; returns sum(weight x loss) of the batch (detached)
    eval_module()              a module ``sqlml.training.loop.evaluate`` can call
    eval_device                the device evaluation batches go to
    train(mode)                training / evaluation mode (dropout, batch norm)
    state_dict() / load_state_dict(sd)   the whole model's weights (host memory)
    shard_states() / load_shard_states(states)   per-shard weights and optimizer state
    finish() -> module         the trained model on CPU, owning its memory
    stats() -> dict

``ResidentEngine`` is the single-device loop of ``sqlml.training.loop.fit`` verbatim
(grid members train with it when they fit), ``SpillEngine`` runs Hydra spilling,
``PipelineEngine`` drives pipeline stages in worker processes. The loss is the training
core's ``row_losses`` weighted and divided by the batch's weight total, computed the
same way in all three.
"""

from __future__ import annotations

from sqlml.training.job import row_losses


def weighted_loss(task: str, output, batch):
    """(sum of weight x loss, the loss to backpropagate): exactly the core loop's arithmetic."""
    weighted = (row_losses(task, output, batch) * batch.weight).sum()
    return weighted, weighted * (1.0 / max(batch.weight_total, 1e-12))


class ResidentEngine:
    kind = "resident"

    def __init__(self, module, optimizer_spec, task: str, device):
        self.module = module.to(device)
        self.device = device
        self.eval_device = device
        self.task = task
        self.optimizer = optimizer_spec.build(self.module.parameters())

    def step(self, batch):
        batch = batch.to(self.device)
        self.optimizer.zero_grad(set_to_none=True)
        weighted, loss = weighted_loss(self.task, self.module(batch.x), batch)
        loss.backward()
        self.optimizer.step()
        return weighted.detach()

    def eval_module(self):
        return self.module

    def train(self, mode: bool = True) -> None:
        self.module.train(mode)

    def state_dict(self):
        return self.module.state_dict()

    def load_state_dict(self, state) -> None:
        self.module.load_state_dict(state)

    def shard_states(self) -> list[dict]:
        return [{"weights": self.module.state_dict(), "optimizer": self.optimizer.state_dict()}]

    def load_shard_states(self, states: list[dict]) -> None:
        self.module.load_state_dict(states[0]["weights"])
        self.optimizer.load_state_dict(states[0]["optimizer"])

    def finish(self):
        import torch

        return self.module.to(torch.device("cpu"))

    def stats(self) -> dict:
        return {}

    def close(self) -> None:
        return None


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


class SpillEngine:
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


class PipelineEngine:
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
        return torch.tensor(reply["weighted"], dtype=torch.float32)

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
