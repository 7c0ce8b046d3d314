# title: one version goes, the other stays
# setup: CREATE TABLE t AS SELECT i AS id, (i % 10) / 10.0 AS x, (i % 10) / 5.0 + 1 AS y FROM range(40) r(i)
# setup: CREATE MODEL m WITH (label := 'y', epochs := 1, hidden := [4]) AS SELECT x, y FROM t
# setup: CREATE OR REPLACE MODEL m WITH (label := 'y', epochs := 1, hidden := [4]) AS SELECT x, y FROM t
# expect: [["m", 2]]
DROP MODEL m VERSION 1;
SELECT name, version FROM sqlml.models;

# title: every version goes
# setup: CREATE TABLE t AS SELECT i AS id, (i % 10) / 10.0 AS x, (i % 10) / 5.0 + 1 AS y FROM range(40) r(i)
# setup: CREATE MODEL m WITH (label := 'y', epochs := 1, hidden := [4]) AS SELECT x, y FROM t
# expect: [[0, 0]]
DROP MODEL m;
SELECT (SELECT count(*) FROM sqlml.models), (SELECT count(*) FROM sqlml.objects WHERE kind = 'model');

# title: a version the model does not have
# setup: CREATE TABLE t AS SELECT i AS id, (i % 10) / 10.0 AS x, (i % 10) / 5.0 + 1 AS y FROM range(40) r(i)
# setup: CREATE MODEL m WITH (label := 'y', epochs := 1, hidden := [4]) AS SELECT x, y FROM t
# error: UnknownObjectError
DROP MODEL m VERSION 3;
SELECT name, version, status FROM sqlml.models;

# title: a missing model
# error: UnknownObjectError
DROP MODEL m;
SELECT count(*) FROM sqlml.models;
