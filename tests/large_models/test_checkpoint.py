"""Per-shard checkpoint files: an interrupted spilled run resumes to the uninterrupted weights."""

import json

import pytest
import torch
from torch import nn

from sqlml.errors import TrainingError
from sqlml.training.job import OptimizerSpec
from sqlml.training.large import checkpoint
from sqlml.training.large.layers import sequential_layers
from sqlml.training.large.partition import balance_plan
from sqlml.training.large.spill import SpillTrainer

from .conftest import max_diff, mlp

SPEC = OptimizerSpec("adam", lr=1e-2)


def data(n=6):
    g = torch.Generator().manual_seed(3)
    return [(torch.randn(8, 32, generator=g), torch.randint(0, 3, (8,), generator=g)) for _ in range(n)]


def trainer_for(model, tier="ram", shards=4):
    return SpillTrainer(model, balance_plan(sequential_layers(model), shards), SPEC, device_memory=10**6, tier=tier, audit=True)


def train(trainer, batches):
    for x, y in batches:
        trainer.step(x, lambda out, y=y: nn.functional.cross_entropy(out, y))


@pytest.mark.parametrize("tier", ["ram", "disk"])
def test_resume_from_shard_files_matches_an_uninterrupted_run(tmp_path, tier):
    batches = data()
    whole = mlp(dropout=0.2)
    t = trainer_for(whole, tier)
    torch.manual_seed(5)
    train(t, batches)
    t.flush()

    first = mlp(dropout=0.2)
    t1 = trainer_for(first, tier)
    torch.manual_seed(5)
    train(t1, batches[:3])
    t1.save(tmp_path / "ckpt", cursor={"batch": 3})
    t1.close()
    files = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert files == ["meta.json", "rng.pt", "shard_0000.pt", "shard_0001.pt", "shard_0002.pt", "shard_0003.pt"]
    assert json.loads((tmp_path / "ckpt" / "meta.json").read_text())["cursor"] == {"batch": 3}
    shard = checkpoint.load_shard(tmp_path / "ckpt", 0)  # weights_only loading works
    assert set(shard) == {"weights", "optimizer"} and shard["optimizer"]["state"]

    resumed = mlp(seed=42, dropout=0.2)  # different initial weights: everything must come from the files
    t2 = trainer_for(resumed, tier)
    torch.manual_seed(999)  # and the RNG too (dropout)
    meta = t2.load(tmp_path / "ckpt")
    assert meta["step"] == 3 and t2.steps == 3
    train(t2, batches[3:])
    t2.flush()
    assert max_diff(whole, resumed) == 0.0
    t.close()
    t2.close()


def test_a_crash_mid_save_leaves_the_previous_checkpoint(tmp_path):
    model = mlp()
    t = trainer_for(model)
    train(t, data(2))
    t.save(tmp_path / "ckpt")
    (tmp_path / "ckpt.partial").mkdir()  # as if a later save died half way
    (tmp_path / "ckpt.partial" / "shard_0000.pt").write_bytes(b"garbage")
    assert checkpoint.latest(tmp_path / "ckpt") == tmp_path / "ckpt"
    t.save(tmp_path / "ckpt")  # the next save clears the leftovers
    assert not (tmp_path / "ckpt.partial").exists() and checkpoint.read_meta(tmp_path / "ckpt")["step"] == 2
    other = trainer_for(mlp(), shards=2)
    with pytest.raises(TrainingError, match="has 4 shards, this run has 2"):
        other.load(tmp_path / "ckpt")
    t.close()
    other.close()
