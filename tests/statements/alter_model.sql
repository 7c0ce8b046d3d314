# title: an alias names a version
# setup: CREATE TABLE t AS SELECT i AS id, (i % 10) / 10.0 AS x, (i % 10) / 5.0 + 1 AS y FROM range(40) r(i)
# setup: CREATE MODEL m WITH (label := 'y', epochs := 1, hidden := [4]) AS SELECT x, y FROM t
# setup: CREATE OR REPLACE MODEL m WITH (label := 'y', epochs := 1, hidden := [4]) AS SELECT x, y FROM t
# expect: [["m", "prod", 1, true]]
ALTER MODEL m SET ALIAS prod = 1;
SELECT name, alias, version, ml_predict('m@prod', 0.5) = ml_predict('m@1', 0.5) FROM sqlml.model_aliases;

# title: a traffic split over an alias and a version number
# setup: CREATE TABLE t AS SELECT i AS id, (i % 10) / 10.0 AS x, (i % 10) / 5.0 + 1 AS y FROM range(40) r(i)
# setup: CREATE MODEL m WITH (label := 'y', epochs := 1, hidden := [4]) AS SELECT x, y FROM t
# setup: CREATE OR REPLACE MODEL m WITH (label := 'y', epochs := 1, hidden := [4]) AS SELECT x, y FROM t
# setup: ALTER MODEL m SET ALIAS prod = 1
# expect: [["m", 0, "prod", 9.0], ["m", 1, "2", 1.0]]
ALTER MODEL m SET TRAFFIC prod = 9, 2 = 1;
SELECT name, position, target, weight FROM sqlml.model_traffic ORDER BY position;

# title: an alias to a version the model does not have
# setup: CREATE TABLE t AS SELECT i AS id, (i % 10) / 10.0 AS x, (i % 10) / 5.0 + 1 AS y FROM range(40) r(i)
# setup: CREATE MODEL m WITH (label := 'y', epochs := 1, hidden := [4]) AS SELECT x, y FROM t
# setup: ALTER MODEL m SET ALIAS prod = 1
# error: UnknownObjectError
ALTER MODEL m SET ALIAS prod = 7;
SELECT name, alias, version FROM sqlml.model_aliases;

# title: an alias still in the traffic split cannot be dropped
# setup: CREATE TABLE t AS SELECT i AS id, (i % 10) / 10.0 AS x, (i % 10) / 5.0 + 1 AS y FROM range(40) r(i)
# setup: CREATE MODEL m WITH (label := 'y', epochs := 1, hidden := [4]) AS SELECT x, y FROM t
# setup: ALTER MODEL m SET ALIAS prod = 1
# setup: ALTER MODEL m SET TRAFFIC prod = 1
# error: DataError
ALTER MODEL m DROP ALIAS prod;
SELECT (SELECT list(alias) FROM sqlml.model_aliases), (SELECT list(target) FROM sqlml.model_traffic);
