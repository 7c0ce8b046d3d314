"""Checkpoints each epoch; an interrupted CREATE MODEL resumes and ends where an uninterrupted one would."""

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import sqlml

ROOT = Path(__file__).resolve().parents[2]
STATEMENT = (
    "CREATE MODEL m WITH (architecture := 'resumable', epochs := 5, batch_size := 100, lr := 0.01, seed := 3) "
    "AS SELECT x1, x2, label FROM t"
)
TABLE = (
    "CREATE TABLE t AS SELECT (hash(i, 1) % 1000) / 1000.0 AS x1, (hash(i, 2) % 1000) / 1000.0 AS x2, "
    "(hash(i, 3) % 2)::INT AS label FROM range(1000) r(i)"
)


def resumable(input_shape, n_outputs, options):
    return torch.nn.Sequential(torch.nn.Linear(input_shape[0], 16), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(16, n_outputs))


class Interrupt(KeyboardInterrupt):
    pass


def interrupting(after_steps):
    def factory(input_shape, n_outputs, options):
        module = resumable(input_shape, n_outputs, options)
        calls = [0]

        def hook(mod, args):
            calls[0] += 1
            if calls[0] > after_steps:
                raise Interrupt()

        module.register_forward_pre_hook(hook)
        return module

    return factory


def weights(con, version=None):
    where = "" if version is None else f" AND version = {version}"
    blob = con.sql(f"SELECT weights FROM sqlml.models WHERE name = 'm'{where} ORDER BY version DESC LIMIT 1").fetchall()[0][0]
    return torch.load(io.BytesIO(blob), weights_only=True)


def reference_weights():
    sqlml.register_architecture("resumable", resumable)
    con = sqlml.connect()
    con.sql(TABLE)
    con.sql(STATEMENT)
    result = weights(con)
    con.close()
    return result


def test_interrupted_run_resumes_from_its_checkpoint(con):
    con.sql(TABLE)
    sqlml.register_architecture("resumable", interrupting(after_steps=25))  # 10 steps an epoch: dies in epoch 3
    with pytest.raises(Interrupt):
        con.sql(STATEMENT)
    assert con.sql("SELECT count(*) FROM sqlml.models").fetchall() == [(0,)]
    assert con.sql("SELECT epoch FROM sqlml.checkpoints").fetchall() == [(2,)]
    assert con.sql("SELECT epoch FROM sqlml.training_runs ORDER BY epoch").fetchall() == [(1,), (2,)]

    sqlml.register_architecture("resumable", resumable)
    con.sql(STATEMENT)
    runs = con.sql("SELECT epoch, resumed_from, version FROM sqlml.training_runs ORDER BY created_at, epoch").fetchall()
    assert runs == [(1, None, 1), (2, None, 1), (3, 2, 1), (4, None, 1), (5, None, 1)]
    assert con.sql("SELECT count(*) FROM sqlml.checkpoints").fetchall() == [(0,)]  # cleared once saved
    resumed, reference = weights(con), reference_weights()
    assert all(torch.equal(resumed[k], reference[k]) for k in reference)


def test_a_different_statement_starts_afresh(con):
    con.sql(TABLE)
    sqlml.register_architecture("resumable", interrupting(after_steps=15))
    with pytest.raises(Interrupt):
        con.sql(STATEMENT)
    sqlml.register_architecture("resumable", resumable)
    con.sql(STATEMENT.replace("seed := 3", "seed := 4"))
    assert con.sql("SELECT min(resumed_from) FROM sqlml.training_runs").fetchall() == [(None,)]


def test_checkpoint_false_keeps_nothing(con):
    con.sql(TABLE)
    sqlml.register_architecture("resumable", interrupting(after_steps=15))
    with pytest.raises(Interrupt):
        con.sql(STATEMENT.replace("seed := 3", "seed := 3, checkpoint := false"))
    assert con.sql("SELECT count(*) FROM sqlml.checkpoints").fetchall() == [(0,)]


KILLED_CHILD = """
import os, signal, sys, torch, sqlml
sys.path.insert(0, {tests!r})
from training.test_resume import resumable, STATEMENT, TABLE
torch.set_num_threads(1)

def killer(input_shape, n_outputs, options):
    module = resumable(input_shape, n_outputs, options)
    calls = [0]
    def hook(mod, args):
        calls[0] += 1
        if calls[0] > 35:  # in epoch 4
            os.kill(os.getpid(), signal.SIGKILL)
    module.register_forward_pre_hook(hook)
    return module

sqlml.register_architecture("resumable", killer)
con = sqlml.connect({db!r})
con.sql(TABLE)
con.sql(STATEMENT.replace("seed := 3", "seed := 3, scratch_dir := {scratch!r}"))  # where it cannot clean up
print("not killed")
"""


@pytest.mark.slow
def test_killed_process_resumes_in_a_new_one(db_path):
    scratch = Path(db_path).parent / "scratch"
    script = KILLED_CHILD.format(tests=str(ROOT / "tests"), db=db_path, scratch=str(scratch))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == -9, done.stderr  # SIGKILL, mid-training
    assert len(list(scratch.iterdir())) == 1  # the killed run's staged data
    sqlml.register_architecture("resumable", resumable)
    con = sqlml.connect(db_path)
    assert con.sql("SELECT epoch FROM sqlml.checkpoints").fetchall() == [(3,)]
    con.sql(STATEMENT.replace("seed := 3", f"seed := 3, scratch_dir := '{scratch}'"))
    assert list(scratch.iterdir()) == []  # removed by the next run
    assert con.sql("SELECT epoch, resumed_from FROM sqlml.training_runs WHERE resumed_from IS NOT NULL").fetchall() == [(4, 3)]
    resumed = weights(con)
    con.close()
    reference = reference_weights()
    assert all(torch.equal(resumed[k], reference[k]) for k in reference)
