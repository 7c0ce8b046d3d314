"""strategy := 'data_parallel': DDP over 2 local worker processes (gloo) matches single-process training."""

import io
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from sqlml.errors import InvalidOptionError, TrainingError
from sqlml.training import checkpoints

ROOT = Path(__file__).resolve().parents[2]
TABLE = (
    "CREATE TABLE t AS SELECT (hash(i, 1) % 1000) / 1000.0 AS a, (hash(i, 2) % 1000) / 1000.0 AS b, "
    "['x', 'y', 'z'][1 + (hash(i, 3) % 3)::BIGINT] AS label, 0.5 + (hash(i, 4) % 100) / 100.0 AS w, "
    "[0.2, 0.3, 0.5]::FLOAT[3] AS probs FROM range(600) r(i)"
)
# SGD with lr 1 and no momentum: weights after k steps are the initial weights minus the
# sum of k gradients, so equal weights mean equal gradients.
SGD = "optimizer := 'sgd', lr := 1.0, momentum := 0.0, weight := 'w', seed := 7"
OPTIONS = f"batch_size := 200, {SGD}"


def weights(con, name):
    blob = con.sql("SELECT weights FROM sqlml.models WHERE name = ?", [name]).fetchall()[0][0]
    return torch.load(io.BytesIO(blob), weights_only=True)


def max_difference(w1, w2):
    return max((w1[k] - w2[k]).abs().max().item() for k in w1)


def test_two_processes_match_single_process_training(con):
    con.sql(TABLE)
    query = "SELECT a, b, label, w FROM t"
    con.sql(f"CREATE MODEL single WITH ({OPTIONS}, epochs := 2, validation_split := 0.1) AS {query}")
    con.sql(f"CREATE MODEL ddp WITH ({OPTIONS}, epochs := 2, validation_split := 0.1, strategy := 'data_parallel', workers := 2) AS {query}")
    assert max_difference(weights(con, "single"), weights(con, "ddp")) < 1e-6
    runs = con.sql(
        "SELECT model, epoch, train_loss, val_loss, rows FROM sqlml.training_runs ORDER BY model, epoch"
    ).fetchall()
    by_model = {m: [r[1:] for r in runs if r[0] == m] for m in ("single", "ddp")}
    for (e1, loss1, val1, rows1), (e2, loss2, val2, rows2) in zip(by_model["single"], by_model["ddp"], strict=True):
        assert e1 == e2 and rows1 == rows2  # both ranks' rows together
        assert loss1 == pytest.approx(loss2, abs=1e-6) and val1 == pytest.approx(val2, abs=1e-6)
    assert con.sql("SELECT DISTINCT strategy FROM sqlml.training_runs WHERE model = 'ddp'").fetchall() == [("data_parallel",)]
    assert con.sql("SELECT json_extract(metrics, '$.workers')::INT FROM sqlml.models WHERE name = 'ddp'").fetchall() == [(2,)]


@pytest.mark.slow
def test_soft_labels_and_uneven_slices_match(con):
    con.sql(TABLE)
    query = "SELECT a, b, label, w, probs FROM t"
    opts = f"{SGD}, epochs := 1, batch_size := 199, soft_label := 'probs', classes := ['x', 'y', 'z']"
    con.sql(f"CREATE MODEL single WITH ({opts}) AS {query}")
    con.sql(f"CREATE MODEL ddp WITH ({opts}, strategy := 'data_parallel', workers := 3) AS {query}")
    assert max_difference(weights(con, "single"), weights(con, "ddp")) < 1e-6


