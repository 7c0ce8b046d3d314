# title: a TorchScript export comes back as a new model that predicts like the original
# setup: CREATE TABLE t AS SELECT i AS id, (i % 10) / 10.0 AS x, (i % 10) / 5.0 + 1 AS y FROM range(40) r(i)
# setup: CREATE MODEL m WITH (label := 'y', epochs := 1, hidden := [4]) AS SELECT x, y FROM t
# setup: EXPORT MODEL m TO '{tmp}/m.pt'
# expect: [["m3", 1, "imported", "mlp", "regression", true]]
IMPORT MODEL m3 FROM '{tmp}/m.pt';
SELECT name, version, status, architecture, task,
       abs(ml_predict('m3', 0.5)::DOUBLE - ml_predict('m', 0.5)::DOUBLE) < 1e-5
FROM sqlml.models WHERE name = 'm3';

# title: a file that does not exist
# error: DataError
IMPORT MODEL m3 FROM '{tmp}/missing.pt';
SELECT (SELECT count(*) FROM sqlml.models), (SELECT count(*) FROM sqlml.objects);

# title: a name taken
# setup: CREATE TABLE t AS SELECT i AS id, (i % 10) / 10.0 AS x, (i % 10) / 5.0 + 1 AS y FROM range(40) r(i)
# setup: CREATE MODEL m WITH (label := 'y', epochs := 1, hidden := [4]) AS SELECT x, y FROM t
# setup: EXPORT MODEL m TO '{tmp}/m.pt'
# error: ObjectExistsError
IMPORT MODEL m FROM '{tmp}/m.pt';
SELECT name, version, status FROM sqlml.models;
