"""The architecture registry: built-ins, user architectures, suggestions."""

import pytest
import torch

import sqlml
from sqlml.errors import InvalidOptionError, TrainingError, UnknownObjectError
from sqlml.models.architectures import ARCHITECTURES, build, get_architecture


@pytest.mark.parametrize(
    "name, shape, options",
    [
        ("logistic", (7,), {}),
        ("mlp", (7,), {"hidden": [5, 3], "dropout": 0.1, "activation": "gelu"}),
        ("mlp", (7,), {"hidden": 4}),
        ("cnn", (3, 8, 8), {"channels": [4, 6], "batch_norm": True}),
        ("cnn", (8, 8), {"channels": [4]}),
    ],
)
def test_builtins_map_examples_to_outputs(name, shape, options):
    module = build(name, shape, 3, options)
    out = module(torch.randn(5, *shape))
    assert out.shape == (5, 3)


def test_registry_is_printable_and_lists_builtins():
    assert {"logistic", "mlp", "cnn"} <= set(ARCHITECTURES)
    assert "hidden=[64, 64]" in repr(ARCHITECTURES["mlp"])


def test_unknown_architecture_suggests():
    with pytest.raises(UnknownObjectError, match="Did you mean 'cnn'"):
        get_architecture("cnm")


def test_bad_architecture_options():
    with pytest.raises(InvalidOptionError, match="activation"):
        build("mlp", (3,), 2, {"activation": "swish"})
    with pytest.raises(InvalidOptionError, match="hidden"):
        build("mlp", (3,), 2, {"hidden": [0]})
    with pytest.raises(TrainingError, match=r"needs image input"):
        build("cnn", (12,), 2, {})


def test_register_architecture_decorator_and_options(con):
    @sqlml.register_architecture("two_layer", options={"width": 8})
    def two_layer(input_shape, n_outputs, options):
        return torch.nn.Sequential(
            torch.nn.Linear(input_shape[0], options["width"]), torch.nn.ReLU(), torch.nn.Linear(options["width"], n_outputs)
        )

    con.sql("CREATE TABLE t AS SELECT i % 5 AS x, (i % 5 > 2) AS label FROM range(500) t(i)")
    con.sql("CREATE MODEL m WITH (architecture := 'two_layer', width := 3, epochs := 2) AS SELECT x, label FROM t")
    (options,) = con.sql("SELECT options FROM sqlml.models").fetchall()[0]
    assert '"width": 3' in options
    with pytest.raises(InvalidOptionError, match="Did you mean 'width'"):
        con.sql("CREATE MODEL n WITH (architecture := 'two_layer', widht := 3) AS SELECT x, label FROM t")


def test_factory_errors_are_reported_with_context(con):
    sqlml.register_architecture("broken_arch", lambda shape, n, options: 1 / 0)
    con.sql("CREATE TABLE t AS SELECT i % 5 AS x, (i % 5 > 2) AS label FROM range(50) t(i)")
    with pytest.raises(TrainingError, match=r"broken_arch.*ZeroDivisionError"):
        con.sql("CREATE MODEL m WITH (architecture := 'broken_arch') AS SELECT x, label FROM t")
    sqlml.register_architecture("not_a_module", lambda shape, n, options: "nope")
    with pytest.raises(TrainingError, match="not a torch.nn.Module"):
        con.sql("CREATE MODEL m WITH (architecture := 'not_a_module') AS SELECT x, label FROM t")


def test_cnn_trains_on_image_arrays(con):
    # 8x8 one-channel images: class 1 has a bright upper half
    con.sql(
        """
        CREATE TABLE imgs AS
        SELECT i % 2 AS label,
               list_transform(range(64), lambda p: CASE WHEN i % 2 = 1 AND p < 32 THEN 1.0 ELSE 0.0 END
                                        + (hash(i, p) % 100) / 500.0)::FLOAT[64] AS img
        FROM range(400) t(i)
        """
    )
    con.sql("CREATE MODEL c WITH (architecture := 'cnn', input_shape := [1, 8, 8], channels := [4], epochs := 6, lr := 0.02) AS SELECT img, label FROM imgs")
    (acc,) = con.sql("SELECT accuracy FROM ml_evaluate('c', 'imgs')").fetchall()[0]
    assert acc > 0.95
    (shape,) = con.sql("SELECT input_shape FROM ml_models()").fetchall()[0]
    assert shape == [1, 8, 8]


def test_nested_array_column_gives_the_shape(con):
    con.sql(
        "CREATE TABLE imgs AS SELECT i % 2 AS label, "
        "[[(i % 2)::FLOAT, 0.0, 1.0], [0.5, (i % 2)::FLOAT, 0.0]]::FLOAT[3][2] AS img FROM range(100) t(i)"
    )
    con.sql("CREATE MODEL c WITH (architecture := 'cnn', channels := [2], epochs := 1) AS SELECT img, label FROM imgs")
    assert con.sql("SELECT input_shape FROM ml_models()").fetchall() == [([2, 3],)]
    assert con.sql("SELECT ml_predict('c', img) IS NOT NULL FROM imgs LIMIT 1").fetchall() == [(True,)]