@pytest.mark.slow
def test_interrupted_data_parallel_run_resumes(con, monkeypatch):
    con.sql(TABLE)
    query = "SELECT a, b, label, w FROM t"
    opts = f"{OPTIONS}, epochs := 4, strategy := 'data_parallel'"
    seen = []

    def interrupting_epoch(self, report):
        seen.append(report.epoch)
        if report.epoch == 2 and len(seen) == 2:
            raise KeyboardInterrupt
        original(self, report)

    original = checkpoints.RunLog.epoch
    monkeypatch.setattr(checkpoints.RunLog, "epoch", interrupting_epoch)
    with pytest.raises(KeyboardInterrupt):
        con.sql(f"CREATE MODEL m WITH ({opts}) AS {query}")
    assert con.sql("SELECT epoch FROM sqlml.checkpoints").fetchall() == [(2,)]
    con.sql(f"CREATE MODEL m WITH ({opts}) AS {query}")
    assert con.sql("SELECT epoch, resumed_from FROM sqlml.training_runs WHERE resumed_from IS NOT NULL").fetchall() == [(3, 2)]
    con.sql(f"CREATE MODEL reference WITH ({OPTIONS}, epochs := 4) AS {query}")
    assert max_difference(weights(con, "m"), weights(con, "reference")) < 1e-6


@pytest.mark.slow
def test_early_stopping_under_data_parallel(con):
    con.sql(TABLE)
    con.sql(
        f"CREATE MODEL m WITH ({OPTIONS}, epochs := 10, validation_split := 0.2, early_stopping := 1, "
        "min_delta := 100.0, strategy := 'data_parallel') AS SELECT a, b, label, w FROM t"
    )
    metrics = con.sql("SELECT metrics FROM sqlml.models").fetchall()[0][0]
    assert '"epochs": 2' in metrics and '"stopped_early": true' in metrics and '"best_epoch": 1' in metrics


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(), reason="no torchrun")
def test_external_launch_with_torchrun(con, tmp_path):
    """launch := 'external': the statement waits while torchrun starts the ranks (as on other machines)."""
    con.sql(TABLE)
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")

    def start_ranks():
        import time

        for _ in range(600):
            found = list(tmp_path.glob("sqlml-train-*/ddp/job.pt"))
            if found:
                env = dict(os.environ, PYTHONPATH=str(ROOT))
                subprocess.run(
                    [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "sqlml.training.ddp_worker", str(found[0].parent)],
                    env=env,
                    capture_output=True,
                    timeout=300,
                )
                return
            time.sleep(0.1)

    launcher = threading.Thread(target=start_ranks)
    launcher.start()
    con.sql(
        f"CREATE MODEL ext WITH ({OPTIONS}, epochs := 2, strategy := 'data_parallel', launch := 'external', "
        f"scratch_dir := '{tmp_path}') AS SELECT a, b, label, w FROM t"
    )
    launcher.join()
    con.sql(f"CREATE MODEL single WITH ({OPTIONS}, epochs := 2) AS SELECT a, b, label, w FROM t")
    assert max_difference(weights(con, "single"), weights(con, "ext")) < 1e-6
    assert con.sql("SELECT json_extract(metrics, '$.world')::INT FROM sqlml.models WHERE name = 'ext'").fetchall() == [(2,)]


def test_bad_data_parallel_options(con):
    con.sql(TABLE)
    with pytest.raises(InvalidOptionError, match="workers"):
        con.sql("CREATE MODEL m WITH (strategy := 'data_parallel', workers := 0) AS SELECT a, b, label FROM t")
    with pytest.raises(InvalidOptionError, match="Did you mean 'workers'"):
        con.sql("CREATE MODEL m WITH (strategy := 'data_parallel', worker := 2) AS SELECT a, b, label FROM t")
    with pytest.raises(InvalidOptionError, match="belongs to strategy 'data_parallel'"):
        con.sql("CREATE MODEL m WITH (workers := 2) AS SELECT a, b, label FROM t")  # single does not take it


def test_worker_failure_is_reported(con, monkeypatch):
    con.sql(TABLE)
    monkeypatch.setenv("PYTHONPATH", "/nonexistent")  # workers still find sqlml: the owner adds its root
    monkeypatch.setattr(sys, "executable", "/bin/false")
    with pytest.raises(TrainingError, match="data-parallel worker [01] failed"):  # whichever exits first
        con.sql("CREATE MODEL m WITH (strategy := 'data_parallel', epochs := 1) AS SELECT a, b, label FROM t")
    assert con.sql("SELECT count(*) FROM sqlml.models").fetchall() == [(0,)]
