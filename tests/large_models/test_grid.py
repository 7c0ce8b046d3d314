"""CREATE MODELS: the grid trains at once; each model equals training it alone; the best is marked."""

import json

import pytest
from torch import nn

import sqlml
from sqlml.errors import InvalidOptionError, ObjectExistsError, SqlmlSyntaxError
from sqlml.training.large.grid import expand

from .conftest import metrics, same_weights, weights

QUERY = "SELECT a, b, color, label FROM train"
COMMON = "architecture := 'mlp', dropout := 0.1, epochs := 2, batch_size := 100, validation_split := 0.25"


def grid(con, head, options=COMMON, replace=False):
    verb = "CREATE OR REPLACE MODELS" if replace else "CREATE MODELS"
    return con.sql(f"{verb} {head} WITH ({options}) AS {QUERY}").fetchall()


def test_expansion_order():
    assert expand({"lr": [1, 2], "hidden": ["a", "b", "c"]}) == [
        {"lr": 1, "hidden": "a"}, {"lr": 1, "hidden": "b"}, {"lr": 1, "hidden": "c"},
        {"lr": 2, "hidden": "a"}, {"lr": 2, "hidden": "b"}, {"lr": 2, "hidden": "c"},
    ]


def test_grid_members_equal_solo_training_and_the_best_is_marked(table):
    con = table
    rows = grid(con, "g FOR (lr IN (0.01, 0.001), hidden IN ([16], [32, 16]))", COMMON + ", workers := 1, unit_batches := 3")
    assert [r[0] for r in rows] == ["g_1", "g_2", "g_3", "g_4"]
    assert [json.loads(r[2]) for r in rows] == [
        {"lr": 0.01, "hidden": [16]}, {"lr": 0.01, "hidden": [32, 16]}, {"lr": 0.001, "hidden": [16]}, {"lr": 0.001, "hidden": [32, 16]},
    ]
    for name, lr, hidden in (("g_2", 0.01, "[32, 16]"), ("g_3", 0.001, "[16]")):
        con.sql(f"CREATE MODEL solo_{name} WITH ({COMMON}, lr := {lr}, hidden := {hidden}) AS {QUERY}")
        assert same_weights(weights(con, name), weights(con, f"solo_{name}")) == 0.0
        assert metrics(con, name)["val_loss"] == metrics(con, f"solo_{name}")["val_loss"]
    values = {r[0]: r[4] for r in rows}
    best = [r[0] for r in rows if r[5]]
    assert best == [min(values, key=values.get)] and all(r[3] == "val_loss" for r in rows)
    assert metrics(con, best[0])["grid_best"] is True and metrics(con, "g_1")["grid"] == "g"
    listed = con.sql("SELECT model, best, params FROM ml_model_grid('g')").fetchall()
    assert listed[0][:2] == (best[0], True) and len(listed) == 4
    assert con.sql("SELECT count(*) FROM sqlml.training_runs WHERE model LIKE 'g\\_%' ESCAPE '\\'").fetchall() == [(8,)]


def test_metric_option_and_higher_is_better(table):
    con = table
    rows = grid(con, "acc FOR (lr IN (0.05, 0.0001))", COMMON + ", hidden := [16], workers := 1, metric := 'val_accuracy'")
    best = [r for r in rows if r[5]]
    assert len(best) == 1 and best[0][4] == max(r[4] for r in rows) and best[0][3] == "val_accuracy"


def test_spilled_members_share_one_device_and_equal_solo(table):
    con = table
    spill = "strategy := 'spill', device_memory := '100KB', hidden := [64, 64, 64]"
    grid(con, "sg FOR (lr IN (0.01, 0.002))", COMMON + ", " + spill + ", workers := 1, unit_batches := 2")
    con.sql(f"CREATE MODEL solo WITH ({COMMON}, hidden := [64, 64, 64], lr := 0.002) AS {QUERY}")
    assert same_weights(weights(con, "sg_2"), weights(con, "solo")) == 0.0


