import pytest

from tests.torch_threads import _one_torch_thread  # noqa: F401 (autouse fixture)


def mlp(width=32, depth=4, out=3, seed=0, dropout=0.0, batch_norm=False):
    """An nn.Sequential of (Linear, [BatchNorm], ReLU, [Dropout]) blocks and a head, seeded."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    layers = []
    for _ in range(depth):
        layers.append(nn.Linear(width, width))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.ReLU())
        if dropout:
            layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(width, out))
    return nn.Sequential(*layers)


def max_diff(a, b) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return max((sa[k].double() - sb[k].double()).abs().max().item() for k in sa)


@pytest.fixture
def table(con):
    """1,200 rows: two numeric features, a categorical one and a label from a known rule."""
    con.sql(
        """
        CREATE TABLE train AS
        SELECT i AS id,
               (hash(i, 1) % 1000) / 500.0 - 1 AS a,
               (hash(i, 2) % 1000) / 500.0 - 1 AS b,
               ['red', 'green', 'blue'][1 + (hash(i, 3) % 3)::BIGINT] AS color,
               CASE WHEN a + b + (CASE WHEN color = 'red' THEN 0.4 ELSE 0 END) > 0.1 THEN 'late' ELSE 'on_time' END AS label
        FROM range(1200) r(i)
        """
    )
    return con


def weights(con, name, version=None):
    import io

    import torch

    where = "" if version is None else f" AND version = {int(version)}"
    blob = con.sql(f"SELECT weights FROM sqlml.models WHERE name = ?{where} ORDER BY version DESC LIMIT 1", params=[name]).fetchall()[0][0]
    return torch.load(io.BytesIO(blob), weights_only=True)


def same_weights(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def metrics(con, name) -> dict:
    import json

    return json.loads(con.sql("SELECT metrics FROM sqlml.models WHERE name = ? ORDER BY version DESC LIMIT 1", params=[name]).fetchall()[0][0])
