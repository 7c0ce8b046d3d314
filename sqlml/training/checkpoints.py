"""What a training run writes while it runs: checkpoints and per-epoch rows.

A CREATE MODEL statement is one transaction, so nothing it writes survives a failure or
a killed process. Checkpoints and the runs table must survive exactly that, so they are
written through a connection of their own and committed at once, each epoch. DuckDB
commits to its write-ahead log, so a SIGKILL loses at most the epoch in progress.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from sqlml.sqlutil import fetch_one
from sqlml.training.job import EpochReport, deserialize, serialize
from sqlml.training.options import NOT_IN_FINGERPRINT


def fingerprint(name: str, query: str, options: dict[str, Any], spec_json: dict[str, Any]) -> str:
    """Identifies a statement and its data: the same text over the same data resumes."""
    kept = {k: v for k, v in sorted(options.items()) if k not in NOT_IN_FINGERPRINT}
    payload = json.dumps([name, query.strip(), kept, spec_json], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


class CheckpointStore:
    """The last checkpoint of one (model, fingerprint), in ``sqlml.checkpoints``."""

    def __init__(self, side, model: str, fingerprint: str):
        self.side, self.model, self.fingerprint = side, model, fingerprint

    def load(self) -> dict | None:
        row = fetch_one(
            self.side,
            "SELECT state FROM sqlml.checkpoints WHERE model = ? AND fingerprint = ? ORDER BY epoch DESC LIMIT 1",
            [self.model, self.fingerprint],
        )
        if row is None:
            return None
        state = deserialize(row[0])
        logging.getLogger("sqlml.training").info("CREATE MODEL %s: resuming from the checkpoint of epoch %s", self.model, state.get("epoch"))
        return state

    def save(self, state: dict) -> None:
        blob = serialize(state)
        self.side.execute("BEGIN TRANSACTION")
        try:
            self.side.execute("DELETE FROM sqlml.checkpoints WHERE model = ?", [self.model])
            self.side.execute(
                "INSERT INTO sqlml.checkpoints (model, fingerprint, epoch, state) VALUES (?, ?, ?, ?)",
                [self.model, self.fingerprint, int(state["epoch"]), blob],
            )
        except BaseException:
            self.side.execute("ROLLBACK")
            raise
        self.side.execute("COMMIT")

    def clear(self) -> None:
        self.side.execute("DELETE FROM sqlml.checkpoints WHERE model = ?", [self.model])


class RunLog:
    """Rows of ``sqlml.training_runs``, one per finished epoch."""

    def __init__(self, side, run_id: str, model: str, version: int, strategy: str):
        self.side, self.run_id, self.model, self.version, self.strategy = side, run_id, model, version, strategy

    def epoch(self, report: EpochReport) -> None:
        self.side.execute(
            "INSERT INTO sqlml.training_runs (run_id, model, version, strategy, epoch, train_loss, val_loss, metrics, "
            "rows, seconds, resumed_from) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                self.run_id,
                self.model,
                self.version,
                self.strategy,
                report.epoch,
                report.train_loss,
                report.validation.get("val_loss"),
                json.dumps(report.validation),
                report.rows,
                report.seconds,
                report.resumed_from,
            ],
        )