def test_names_replace_and_bad_grids(table):
    con = table
    quick = COMMON.replace("epochs := 2", "epochs := 1") + ", hidden := [8], workers := 1"
    grid(con, "r FOR (lr IN (0.01, 0.02))", quick)
    with pytest.raises(ObjectExistsError, match="r_1"):
        grid(con, "r FOR (lr IN (0.01, 0.02))", quick)
    grid(con, "r FOR (lr IN (0.01, 0.02))", quick, replace=True)
    assert con.sql("SELECT name, max(version) FROM sqlml.models GROUP BY 1 ORDER BY 1").fetchall() == [("r_1", 2), ("r_2", 2)]
    bad = [
        ("x FOR (lr IN (0.1), lr IN (0.2))", COMMON, SqlmlSyntaxError, "varied twice"),
        ("x FOR (lr 0.1)", COMMON, SqlmlSyntaxError, "expected IN"),
        ("x FOR (lr IN ())", COMMON, SqlmlSyntaxError, "at least one value"),
        ("x FOR (lr IN (0.1))", COMMON + ", lr := 0.2", InvalidOptionError, "both varied"),
        ("x FOR (workers IN (1, 2))", COMMON, InvalidOptionError, "cannot vary"),
        ("x FOR (lr IN (0.1))", COMMON + ", strategy := 'pipeline'", InvalidOptionError, "grid members train with"),
        ("x FOR (lr IN (0.1))", COMMON + ", workers := 0", InvalidOptionError, "workers"),
        ("x FOR (lr IN (0.1, -1))", COMMON, InvalidOptionError, "lr"),
        ("x FOR (lr IN (0.1))", quick + ", metric := 'val_nonsense'", InvalidOptionError, "no metric 'val_nonsense'"),
    ]
    for head, options, error, match in bad:
        with pytest.raises(error, match=match):
            grid(con, head, options)
    assert con.sql("SELECT count(*) FROM sqlml.models WHERE name LIKE 'x%'").fetchall() == [(0,)]


class Interrupt(KeyboardInterrupt):
    pass


def small(input_shape, n_outputs, options):
    width = 1
    for d in input_shape:
        width *= d
    return nn.Sequential(nn.Flatten(), nn.Linear(width, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, n_outputs))


def interrupting(after_calls, counter):
    def factory(input_shape, n_outputs, options):
        module = small(input_shape, n_outputs, options)

        def hook(layer, args):
            counter[0] += 1
            if counter[0] > after_calls:
                raise Interrupt()

        module[1].register_forward_pre_hook(hook)
        return module

    return factory


GRID = ("CREATE MODELS rg FOR (lr IN (0.02, 0.005), seed IN (1, 2)) WITH (architecture := 'small_grid', epochs := 3, "
        "batch_size := 100, workers := 1, unit_batches := 5, checkpoint_every := 4) AS " + QUERY)


def test_interrupted_grid_resumes_every_model(table):
    con = table
    sqlml.register_architecture("small_grid", small)
    con.sql(GRID)
    reference = {f"rg_{k}": weights(con, f"rg_{k}") for k in range(1, 5)}
    for k in range(1, 5):
        con.sql(f"DROP MODEL rg_{k}")
    counter = [0]
    sqlml.register_architecture("small_grid", interrupting(60, counter))  # 144 steps in all: dies part way
    with pytest.raises(Interrupt):
        con.sql(GRID)
    assert con.sql("SELECT count(*) FROM sqlml.models").fetchall() == [(0,)]
    assert con.sql("SELECT count(*) FROM sqlml.checkpoints").fetchall()[0][0] >= 2
    sqlml.register_architecture("small_grid", small)
    con.sql(GRID)
    for name, expected in reference.items():
        assert same_weights(weights(con, name), expected) == 0.0, name
    assert con.sql("SELECT count(*) FROM sqlml.checkpoints").fetchall() == [(0,)]


@pytest.mark.slow
def test_two_worker_processes_give_the_same_models(table):
    con = table
    rows = grid(con, "p FOR (lr IN (0.01, 0.003), hidden IN ([16], [32]))", COMMON + ", workers := 2, unit_batches := 2")
    assert {r[8] for r in rows} == {0, 1}  # both workers trained models
    con.sql(f"CREATE MODEL solo WITH ({COMMON}, lr := 0.003, hidden := [32]) AS {QUERY}")
    assert same_weights(weights(con, "p_4"), weights(con, "solo")) == 0.0


