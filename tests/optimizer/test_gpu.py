"""On a CUDA machine the batch path runs the model on the GPU, with the CPU's results."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.gpu


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bulk_scoring_on_the_gpu_matches_the_cpu(trained, monkeypatch):
    import copy

    from sqlml.models.loading import LoadedModel, load_model
    from sqlml.optimizer import bulk_inference

    con = trained
    gpu = load_model(con.session, "delay")
    assert gpu.device.type == "cuda"
    monkeypatch.setattr(bulk_inference, "MIN_ROWS", 0)
    con.sql("CREATE TABLE scored AS SELECT id, ml_predict_proba('delay', a, b, color) AS p FROM train")
    assert con.sql("EXPLAIN ML CREATE TABLE s2 AS SELECT id, ml_predict_proba('delay', a, b, color) FROM train").fetchall()[0][2] == [
        "bulk_inference"
    ]
    cpu = LoadedModel(gpu.record, copy.deepcopy(gpu.module).cpu(), torch.device("cpu"))
    rows = con.sql("SELECT a, b, color FROM train ORDER BY id").to_arrow_table()
    expected = cpu.predict_proba(cpu.encode(rows))
    got = [p for (p,) in con.sql("SELECT p FROM scored ORDER BY id").fetchall()]
    assert max(abs(a - b) for row_a, row_b in zip(got, expected, strict=True) for a, b in zip(row_a, row_b, strict=True)) < 1e-4
