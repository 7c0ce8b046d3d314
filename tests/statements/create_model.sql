# title: a small regression MLP trained for one epoch is registered as version 1
# setup: CREATE TABLE t AS SELECT i AS id, (i % 10) / 10.0 AS x, (i % 10) / 5.0 + 1 AS y FROM range(40) r(i)
# expect: [["m", 1, "mlp", "regression", "y", [1], 1, "trained", "x", 1, 40]]
CREATE MODEL m WITH (label := 'y', epochs := 1, seed := 0, hidden := [4], batch_size := 8) AS SELECT x, y FROM t;
SELECT name, version, architecture, task, label, input_shape, n_outputs, status, features->'$.features[0]'->>'name',
       (SELECT max(epoch) FROM sqlml.training_runs WHERE model = 'm'), (SELECT max(rows) FROM sqlml.training_runs WHERE model = 'm')
FROM sqlml.models;

# title: a label column the query does not have
# setup: CREATE TABLE t AS SELECT i AS id, (i % 10) / 10.0 AS x, (i % 10) / 5.0 + 1 AS y FROM range(40) r(i)
# error: DataError
CREATE MODEL m WITH (label := 'nope', epochs := 1) AS SELECT x, y FROM t;
SELECT (SELECT count(*) FROM sqlml.objects), (SELECT count(*) FROM sqlml.models), (SELECT count(*) FROM sqlml.model_versions);

# title: zero epochs
# setup: CREATE TABLE t AS SELECT i AS id, (i % 10) / 10.0 AS x, (i % 10) / 5.0 + 1 AS y FROM range(40) r(i)
# error: InvalidOptionError
CREATE MODEL m WITH (label := 'y', epochs := 0) AS SELECT x, y FROM t;
SELECT (SELECT count(*) FROM sqlml.objects), (SELECT count(*) FROM sqlml.models), (SELECT count(*) FROM sqlml.model_versions);

# title: a name taken
# setup: CREATE TABLE t AS SELECT i AS id, (i % 10) / 10.0 AS x, (i % 10) / 5.0 + 1 AS y FROM range(40) r(i)
# setup: CREATE MODEL m WITH (label := 'y', epochs := 1, hidden := [4]) AS SELECT x, y FROM t
# error: ObjectExistsError
CREATE MODEL m WITH (label := 'y', epochs := 1, hidden := [8]) AS SELECT x, y FROM t;
SELECT name, version, options->>'hidden' FROM sqlml.models;