def test_models_on_a_worker_share_one_decoded_pass():
    from dataclasses import dataclass, field

    from sqlml.training.large.grid_worker import FeedCache

    @dataclass
    class Training:
        path: str = "staged.arrow"
        seed: int = 0
        validation_fraction: float = 0.0

    @dataclass
    class FakeFeed:
        training: Training = field(default_factory=Training)
        part: str = "train"
        batch_size: int = 8
        shuffle: bool = True
        window: int = 4
        rank: int = 0
        world: int = 1

        def __call__(self, epoch):
            return iter([(epoch, k) for k in range(10)])

    cache = FeedCache(keep=4)
    a, b = cache.source(FakeFeed(), 0, 0), cache.source(FakeFeed(), 0, 0)
    seen_a, seen_b = [], []
    for _ in range(10):  # two models alternating batch by batch, as the alternator interleaves them
        seen_a.append(next(a))
        seen_b.append(next(b))
    assert seen_a == seen_b == [(0, k) for k in range(10)]
    assert cache.decoded == 10 and cache.served == 20  # one decoded pass served both models
    # a model behind the kept window (batches 6-9) decodes what it misses, then rejoins the kept batches
    late = list(cache.source(FakeFeed(), 0, 2))
    assert late == [(0, k) for k in range(2, 10)] and cache.decoded == 10 + 4
    other = list(cache.source(FakeFeed(batch_size=16), 0, 0))  # other batching: a pass of its own
    assert other == [(0, k) for k in range(10)] and cache.decoded == 10 + 4 + 10


WORKER_PROBE = """
import importlib, pickle, sys
from sqlml.training.large.processes import PRELOAD
for module in PRELOAD:
    importlib.import_module(module)
before = set(sys.modules)
member = pickle.loads(open(sys.argv[1], "rb").read())  # what a worker process unpickles from its queue
from sqlml.training.large.grid_worker import Worker
messages = []
worker = Worker(0, {"device": "cpu", "spill": None, "threads": 1}, messages.append)
worker.handle("add", member)
worker.handle("run", (member[0], 2, None))
assert messages[0][0] == "ran" and messages[0][3]["batches"] == 2, messages
print(sorted(set(sys.modules) - before))
"""


def test_forkserver_preloads_what_a_grid_worker_imports(table, tmp_path, monkeypatch):
    """A worker's first unit must not import pyarrow, pandas or the feed on the clock (it cost 0.5-1.2 s)."""
    import os
    import pickle
    import subprocess
    import sys
    from pathlib import Path

    from sqlml.training.large.grid_transport import Inline

    probes = []
    send = Inline.send

    def probing_send(self, worker, command, payload):
        if command == "add" and not probes:  # while the staged data still exists
            path = tmp_path / "member.pkl"
            path.write_bytes(pickle.dumps(payload))
            root = str(Path(__file__).resolve().parents[2])
            env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
            probes.append(subprocess.run([sys.executable, "-c", WORKER_PROBE, str(path)], capture_output=True, text=True,
                                         env=env, cwd=root, timeout=300))
        send(self, worker, command, payload)

    monkeypatch.setattr(Inline, "send", probing_send)
    grid(table, "pre FOR (lr IN (0.01, 0.02))", COMMON + ", hidden := [8], workers := 1")
    assert probes and probes[0].returncode == 0, probes[0].stderr[-2000:]
    imported = eval(probes[0].stdout.strip().splitlines()[-1])  # noqa: S307 - a list of module names we printed
    # no new package (before: pyarrow and pandas arrived here), none of the big modules, nothing of the feed
    new_packages = {m.split(".")[0] for m in imported} - {"sqlml", "torch", "pyarrow"}
    assert new_packages == set(), new_packages
    big = ("pyarrow.lib", "pyarrow.compute", "pyarrow.ipc", "pyarrow._compute", "sqlml.training.feed", "sqlml.training.large.run")
    assert not [m for m in imported if m in big], imported
    assert len(imported) < 20, imported


def test_workers_start_while_the_query_is_staged_and_spilled_members_get_their_slots(table, monkeypatch):
    from sqlml.training.large import grid as grid_module
    from sqlml.training.large.grid_transport import Processes

    events = []
    start, prepare = Processes.__init__, grid_module._prepare

    def starting(self, *args, **kwargs):
        events.append("workers started")
        start(self, *args, **kwargs)

    def staging(*args, **kwargs):
        events.append("query staged")
        return prepare(*args, **kwargs)

    monkeypatch.setattr(Processes, "__init__", starting)
    monkeypatch.setattr(grid_module, "_prepare", staging)
    spill = "strategy := 'spill', device_memory := '100KB', hidden := [64, 64, 64]"
    rows = grid(table, "early FOR (lr IN (0.01, 0.002))", COMMON + ", " + spill + ", workers := 2, unit_batches := 2")
    assert events == ["workers started", "query staged"]
    assert {r[8] for r in rows} == {0, 1}  # both workers got a spilled model: their slots came by 'configure'
    table.sql(f"CREATE MODEL solo WITH ({COMMON}, hidden := [64, 64, 64], lr := 0.002) AS {QUERY}")
    assert same_weights(weights(table, "early_2"), weights(table, "solo")) == 0.0
