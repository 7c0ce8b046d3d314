"""Bad input gets a clear error and leaves no model, version or catalog row behind."""

import pytest

from sqlml.errors import DataError, InvalidOptionError, SqlmlSyntaxError, UnknownObjectError


def nothing_written(con):
    assert con.sql("SELECT count(*) FROM sqlml.models").fetchall() == [(0,)]
    assert con.sql("SELECT count(*) FROM sqlml.model_versions").fetchall() == [(0,)]
    assert con.sql("SELECT count(*) FROM ml_catalog(kind := 'model')").fetchall() == [(0,)]


@pytest.fixture
def data(con):
    con.sql(
        "CREATE TABLE d AS SELECT i, i % 10 AS x, (i % 10) / 3.0 AS z, i % 2 AS label, "
        "now()::TIMESTAMP AS ts, 'constant' AS one_class, [i, i]::FLOAT[] AS lst FROM range(300) t(i)"
    )
    return con


@pytest.mark.parametrize(
    "options, query, error, message",
    [
        ("label := 'lable'", "SELECT x, label FROM d", DataError, r"label column 'lable' is not in the training query.*Did you mean 'label'"),
        ("", "SELECT x, ts, label FROM d", DataError, r"feature column 'ts' has type TIMESTAMP.*not numeric"),
        ("", "SELECT x, lst, label FROM d", DataError, r"variable-length list.*FLOAT\[n\]"),
        ("", "SELECT x, label FROM d WHERE i < 0", DataError, "returned no rows"),
        ("label := 'one_class'", "SELECT x, one_class FROM d", DataError, r"only one class \('constant'\)"),
        ("", "SELECT CASE WHEN i = 7 THEN 'nan'::DOUBLE ELSE x END AS x, label FROM d", DataError, r"'x' has 1 NaN"),
        ("", "SELECT CASE WHEN i = 7 THEN NULL ELSE x END AS x, label FROM d", DataError, r"'x' has 1 NULL"),
        ("architecture := 'mpl'", "SELECT x, label FROM d", UnknownObjectError, r"architecture 'mpl' does not exist\. Did you mean 'mlp'"),
        ("epoch := 3", "SELECT x, label FROM d", InvalidOptionError, r"unknown option 'epoch'\. Did you mean 'epochs'"),
        ("hiden := [8]", "SELECT x, label FROM d", InvalidOptionError, r"Did you mean 'hidden'"),
        ("epochs := 0", "SELECT x, label FROM d", InvalidOptionError, "expected a whole number from 1 to"),
        ("optimizer := 'adagrad'", "SELECT x, label FROM d", InvalidOptionError, "expected one of 'adam', 'adamw', 'sgd'"),
        ("strategy := 'singel'", "SELECT x, label FROM d", UnknownObjectError, r"Did you mean 'single'"),
        ("early_stopping := 2", "SELECT x, label FROM d", InvalidOptionError, "needs validation data"),
        ("weight := 'x'", "SELECT x - 5 AS x, z, label FROM d", DataError, "negative, NaN or infinite"),
        ("", "SELECT x, x, label FROM d", DataError, "more than once"),
        ("", "SELECT label FROM d", DataError, "no feature columns"),
        ("task := 'regression', label := 'one_class'", "SELECT x, one_class FROM d", DataError, "regression needs a numeric label"),
        ("", "SELECT x, label FROM no_such_table", DataError, "training query failed.*no_such_table"),
        ("classes := ['a', 'b']", "SELECT x, label FROM d", DataError, r"value\(s\) '0', '1' that are not among classes"),
        ("validation_split := 0.2, validation_query := 'SELECT 1'", "SELECT x, label FROM d", InvalidOptionError, "not both"),
    ],
)
def test_refused_with_a_clear_message(data, options, query, error, message):
    with_options = f"WITH ({options}) " if options else ""
    with pytest.raises(error, match=message):
        data.sql(f"CREATE MODEL m {with_options}AS {query}")
    nothing_written(data)


def test_syntax_errors_point_at_the_statement(con):
    with pytest.raises(SqlmlSyntaxError, match="expected AS"):
        con.sql("CREATE MODEL m WITH (epochs := 1)")
    with pytest.raises(SqlmlSyntaxError, match="expected a model name"):
        con.sql("CREATE MODEL WITH (epochs := 1) AS SELECT 1")
    with pytest.raises(SqlmlSyntaxError, match="given twice"):
        con.sql("CREATE MODEL m WITH (epochs := 1, epochs := 2) AS SELECT 1 AS x, 1 AS label")


def test_statement_not_a_query(data):
    with pytest.raises(DataError, match="must be a query"):
        data.sql("CREATE MODEL m AS CREATE TABLE z (a INT)")
    nothing_written(data)


def test_failure_during_training_rolls_back(data, monkeypatch):
    from sqlml.training import single

    def broken(job):
        raise RuntimeError("device fell over")

    monkeypatch.setattr(single, "train", broken)
    with pytest.raises(RuntimeError, match="device fell over"):
        data.sql("CREATE MODEL m WITH (epochs := 1) AS SELECT x, label FROM d")
    nothing_written(data)
    assert not data.sql("SELECT * FROM ml_models()").fetchall()


def test_staged_files_are_removed(data, tmp_path):
    scratch = tmp_path / "scratch"
    left_by_a_killed_process = scratch / "sqlml-train-999999999-abcd"
    left_by_a_killed_process.mkdir(parents=True)
    (scratch / "unrelated").mkdir()
    data.sql(f"CREATE MODEL m WITH (epochs := 1, scratch_dir := '{scratch}') AS SELECT x, label FROM d")
    assert sorted(p.name for p in scratch.iterdir()) == ["unrelated"]
    (scratch / "unrelated").rmdir()
    with pytest.raises(DataError):
        data.sql(f"CREATE MODEL n WITH (epochs := 1, scratch_dir := '{scratch}') AS SELECT x, ts, label FROM d")
    assert list(scratch.iterdir()) == []


def test_unknown_model_in_functions(data):
    data.sql("CREATE MODEL parity WITH (epochs := 1) AS SELECT x, label FROM d")
    with pytest.raises(UnknownObjectError, match="Did you mean 'parity'"):
        data.sql("SELECT * FROM ml_evaluate('parrity', 'd')").fetchall()
    with pytest.raises(UnknownObjectError, match=r"parity@7.*versions \[1\]"):
        data.sql("SELECT ml_predict('parity@7', x) FROM d").fetchall()
    with pytest.raises(DataError, match="expected 1 feature values"):
        data.sql("SELECT ml_predict('parity', x, x) FROM d").fetchall()
    with pytest.raises(DataError, match="lacks column"):
        data.sql("SELECT * FROM ml_evaluate('parity', 'SELECT i FROM d')").fetchall()


def test_prediction_inputs_of_the_wrong_kind(data):
    data.sql("CREATE MODEL parity WITH (epochs := 1) AS SELECT x, label FROM d")
    with pytest.raises(DataError, match="feature 'x' is a number, but a string value was given"):
        data.sql("SELECT ml_predict('parity', 'seven')").fetchall()
    with pytest.raises(DataError, match="is a number, but a list"):
        data.sql("SELECT ml_predict('parity', [1.0, 2.0])").fetchall()
